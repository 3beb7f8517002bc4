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
