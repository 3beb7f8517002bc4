"""AlertOperations over in-memory ports: designed outcomes are quiet, everything else reaches a person."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from training_gate.dal.stepfunctions import ExecutionDescription
from training_gate.logic.alert import AlertPorts, ExecutionStatusChange, alert_operations

ARN = "arn:aws:states:eu-west-1:123456789012:execution:training-gate:" + "e" * 80


@dataclass
class Described:
    description: ExecutionDescription | None

    def describe(self, execution_arn: str) -> ExecutionDescription | None:
        return self.description


@dataclass
class Topic:
    sent: list[tuple[str, str]] = field(default_factory=list)

    def publish(self, subject: str, message: str, attributes: dict | None = None) -> str:
        self.sent.append((subject, message))
        return "id"


def run(status: str, error: str | None, cause: str | None = "the cause", execution_input: str | None = None):
    topic = Topic()
    description = ExecutionDescription(
        execution_arn=ARN,
        status=status,
        error=error,
        cause=cause,
        input=execution_input if execution_input is not None else json.dumps({"TrainingJobName": "churn-1"}),
    )
    result = alert_operations(
        ExecutionStatusChange(executionArn=ARN, stateMachineArn="arn:sm", status=status),
        AlertPorts(executions=Described(description), operations=topic),  # type: ignore[arg-type]
    )
    return result, topic.sent


@pytest.mark.parametrize("error", ["ModelRejected", "ModelInconclusive", "TrainingJobFailed"])
def test_designed_outcomes_were_told_to_the_owners_and_are_not_repeated_to_operations(error):
    result, sent = run("FAILED", error)
    assert (result.alerted, sent) == (False, [])


@pytest.mark.parametrize(
    ("status", "error", "named"),
    [
        ("FAILED", "GateError", "GateError"),
        ("FAILED", "NotificationFailed", "NotificationFailed"),
        ("FAILED", "States.DataLimitExceeded", "States.DataLimitExceeded"),
        ("FAILED", "States.Runtime", "States.Runtime"),
        ("TIMED_OUT", None, "States.Timeout"),
        ("ABORTED", None, "Aborted"),
    ],
)
def test_everything_else_reaches_operations_with_the_input_to_rerun(status, error, named):
    result, ((subject, message),) = run(status, error)
    assert result.alerted
    assert subject == f"training-gate {status.lower()}: {named} - churn-1"
    assert len(subject) <= 100 and subject.isascii() and subject.isprintable()
    assert '{"TrainingJobName": "churn-1"}' in message and "eu-west-1.console.aws.amazon.com" in message


def test_a_subject_stays_within_snss_limits_whatever_the_input():
    hostile = json.dumps({"TrainingJobName": "é\n" * 200})
    _, ((subject, _message),) = run("FAILED", "GateError" * 20, execution_input=hostile)
    assert len(subject) <= 100 and subject.isascii() and subject.isprintable()


def test_an_unparseable_input_still_alerts_and_says_what_to_send():
    _, ((subject, message),) = run("FAILED", "GateError", execution_input="not json")
    assert subject.endswith("no job name") and '"TrainingJobName": "<the training job' in message


def test_a_stale_describe_still_running_does_not_silence_the_alert():
    topic = Topic()
    stale = ExecutionDescription(execution_arn=ARN, status="RUNNING", input=json.dumps({"TrainingJobName": "j"}))
    result = alert_operations(
        ExecutionStatusChange(executionArn=ARN, stateMachineArn="arn:sm", status="FAILED"),
        AlertPorts(executions=Described(stale), operations=topic),  # type: ignore[arg-type]
    )
    assert result.alerted and len(topic.sent) == 1


def test_the_alert_stays_far_inside_snss_message_limit_whatever_the_input_and_cause():
    big_input = json.dumps({"TrainingJobName": "churn-1", "policy_overrides": {"x": "y" * 250_000}})
    _, ((subject, message),) = run("FAILED", "GateError", cause="c" * 300_000, execution_input=big_input)
    assert len(message.encode()) < 64 * 1024
    assert '{"TrainingJobName": "churn-1"}' in message and subject.endswith("churn-1")


def test_a_pipeline_waiting_on_an_aborted_execution_is_answered_and_operations_read_which():
    from tests.support.fakes import FakeCallbacks, FakeLog
    from training_gate.dal.sagemaker import CallbackAnswerFailed

    topic, callbacks = Topic(), FakeCallbacks()
    execution_input = json.dumps({"TrainingJobName": "churn-1", "pipeline_callback": {"token": "Waits00001"}})
    description = ExecutionDescription(execution_arn=ARN, status="ABORTED", input=execution_input)
    ports = AlertPorts(
        executions=Described(description),  # type: ignore[arg-type]
        operations=topic,  # type: ignore[arg-type]
        log=FakeLog(),  # type: ignore[arg-type]
        callbacks=callbacks,  # type: ignore[arg-type]
    )
    result = alert_operations(ExecutionStatusChange(executionArn=ARN, status="ABORTED"), ports)
    (sent,) = callbacks.sent
    assert (result.pipelines_answered, sent["success"], sent["CallbackToken"]) == (1, False, "Waits00001")
    assert "SageMaker pipeline steps answered: Waits00001 (failure)" in topic.sent[0][1]

    # SageMaker refusing for a reason a person must look at: operations are told that too, whatever else.
    callbacks.fail_with = CallbackAnswerFailed("ResourceLimitExceeded: too many")
    again = alert_operations(ExecutionStatusChange(executionArn=ARN, status="ABORTED"), ports)
    assert again.alerted and again.pipelines_answered == 0
    assert "could not be answered: ResourceLimitExceeded: too many" in topic.sent[1][1]
