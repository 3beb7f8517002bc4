"""Fault injection with Step Functions Local's MockConfigFile.json (statemachine/test/), selected per
execution as `stateMachineArn#CaseName`. Retry intervals are scaled down, not skipped."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from tests.scenarios.paths import REGISTERED_PATH
from training_gate.dal.aws import DecisionLog
from training_gate_cli.emulated import create_training_job, training_log
from training_gate_cli.local_engine import LocalGate

GOOD_LOG = training_log(0.912, 0.905, 0.908, 0.901, 0.905)


@pytest.fixture
def fast_gate(template: dict) -> Iterator[LocalGate]:
    with LocalGate(template, retry_time_scale=0.001) as local:
        yield local


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
    return [e["taskFailedEventDetails"]["error"] for e in result.history if e["type"] == "TaskFailed"]


def test_describe_throttled_twice_then_answering_decides_as_the_happy_path(fast_gate, iris_artifact):
    result = run_case(fast_gate, "iris-throttle-2", "DescribeThrottledTwice", iris_artifact)
    assert result.states == REGISTERED_PATH and result.status == "SUCCEEDED"
    assert task_failures(result) == ["SageMaker.ThrottlingException"] * 2
    assert len(fast_gate.retries.intervals) == 2 and all(0 <= i <= 2 for i in fast_gate.retries.intervals)


def test_describe_throttled_beyond_the_retry_budget_is_a_gate_error_and_registers_nothing(fast_gate, iris_artifact):
    result = run_case(fast_gate, "iris-throttle-6", "DescribeThrottledBeyondRetries", iris_artifact)
    assert (result.status, result.error) == ("FAILED", "GateError")
    assert task_failures(result) == ["SageMaker.ThrottlingException"] * 6
    assert result.states[-3:] == ["NotifyGateError", "DecisionRecorded", "GateError"]
    (note,) = fast_gate.notifications()
    assert "SageMaker.ThrottlingException" in note["Message"]
    assert packages() == []


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("LambdaServiceExceptionOnce", "Lambda.ServiceException"),
        ("LambdaThrottledOnce", "Lambda.TooManyRequestsException"),
    ],
)
def test_each_lambda_task_failing_once_is_retried_and_succeeds(fast_gate, iris_artifact, case, error):
    result = run_case(fast_gate, f"iris-{case.lower()}", case, iris_artifact)
    assert result.states == REGISTERED_PATH and result.status == "SUCCEEDED"
    mocked = 5 if case == "LambdaThrottledOnce" else 4
    assert task_failures(result) == [error] * mocked
    assert len(packages()) == 1


def test_a_lambda_task_timing_out_is_a_gate_error_with_a_notification(fast_gate, iris_artifact):
    result = run_case(fast_gate, "iris-timeout", "InspectTimesOut", iris_artifact)
    assert (result.status, result.error) == ("FAILED", "GateError")
    assert "InspectArtifact" in result.states and "EvaluatePolicy" not in result.states
    (note,) = fast_gate.notifications()
    assert "States.Timeout" in note["Message"]


def test_registration_throttled_then_succeeding_creates_exactly_one_package(fast_gate, iris_artifact):
    result = run_case(fast_gate, "iris-register-retry", "RegisterThrottledThenSucceeds", iris_artifact)
    assert result.status == "SUCCEEDED"
    assert task_failures(result) == ["Lambda.TooManyRequestsException"]
    assert len(packages()) == 1


def test_sns_failing_still_ends_with_the_decision_and_records_it(fast_gate, iris_artifact):
    weak = training_log(0.7, 0.7, 0.7, 0.7, 0.7)
    result = run_case(fast_gate, "iris-sns-down", "RejectionNotificationFails", iris_artifact, weak)
    assert (result.status, result.error) == ("FAILED", "ModelRejected")
    assert task_failures(result) == ["SNS.InternalErrorException"] * 5  # first try + 4 retries
    (item,) = DecisionLog(fast_gate.decision_table).history("iris-sns-down")
    assert item["outcome"] == "reject"


def test_an_unknown_test_case_is_refused():
    from training_gate_cli.local_engine import LocalEngineError, load_test_case

    with pytest.raises(LocalEngineError, match="no test case 'Nope'"):
        load_test_case({"StateMachines": {"training-gate": {"TestCases": {}}}}, "training-gate", "Nope")
