"""AlertOperations' use case: every execution that ended without a designed outcome reaches operations,
and the decision item it owned records how it ended.

This function sees every such end, also those no Catch can (a timeout, an abort,
States.DataLimitExceeded), so the item's `endings` tell NotificationFailed and a GateError after
the claim without the Step Functions history, and every SageMaker pipeline still waiting on what the
execution held is answered here (logic/answer.py): tokens of a decision it owned and did not complete get
its failure, tokens of a decision completed but not answered get the decision, and its own token, if no
decision holds it, the failure. A gate error or a failed notification was answered by the workflow
itself with the very same requests, so those are skipped or sent again harmlessly."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from training_gate.dal.clients import ClientError
from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.sagemaker import CallbackAnswerFailed, PipelineCallbacks
from training_gate.dal.sns import Topic
from training_gate.dal.stepfunctions import Executions
from training_gate.domain.alerts import (
    FailedExecution,
    decision_key_of,
    ending_of,
    needs_operations,
    operations_alert,
)
from training_gate.logic.answer import AnswerPorts, AnswerRequest, answer_with_failure


class ExecutionStatusChange(BaseModel):
    """The `detail` of a Step Functions Execution Status Change event. Error and cause are read with
    DescribeExecution: the event is not documented to carry them
    (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html)."""

    executionArn: str
    stateMachineArn: str | None = None
    status: str


class AlertResult(BaseModel):
    alerted: bool
    error: str | None = None
    message_id: str | None = None
    pipelines_answered: int = 0


@dataclass
class AlertPorts:
    executions: Executions
    operations: Topic
    log: DecisionLog | None = None
    callbacks: PipelineCallbacks | None = None


def record_ending(execution: FailedExecution, log: DecisionLog) -> list[str]:
    """Write the ending on every item of the judged job that this execution owned (as its owner, its
    first decider or a taker-over); the sort keys of the items written."""
    key = decision_key_of(execution.input)
    if not key:
        return []
    recorded = []
    for item in log.decisions(key):
        if execution.execution_arn not in (item.owner, item.execution_arn, *item.takeovers):
            continue
        if log.record_ending(
            key, item.policy_sha256, execution.execution_arn, ending_of(execution), execution.error, execution.cause
        ):
            recorded.append(item.policy_sha256)
    return recorded


def alert_operations(change: ExecutionStatusChange, ports: AlertPorts) -> AlertResult:
    described = ports.executions.describe(change.executionArn)
    execution = FailedExecution(
        execution_arn=change.executionArn,
        state_machine_arn=change.stateMachineArn,
        # The event's status decides: DescribeExecution is eventually consistent and may still say
        # RUNNING (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
        status=change.status,
        error=described.error if described else None,
        cause=described.cause if described else None,
        input=described.input if described else None,
    )
    if not needs_operations(execution):
        return AlertResult(alerted=False, error=execution.error)
    notes = []
    if ports.log is not None:
        try:
            record_ending(execution, ports.log)
        except ClientError as exc:
            # Operations are told whatever happens to the table, and told that it could not say it.
            notes.append(f"The decision table could not record this ending: {exc}")
    answered = 0
    if ports.log is not None and ports.callbacks is not None:
        try:
            result = answer_with_failure(
                AnswerRequest(
                    kind="failure",
                    execution_arn=execution.execution_arn,
                    execution_input=execution.input,
                    error=ending_of(execution),
                    cause=execution.cause,
                ),
                AnswerPorts(log=ports.log, callbacks=ports.callbacks),
            )
            answered = result.answered
            if result.tokens:
                notes.append(
                    "SageMaker pipeline steps answered: " + ", ".join(f"{t.token} ({t.answer})" for t in result.tokens)
                )
        except (ClientError, CallbackAnswerFailed) as exc:
            notes.append(
                f"A SageMaker pipeline step waiting on this job could not be answered: {exc}. It waits until "
                "a re-run of the gate for this job completes the decision, or its pipeline execution is stopped."
            )
    alert = operations_alert(execution, "\n".join(notes) or None)
    message_id = ports.operations.publish(alert.subject, alert.message, {"decision": "gate_error"})
    return AlertResult(alerted=True, error=execution.error, message_id=message_id, pipelines_answered=answered)
