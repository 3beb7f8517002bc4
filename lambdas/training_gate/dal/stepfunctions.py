"""What the gate reads about its own executions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from training_gate.dal.clients import ClientError, client, error_code


class ExecutionDescription(BaseModel):
    execution_arn: str
    status: str
    error: str | None = None
    cause: str | None = None
    input: str | None = None
    name: str | None = None


class Executions:
    def __init__(self, stepfunctions: Any | None = None):
        self._sfn = stepfunctions or client("stepfunctions")

    def describe(self, execution_arn: str) -> ExecutionDescription | None:
        """The execution as Step Functions reports it; None when it does not exist (any more)."""
        try:
            found = self._sfn.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise
        return ExecutionDescription(
            execution_arn=execution_arn,
            status=found["status"],
            error=found.get("error"),
            cause=found.get("cause"),
            input=found.get("input"),
            name=found.get("name"),
        )

    def is_running(self, execution_arn: str) -> bool:
        described = self.describe(execution_arn)
        return described is not None and described.status in ("RUNNING", "PENDING_REDRIVE")

    def start(self, state_machine_arn: str, name: str, execution_input: str) -> str | None:
        """Start an execution named `name`; None when an execution of that name exists already with another
        input or has ended (ExecutionAlreadyExists: the name is the message's, so it was started before).
        The same name and input while it runs returns that execution
        (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html)."""
        try:
            started = self._sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=execution_input)
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return None
            raise
        return str(started["executionArn"])
