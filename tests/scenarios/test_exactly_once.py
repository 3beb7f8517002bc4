"""Exactly once, with a failure between any two side effects.

The decision item names its owner; every step is idempotent for its own execution; an unfinished item
whose owner no longer runs is taken over by the next execution. Each case breaks the gate at one
point, re-runs it as operations would, and checks that the job ends with exactly one package or one
notification, one decision event, and an item that tells the true story."""

from __future__ import annotations

import boto3
import pytest

from tests.scenarios.paths import GATE_ERROR_TAIL
from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.events import DecisionEventRefused, DecisionEvents
from training_gate.dal.sagemaker import ModelRegistry
from training_gate_cli.local_engine import Fault, LocalGate
from training_gate_cli.local_engine.emulated import create_training_job, training_log

GOOD_LOG = training_log(0.912, 0.905, 0.908, 0.901, 0.905)
WEAK_LOG = training_log(0.7, 0.7, 0.7, 0.7, 0.7)
GROUP = "training-gate-models"


def packages() -> list[dict]:
    sagemaker = boto3.client("sagemaker")
    try:
        return sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    except sagemaker.exceptions.ClientError:
        return []


def item(gate: LocalGate, job: str) -> dict:
    (found,) = DecisionLog(gate.decision_table).history(job)
    return found


def failures(result) -> list[str]:
    failed = [e for e in result.history if e["type"] in ("TaskFailed", "LambdaFunctionFailed")]
    return [(e.get("taskFailedEventDetails") or e.get("lambdaFunctionFailedEventDetails"))["error"] for e in failed]


def assert_registered_once(gate: LocalGate, job: str, result) -> None:
    assert result.states[-1] == "Registered", (result.error, result.cause)
    (package,) = packages()
    assert package["ModelPackageArn"] == result.output["model_package_arn"]
    record = item(gate, job)
    assert (record["status"], record["completion"], record["model_package_arn"]) == (
        "complete",
        "registered",
        package["ModelPackageArn"],
    )
    assert [e["detail"]["outcome"] for e in gate.decision_events()] == ["pass"]
    assert list(gate.notifications()) == []


def assert_notified_once(gate: LocalGate, job: str, result) -> None:
    assert result.error == "ModelRejected", (result.error, result.cause)
    (note,) = gate.notifications()
    assert note["Subject"].startswith(f"Model rejected: {job}")
    record = item(gate, job)
    assert (record["status"], record["completion"]) == ("complete", "notified")
    assert [e["detail"]["outcome"] for e in gate.decision_events()] == ["reject"]
    assert packages() == []


@pytest.mark.parametrize(("log", "check"), [(GOOD_LOG, assert_registered_once), (WEAK_LOG, assert_notified_once)])
def test_a_lost_evaluate_response_is_retried_and_the_execution_finds_its_own_decision(
    gate: LocalGate, iris_artifact: bytes, log, check
):
    job = f"lost-{'pass' if log is GOOD_LOG else 'reject'}"
    create_training_job(gate, job, log_lines=log, artifact=iris_artifact, statuses=())
    gate.faults.append(Fault(function="EvaluatePolicy", kind="lose_response"))
    result = gate.run({"TrainingJobName": job}, name=job)
    assert failures(result)[:1] == ["Lambda.ServiceException"]
    assert result.states.count("EvaluatePolicy") == 1  # a retry is the same state
    check(gate, job, result)
    assert item(gate, job)["owner"] == result.arn and "takeovers" not in item(gate, job)


def test_a_crash_after_the_decision_is_written_is_taken_over_by_the_rerun(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "crash-after-write", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    gate.faults.append(Fault(function="EvaluatePolicy", kind="error", error="RuntimeError"))
    first = gate.run({"TrainingJobName": "crash-after-write"}, name="crash-1")
    assert (first.error, first.states[-3:]) == ("GateError", GATE_ERROR_TAIL)
    assert (item(gate, "crash-after-write")["status"], item(gate, "crash-after-write")["owner"]) == (
        "decided",
        first.arn,
    )
    (alert,) = gate.operations_notifications()
    assert "crash-after-write" in alert["Message"] and "RuntimeError" in alert["Message"]

    rerun = gate.run({"TrainingJobName": "crash-after-write"}, name="crash-2")
    assert_registered_once(gate, "crash-after-write", rerun)
    record = item(gate, "crash-after-write")
    assert (record["owner"], record["execution_arn"], record["takeovers"]) == (rerun.arn, first.arn, [rerun.arn])
    assert rerun.output["resumed"] is True


def test_a_refused_decision_event_tells_no_one_until_the_rerun_tells_the_owners_once(
    gate: LocalGate, iris_artifact: bytes, monkeypatch
):
    create_training_job(gate, "event-refused", log_lines=WEAK_LOG, artifact=iris_artifact, statuses=())

    def refuse(self, detail, resources):
        raise DecisionEventRefused("EventBridge refused the decision event: [{'ErrorCode': 'InternalFailure'}]")

    monkeypatch.setattr(DecisionEvents, "publish", refuse)
    first = gate.run({"TrainingJobName": "event-refused"}, name="event-1")
    assert (first.error, "NotifyOwners" in first.states) == ("GateError", False)
    assert list(gate.notifications()) == []
    assert "DecisionEventRefused" in next(gate.operations_notifications())["Message"]
    monkeypatch.undo()

    rerun = gate.run({"TrainingJobName": "event-refused"}, name="event-2")
    assert_notified_once(gate, "event-refused", rerun)


@pytest.mark.parametrize("token_remembered", [True, False], ids=["same-token", "token-forgotten"])
def test_an_execution_stopped_between_creating_the_package_and_recording_it_never_makes_a_second(
    gate: LocalGate, iris_artifact: bytes, monkeypatch, token_remembered: bool
):
    job = f"stopped-{token_remembered}".lower()
    create_training_job(gate, job, log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    original = ModelRegistry.create_package

    def create_then_die(self, request):
        original(self, request)
        with gate.acting_as_person():
            client = boto3.client("stepfunctions")
            (running,) = client.list_executions(stateMachineArn=gate.state_machine_arn, statusFilter="RUNNING")[
                "executions"
            ]
            client.stop_execution(executionArn=running["executionArn"], error="Aborted", cause="stopped by a person")
        raise RuntimeError("the function was stopped with its execution")

    monkeypatch.setattr(ModelRegistry, "create_package", create_then_die)
    first = gate.run({"TrainingJobName": job}, name=f"{job}-1")
    monkeypatch.undo()
    assert first.status == "ABORTED"
    assert first.alert and first.alert["alerted"] is True  # no Catch runs on an abort: the event does
    assert len(packages()) == 1 and item(gate, job)["status"] == "decided"
    if not token_remembered:
        gate.client_tokens.clear()  # past SageMaker's idempotency window: the token no longer helps

    rerun = gate.run({"TrainingJobName": job}, name=f"{job}-2")
    assert_registered_once(gate, job, rerun)


def test_a_register_task_timing_out_before_it_ran_is_registered_once_by_the_rerun(
    gate: LocalGate, iris_artifact: bytes
):
    create_training_job(gate, "register-timeout", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    # A function that times out is Lambda.Unknown to Step Functions.
    gate.faults.append(Fault(function="RegisterModel", kind="crash", error="Lambda.Unknown"))
    first = gate.run({"TrainingJobName": "register-timeout"}, name="timeout-1")
    assert first.error == "GateError" and packages() == []
    rerun = gate.run({"TrainingJobName": "register-timeout"}, name="timeout-2")
    assert_registered_once(gate, "register-timeout", rerun)


def test_a_lost_register_response_is_retried_without_a_second_package_or_event(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "lost-register", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    gate.faults.append(Fault(function="RegisterModel", kind="lose_response"))
    result = gate.run({"TrainingJobName": "lost-register"}, name="lost-register")
    assert failures(result) == ["Lambda.ServiceException"]
    assert_registered_once(gate, "lost-register", result)


def test_a_second_execution_while_the_owner_runs_ends_at_once_naming_it_and_takes_over_after_it_died(
    gate: LocalGate, iris_artifact: bytes
):
    create_training_job(gate, "owner-running", log_lines=WEAK_LOG, artifact=iris_artifact, statuses=())
    create_training_job(gate, "slow-job", log_lines=GOOD_LOG, statuses=("InProgress",) * 50, final_status="InProgress")
    # An execution that stays RUNNING for a while: a job still training, polled every second.
    slow = gate.start({"TrainingJobName": "slow-job", "poll_interval_seconds": 1, "max_polls": 30}, name="slow")
    log = DecisionLog(gate.decision_table)
    first = gate.run({"TrainingJobName": "owner-running"}, name="owner-1")
    assert_notified_once(gate, "owner-running", first)
    # Make the unfinished decision belong to the running execution, as if it had decided and not yet
    # notified (the owners' message and the event are what is left to do).
    boto3.client("dynamodb").update_item(
        TableName=gate.decision_table,
        Key={
            "training_job": {"S": "owner-running"},
            "policy_sha256": {"S": item(gate, "owner-running")["policy_sha256"]},
        },
        UpdateExpression="SET #o = :slow, #s = :decided REMOVE event_published, completion",
        ExpressionAttributeNames={"#o": "owner", "#s": "status"},
        ExpressionAttributeValues={":slow": {"S": slow}, ":decided": {"S": "decided"}},
    )
    duplicate = gate.run({"TrainingJobName": "owner-running"}, name="owner-2")
    assert duplicate.states[-1] == "DuplicateInProgress"
    assert duplicate.output == {
        "duplicate": True,
        "in_progress": True,
        "training_job_name": "owner-running",
        "owner_execution": slow,
        "pipeline_token_left_with_owner": False,
    }
    assert list(gate.notifications()) == [] and list(gate.decision_events()) == []

    boto3.client("stepfunctions").stop_execution(executionArn=slow, error="Aborted", cause="a person stopped it")
    stopped = gate.watch(slow)
    assert stopped.status == "ABORTED" and stopped.alert["alerted"] is True
    (alert,) = gate.operations_notifications()
    assert alert["Subject"] == "training-gate aborted: Aborted - slow-job"
    rerun = gate.run({"TrainingJobName": "owner-running"}, name="owner-3")
    assert_notified_once(gate, "owner-running", rerun)
    assert log.get("owner-running", item(gate, "owner-running")["policy_sha256"]).takeovers == [rerun.arn]


def test_an_unfinished_legacy_item_is_taken_over_and_decided_anew(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "legacy", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    dry = gate.run({"TrainingJobName": "legacy", "dry_run": True}, name="legacy-dry")
    sha = (
        boto3.client("s3")
        .get_object(Bucket=gate.reports_bucket, Key=dry.output["report_uri"].split("/", 3)[3])["Body"]
        .read()
    )
    policy_sha256 = __import__("json").loads(sha)["decision"]["policy_sha256"]
    # An item as the previous release wrote it: no owner, no stored decision, marked failed.
    boto3.client("dynamodb").put_item(
        TableName=gate.decision_table,
        Item={
            "training_job": {"S": "legacy"},
            "policy_sha256": {"S": policy_sha256},
            "status": {"S": "failed"},
            "outcome": {"S": "pass"},
            "execution_arn": {"S": "arn:aws:states:us-east-1:123456789012:execution:training-gate:old"},
        },
    )
    rerun = gate.run({"TrainingJobName": "legacy"}, name="legacy-rerun")
    assert_registered_once(gate, "legacy", rerun)
    assert item(gate, "legacy")["execution_arn"] == rerun.arn


def test_an_execution_stopped_after_the_event_and_before_the_owners_heard_tells_them_once_on_the_rerun(
    gate: LocalGate, iris_artifact: bytes
):
    create_training_job(gate, "stopped-before-notify", log_lines=WEAK_LOG, artifact=iris_artifact, statuses=())
    gate.faults.append(Fault(function="RecordOutcome", kind="abort"))
    first = gate.run({"TrainingJobName": "stopped-before-notify"}, name="before-notify-1")
    assert first.status == "ABORTED" and "NotifyOwners" not in first.states
    assert list(gate.notifications()) == []
    (alert,) = gate.operations_notifications()
    assert alert["Subject"].startswith("training-gate aborted")
    assert item(gate, "stopped-before-notify")["event_published"]

    rerun = gate.run({"TrainingJobName": "stopped-before-notify"}, name="before-notify-2")
    assert_notified_once(gate, "stopped-before-notify", rerun)  # the event too: published once, before
