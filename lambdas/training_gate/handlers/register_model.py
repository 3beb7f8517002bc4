"""Register the model that passed exactly once (or adopt the package the job registered itself)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.events import DecisionEvents
from training_gate.dal.s3 import ArtifactStore
from training_gate.dal.sagemaker import ModelRegistry
from training_gate.handlers.environment import RegisterModelEnvironment, environment
from training_gate.handlers.observability import JOB_NAME_PATH, logger, metrics, trace_aws_calls, tracer
from training_gate.logic.register import RegisterPorts, RegisterRequest, register

trace_aws_calls()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=RegisterRequest)
    env = environment(RegisterModelEnvironment)
    ports = RegisterPorts(
        registry=ModelRegistry(), log=DecisionLog(env.DECISION_TABLE), store=ArtifactStore(), events=DecisionEvents()
    )
    result = register(request, ports, env.INFERENCE_CONFIG)
    if result.created:
        metrics.add_metric(name="ModelsRegistered", unit=MetricUnit.Count, value=1)
    logger.info("registered", extra={"model_package_arn": result.model_package_arn, "package_created": result.created})
    return result.model_dump(mode="json")
