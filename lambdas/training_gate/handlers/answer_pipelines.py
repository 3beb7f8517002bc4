"""Answer the SageMaker pipelines waiting on a decision (or on an execution that ends without one)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.sagemaker import CallbackAnswerFailed, PipelineCallbacks
from training_gate.handlers.environment import AnswerPipelinesEnvironment, environment
from training_gate.handlers.observability import logger, trace_aws_calls, tracer
from training_gate.logic.answer import AnswerPorts, AnswerRequest, DecisionNotComplete, answer_pipelines

trace_aws_calls()

__all__ = ["CallbackAnswerFailed", "DecisionNotComplete", "handler"]


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path="decision_key || execution_arn")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=AnswerRequest)
    env = environment(AnswerPipelinesEnvironment)
    result = answer_pipelines(request, AnswerPorts(log=DecisionLog(env.DECISION_TABLE), callbacks=PipelineCallbacks()))
    logger.info("pipelines", extra={"kind": request.kind, "answered": result.answered, "refused": result.refused})
    return result.model_dump(mode="json", exclude_none=True)
