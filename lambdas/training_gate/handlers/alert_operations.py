"""Tell operations about every execution that ended without a designed outcome (EventBridge target)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.sagemaker import PipelineCallbacks
from training_gate.dal.sns import Topic
from training_gate.dal.stepfunctions import Executions
from training_gate.handlers.environment import AlertOperationsEnvironment, environment
from training_gate.handlers.observability import logger, trace_aws_calls, tracer
from training_gate.logic.alert import AlertPorts, ExecutionStatusChange, alert_operations

trace_aws_calls()


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path="detail.executionArn")
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    change = ExecutionStatusChange.model_validate(event.detail)
    env = environment(AlertOperationsEnvironment)
    ports = AlertPorts(
        executions=Executions(),
        operations=Topic(env.OPERATIONS_TOPIC_ARN),
        log=DecisionLog(env.DECISION_TABLE),
        callbacks=PipelineCallbacks(),
    )
    result = alert_operations(change, ports)
    logger.info("execution ended", extra=result.model_dump())
    return result.model_dump(mode="json")
