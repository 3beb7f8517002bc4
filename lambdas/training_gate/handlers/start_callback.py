"""The bridge from the callback queue to the workflow (SQS event source mapping, partial batch responses)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.sagemaker import PipelineCallbacks
from training_gate.dal.stepfunctions import Executions
from training_gate.handlers.environment import StartCallbackEnvironment, environment
from training_gate.handlers.observability import logger, trace_aws_calls, tracer
from training_gate.logic.callback import BridgePorts, batch_response, start_from_batch

trace_aws_calls()


@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = environment(StartCallbackEnvironment)
    ports = BridgePorts(executions=Executions(), callbacks=PipelineCallbacks(), state_machine_arn=env.STATE_MACHINE_ARN)
    results = start_from_batch(list(event.get("Records") or []), ports)
    for result in results:
        log = logger.error if result.retry else logger.info
        log("callback message", extra=result.model_dump(exclude_none=True))
    return batch_response(results)
