"""Inspect the model artifact: the only handler that imports scikit-learn (via the inspector)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, Json

from training_gate.dal.s3 import ArtifactStore
from training_gate.domain.contract import TrainingJob
from training_gate.handlers.environment import environment
from training_gate.handlers.observability import JOB_NAME_PATH, logger, metrics, trace_aws_calls, tracer
from training_gate.inspector.inspect import InspectConfig
from training_gate.logic.artifact import inspect_job

trace_aws_calls()


class InspectArtifactEnvironment(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    INSPECT_CONFIG: Json[InspectConfig] = Field(default_factory=InspectConfig)


class InspectInput(BaseModel):
    job: TrainingJob


def load_config(environ: dict[str, str] | None = None) -> InspectConfig:
    return environment(InspectArtifactEnvironment, environ).INSPECT_CONFIG


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = parse(event=event, model=InspectInput).job
    store = ArtifactStore()
    result = inspect_job(job, store, load_config(), read_holdout=store.open)
    for check in result.failed_checks:
        metrics.add_metric(name=f"CheckFailed_{check.name}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ArtifactsInspected", unit=MetricUnit.Count, value=1)
    logger.info("inspection", extra={"verdict": result.verdict, "sha256": result.artifact.sha256})
    return result.model_dump(mode="json", by_alias=True)
