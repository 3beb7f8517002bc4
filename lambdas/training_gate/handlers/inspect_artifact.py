"""Inspect the model artifact: the only handler that imports scikit-learn (in the inspector's sandbox).

A verdict (pass or reject) is returned; a failure of the gate's own environment (access or KMS
denied, throttling, a full disk, the sandbox not starting) raises InspectorEnvironmentError (or its
subclass ArtifactAccessDenied), which the state machine's Catch routes to operations."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, Json

from training_gate.dal.s3 import ArtifactStore
from training_gate.domain.contract import TrainingJob
from training_gate.handlers.environment import environment
from training_gate.handlers.observability import JOB_NAME_PATH, logger, metrics, trace_aws_calls, tracer
from training_gate.inspector.containment import not_dumpable
from training_gate.inspector.errors import InspectorEnvironmentError
from training_gate.inspector.inspect import InspectConfig, sweep_stale_workdirs
from training_gate.inspector.sandbox import default_sandbox
from training_gate.logic.artifact import inspect_job

trace_aws_calls()
# In a real function environment /tmp is this function's alone and nothing runs yet: clear what a
# timed-out invocation left there. (The local engine shares /tmp with other processes: not there.)
if "AWS_LAMBDA_RUNTIME_API" in os.environ and "LAMBDA_TASK_ROOT" in os.environ:
    sweep_stale_workdirs()
# The function's own process holds the credentials: not dumpable, its /proc environ and memory are
# unreadable by the inspection child, which runs as the same user. Then the zygote (and its scikit-learn
# imports) starts during the function's init phase, not the first call.
if "AWS_LAMBDA_RUNTIME_API" in os.environ:
    default_sandbox().host_protections.append(not_dumpable("function").as_dict())
try:
    default_sandbox().start()
except InspectorEnvironmentError:  # retried by the first inspection, which then fails by name
    logger.exception("the inspection sandbox did not start at init")


class InspectArtifactEnvironment(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    INSPECT_CONFIG: Json[InspectConfig] = Field(default_factory=InspectConfig)


class InspectInput(BaseModel):
    job: TrainingJob


def load_config(environ: dict[str, str] | None = None) -> InspectConfig:
    return environment(InspectArtifactEnvironment, environ).INSPECT_CONFIG


def _remaining_s(context: LambdaContext) -> float | None:
    """The function's remaining time, so the child's deadline falls inside it (None when unknown)."""
    try:
        millis = context.get_remaining_time_in_millis()
    except (AttributeError, NotImplementedError, TypeError):
        return None
    return millis / 1000 if isinstance(millis, (int, float)) and millis > 0 else None


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = parse(event=event, model=InspectInput).job
    store = ArtifactStore()
    result = inspect_job(job, store, load_config(), read_holdout=store.open, remaining_time_s=_remaining_s(context))
    for check in result.failed_checks:
        metrics.add_metric(name=f"CheckFailed_{check.name}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ArtifactsInspected", unit=MetricUnit.Count, value=1)
    logger.info("inspection", extra={"verdict": result.verdict, "sha256": result.artifact.sha256})
    return result.model_dump(mode="json", by_alias=True)
