"""AlertOperations' use case: every execution that ended without a designed outcome reaches operations."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from training_gate.dal.sns import Topic
from training_gate.dal.stepfunctions import Executions
from training_gate.domain.alerts import FailedExecution, needs_operations, operations_alert


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


@dataclass
class AlertPorts:
    executions: Executions
    operations: Topic


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
    alert = operations_alert(execution)
    message_id = ports.operations.publish(alert.subject, alert.message, {"decision": "gate_error"})
    return AlertResult(alerted=True, error=execution.error, message_id=message_id)
