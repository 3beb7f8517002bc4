"""Register the model that passed (or adopt the package the job registered itself)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.aws import ArtifactStore, DecisionEvents, DecisionLog, ModelRegistry
from training_gate.handlers.observability import JOB_NAME_PATH, logger, metrics, trace_aws_calls, tracer
from training_gate.logic.register import RegisterInput, register

trace_aws_calls()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=RegisterInput)
    result = register(
        request, ModelRegistry(), DecisionLog(os.environ["DECISION_TABLE"]), DecisionEvents(), ArtifactStore()
    )
    metrics.add_metric(name="ModelsRegistered", unit=MetricUnit.Count, value=1)
    logger.info("registered", extra={"model_package_arn": result.ModelPackageArn, "adopted": result.adopted})
    return result.model_dump(mode="json")
