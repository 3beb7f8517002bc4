"""StartCallback's use case: the bridge from the gate's callback queue to the workflow.

Each message a SageMaker pipeline's CallbackStep puts on the queue starts one execution of the workflow,
named after the message: SQS delivers a message at least once, and a second delivery of it finds that
execution (running: StartExecution returns it; ended: ExecutionAlreadyExists) instead of starting a second
one. A stop request (`"status": "Stopping"`, the same token again) is answered at once with a failure:
the pipeline cannot stop before its step is answered, and the decision it asked for goes on regardless.

A message without a token the gate could answer is refused (reported as a batch item failure): SQS
delivers it again, then moves it to the dead-letter queue, whose alarm tells operations. Everything else
a message may get wrong (a missing job name, an unknown argument) is the workflow's first step's to
refuse, by name, and to answer the pipeline with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from training_gate.dal.sagemaker import CallbackNotWaiting, PipelineCallbacks
from training_gate.dal.stepfunctions import Executions
from training_gate.domain.pipeline import (
    CallbackMessageError,
    answer_failure,
    answer_stopping,
    execution_input,
    execution_name,
    parse_message,
)

# "Maximum input or output size for a task, state, or execution: 256 KiB of data as a UTF-8 encoded string"
# (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
EXECUTION_INPUT_MAX = 256 * 1024


class Started(BaseModel):
    message_id: str
    outcome: Literal["started", "already_started", "stop_answered", "refused", "refused_answered", "failed"]
    execution_arn: str | None = None
    detail: str | None = None

    @property
    def retry(self) -> bool:
        """SQS delivers it again (and, past maxReceiveCount, to the dead-letter queue)."""
        return self.outcome in ("refused", "failed")


@dataclass
class BridgePorts:
    executions: Executions
    callbacks: PipelineCallbacks
    state_machine_arn: str


def start_from_message(message_id: str, body: str, ports: BridgePorts) -> Started:
    try:
        message = parse_message(body)
    except CallbackMessageError as exc:
        return Started(message_id=message_id, outcome="refused", detail=str(exc))
    if message.stopping:
        answer = answer_stopping(message.token, message.pipeline_execution_arn)
        try:
            ports.callbacks.send(answer.request(), success=False)
        except CallbackNotWaiting as exc:
            # The gate answered this token already: the pipeline stops with that answer.
            return Started(message_id=message_id, outcome="stop_answered", detail=str(exc))
        return Started(message_id=message_id, outcome="stop_answered")
    name = execution_name(body, message)
    document = json.dumps(execution_input(message), sort_keys=True, separators=(",", ":"))
    if len(document.encode()) > EXECUTION_INPUT_MAX:
        # Step Functions would refuse it on every delivery: the step is told why instead.
        reason = f"the step's arguments make an execution input of {len(document.encode())} bytes, over 256 KiB"
        answer = answer_failure(message.token, f"execution:{name}", "ArgumentsTooLarge", reason)
        try:
            ports.callbacks.send(answer.request(), success=False)
        except CallbackNotWaiting as exc:
            return Started(message_id=message_id, outcome="refused_answered", detail=str(exc))
        return Started(message_id=message_id, outcome="refused_answered", detail=reason)
    arn = ports.executions.start(ports.state_machine_arn, name, document)
    if arn is None:
        return Started(message_id=message_id, outcome="already_started", detail=name)
    return Started(message_id=message_id, outcome="started", execution_arn=arn)


def start_from_batch(records: list[dict[str, Any]], ports: BridgePorts) -> list[Started]:
    """Every record of an SQS batch; one failing never fails the others (partial batch response)."""
    results = []
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            results.append(start_from_message(message_id, str(record.get("body", "")), ports))
        except Exception as exc:  # noqa: BLE001 - delivered again; the others of the batch are not
            results.append(Started(message_id=message_id, outcome="failed", detail=f"{type(exc).__name__}: {exc}"))
    return results


def batch_response(results: list[Started]) -> dict[str, list[dict[str, str]]]:
    """What Lambda's SQS event source mapping reads with ReportBatchItemFailures: the messages to deliver
    again (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)."""
    return {"batchItemFailures": [{"itemIdentifier": r.message_id} for r in results if r.retry]}
