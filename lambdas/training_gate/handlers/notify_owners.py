"""Tell the owners (or operations, of a skipped decision) a decision's stored message, only while this
execution owns the decision."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.sns import Topic
from training_gate.domain.contract import NotifyRequest
from training_gate.handlers.environment import NotifyOwnersEnvironment, environment
from training_gate.handlers.observability import logger, trace_aws_calls, tracer
from training_gate.logic.notify import NotificationFailed, NotificationThrottled, NotifyPorts, notify_owners

trace_aws_calls()

__all__ = ["NotificationFailed", "NotificationThrottled", "handler"]


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path="decision_key")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=NotifyRequest)
    env = environment(NotifyOwnersEnvironment)
    ports = NotifyPorts(
        log=DecisionLog(env.DECISION_TABLE),
        topic=Topic(env.NOTIFICATION_TOPIC_ARN),
        operations=Topic(env.OPERATIONS_TOPIC_ARN),
    )
    result = notify_owners(request, ports)
    logger.info("owners", extra={"completion": result.completion, "sent": result.sent})
    return result.model_dump(mode="json")
