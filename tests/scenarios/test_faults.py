"""Fault injection with Step Functions Local's MockConfigFile.json (statemachine/test/), selected per
execution as `stateMachineArn#CaseName`. Retry intervals are scaled down, not skipped."""

from __future__ import annotations

import boto3
import pytest

from tests.scenarios.paths import GATE_ERROR_TAIL, REGISTERED_PATH
from training_gate.dal.dynamodb import DecisionLog
from training_gate_cli.local_engine import LocalGate
from training_gate_cli.local_engine.emulated import create_training_job, training_log

GOOD_LOG = training_log(0.912, 0.905, 0.908, 0.901, 0.905)


def packages() -> list:
    sagemaker = boto3.client("sagemaker")
    try:
        return sagemaker.list_model_packages(ModelPackageGroupName="training-gate-models")["ModelPackageSummaryList"]
    except sagemaker.exceptions.ClientError:
        return []


def run_case(gate: LocalGate, job: str, case: str, artifact: bytes, log: list[str] = GOOD_LOG):
    create_training_job(gate, job, log_lines=log, artifact=artifact, statuses=())
    return gate.run({"TrainingJobName": job}, name=f"{job}-{case}", test_case=case)


def task_failures(result) -> list[str]:
    failed = [e for e in result.history if e["type"] in ("TaskFailed", "LambdaFunctionFailed")]
    return [(e.get("taskFailedEventDetails") or e.get("lambdaFunctionFailedEventDetails"))["error"] for e in failed]


def test_describe_throttled_twice_then_answering_decides_as_the_happy_path(gate, iris_artifact):
    result = run_case(gate, "iris-throttle-2", "DescribeThrottledTwice", iris_artifact)
    assert result.states == REGISTERED_PATH and result.status == "SUCCEEDED"
    assert task_failures(result) == ["Lambda.TooManyRequestsException"] * 2
    assert len(gate.retries.intervals) == 2 and all(0 <= i <= 2 for i in gate.retries.intervals)


def test_describe_throttled_beyond_the_retry_budget_is_a_gate_error_for_operations(gate, iris_artifact):
    result = run_case(gate, "iris-throttle-5", "DescribeThrottledBeyondRetries", iris_artifact)
    assert (result.status, result.error) == ("FAILED", "GateError")
    assert task_failures(result) == ["Lambda.TooManyRequestsException"] * 5
    assert result.states[-3:] == GATE_ERROR_TAIL
    (note,) = gate.operations_notifications()
    assert "Lambda.TooManyRequestsException" in note["Message"]
    assert list(gate.notifications()) == [] and packages() == []


@pytest.mark.parametrize(
    ("case", "error", "mocked"),
    [
        ("LambdaServiceExceptionOnce", "Lambda.ServiceException", 5),
        ("LambdaThrottledOnce", "Lambda.TooManyRequestsException", 6),
    ],
)
def test_each_lambda_task_failing_once_is_retried_and_succeeds(gate, iris_artifact, case, error, mocked):
    result = run_case(gate, f"iris-{case.lower()}", case, iris_artifact)
    assert result.states == REGISTERED_PATH and result.status == "SUCCEEDED"
    assert task_failures(result) == [error] * mocked
    assert len(packages()) == 1


def test_a_lambda_task_timing_out_is_a_gate_error_for_operations(gate, iris_artifact):
    result = run_case(gate, "iris-timeout", "InspectTimesOut", iris_artifact)
    assert (result.status, result.error) == ("FAILED", "GateError")
    assert "InspectArtifact" in result.states and "EvaluatePolicy" not in result.states
    (note,) = gate.operations_notifications()
    assert "States.Timeout" in note["Message"]


def test_registration_throttled_then_succeeding_creates_exactly_one_package(gate, iris_artifact):
    result = run_case(gate, "iris-register-retry", "RegisterThrottledThenSucceeds", iris_artifact)
    assert result.status == "SUCCEEDED"
    assert task_failures(result) == ["Lambda.TooManyRequestsException"]
    assert len(packages()) == 1


def test_sns_failing_ends_as_notification_failed_and_keeps_the_decision_for_a_rerun(gate, iris_artifact):
    weak = training_log(0.7, 0.7, 0.7, 0.7, 0.7)
    result = run_case(gate, "iris-sns-down", "OwnersNotificationFails", iris_artifact, weak)
    assert (result.status, result.error) == ("FAILED", "NotificationFailed")
    assert task_failures(result) == ["NotificationThrottled"] * 5  # first try + 4 retries
    (item,) = DecisionLog(gate.decision_table).history("iris-sns-down")
    assert (item["outcome"], item["status"]) == ("reject", "decided")
    (alert,) = gate.operations_notifications()
    assert "NotificationFailed" in alert["Subject"]


def test_an_unknown_test_case_is_refused():
    from training_gate_cli.local_engine import LocalEngineError, load_test_case

    with pytest.raises(LocalEngineError, match="no test case 'Nope'"):
        load_test_case({"StateMachines": {"training-gate": {"TestCases": {}}}}, "training-gate", "Nope")
