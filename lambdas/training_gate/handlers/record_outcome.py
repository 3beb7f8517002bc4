"""The decision's last side effects (a job's own package rejected, the decision event), then the
decision item is complete."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.events import DecisionEvents
from training_gate.dal.sagemaker import ModelRegistry
from training_gate.handlers.environment import RecordOutcomeEnvironment, environment
from training_gate.handlers.observability import JOB_NAME_PATH, logger, trace_aws_calls, tracer
from training_gate.logic.finish import FinishPorts, RecordOutcomeRequest, record_outcome

trace_aws_calls()


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=RecordOutcomeRequest)
    env = environment(RecordOutcomeEnvironment)
    ports = FinishPorts(log=DecisionLog(env.DECISION_TABLE), events=DecisionEvents(), registry=ModelRegistry())
    result = record_outcome(request, ports)
    logger.info("outcome recorded", extra={"completion": result.completion})
    return result.model_dump(mode="json")
