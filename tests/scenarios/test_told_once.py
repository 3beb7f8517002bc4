"""Every failure told once, and the decision item telling every ending.

A failed or stopped job's notice is claimed like a decision, so duplicate deliveries and re-runs
tell the owners once. The owners' message is sent only by the execution that owns the decision,
checked in the step that sends it, so a redrive after a take-over sends nothing. How each execution
that touched a decision ended (NotificationFailed, GateError after the claim, Superseded) is on the
item, with its error."""

from __future__ import annotations

import boto3
import pytest

from training_gate.dal.dynamodb import DecisionLog
from training_gate_cli.artifacts import pack_model_tar_gz
from training_gate_cli.local_engine import Fault, LocalGate
from training_gate_cli.local_engine.emulated import create_training_job, state_change_event, training_log

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


def failed_job(gate: LocalGate, name: str, status: str) -> dict:
    reason = "AlgorithmError: ExecuteUserScriptError: exit code 1" if status == "Failed" else None
    return create_training_job(
        gate, name, log_lines=["Traceback"], final_status=status, statuses=(), failure_reason=reason
    )


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_the_same_failed_event_delivered_twice_tells_the_owners_once(gate: LocalGate, status: str):
    job = failed_job(gate, f"told-once-{status.lower()}", status)
    execution_input = gate.route_event(state_change_event(job, status))
    first = gate.run(execution_input, name=f"{job['TrainingJobName']}-1")
    second = gate.run(execution_input, name=f"{job['TrainingJobName']}-2")

    assert (first.error, second.status, second.states[-1]) == ("TrainingJobFailed", "SUCCEEDED", "FailureAlreadyTold")
    assert second.output == {
        "duplicate": True,
        "training_job_name": job["TrainingJobName"],
        "original_execution": first.arn,
    }
    (note,) = gate.notifications()
    assert note["Subject"].startswith(f"Training job {status.lower()}: {job['TrainingJobName']}")
    record = item(gate, job["TrainingJobName"])
    assert (record["policy_sha256"], record["outcome"], record["status"], record["completion"]) == (
        "not-judged",
        "training_failed",
        "complete",
        "notified",
    )
    assert (record["owner"], record["duplicates"], record["notified_by"]) == (first.arn, 1, first.arn)
    assert list(gate.operations_notifications()) == []


def test_three_failed_deliveries_at_once_tell_the_owners_once(gate: LocalGate):
    job = failed_job(gate, "told-once-concurrent", "Failed")
    execution_input = gate.route_event(state_change_event(job, "Failed"))
    results = [gate.watch(gate.start(execution_input, name=f"concurrent-{i}")) for i in range(3)]
    ends = sorted(r.states[-1] for r in results)
    assert ends[-1] == "TrainingJobFailed" and set(ends[:-1]) <= {"FailureAlreadyTold", "FailureBeingTold"}, ends
    assert len(list(gate.notifications())) == 1


def test_a_notice_whose_owner_was_stopped_is_told_once_by_the_rerun_and_never_by_a_redrive(gate: LocalGate):
    job = failed_job(gate, "told-once-stopped", "Failed")
    execution_input = gate.route_event(state_change_event(job, "Failed"))
    gate.faults.append(Fault(function="NotifyOwners", kind="stop"))
    first = gate.run(execution_input, name="stopped-notice-1")
    assert first.status == "ABORTED" and list(gate.notifications()) == []
    rerun = gate.run(execution_input, name="stopped-notice-2")
    assert rerun.error == "TrainingJobFailed"
    assert len(list(gate.notifications())) == 1

    gate.redrive(first.arn)
    redriven = gate.watch(first.arn)
    assert (redriven.status, redriven.states[-2:]) == ("SUCCEEDED", ["AfterFailureNotice", "Superseded"])
    assert list(gate.notifications()) == []
    record = item(gate, "told-once-stopped")
    assert (record["owner"], record["takeovers"]) == (rerun.arn, [rerun.arn])
    assert record["endings"]["stopped-notice-1"]["ending"] == "Superseded"


@pytest.mark.parametrize(
    ("log", "stopped_in", "resumes_at"),
    [(WEAK_LOG, "NotifyOwners", "AfterNotify"), (GOOD_LOG, "RegisterModel", "RegisterModel")],
    ids=["reject", "pass"],
)
def test_a_redrive_after_a_take_over_makes_no_side_effect(
    gate: LocalGate, iris_artifact: bytes, log, stopped_in: str, resumes_at: str
):
    job = f"redrive-{stopped_in.lower()}"
    create_training_job(gate, job, log_lines=log, artifact=iris_artifact, statuses=())
    gate.faults.append(Fault(function=stopped_in, kind="stop"))
    first = gate.run({"TrainingJobName": job}, name=f"{job}-1")
    assert first.status == "ABORTED" and first.states[-1] == stopped_in
    (alert,) = gate.operations_notifications()
    assert alert["Subject"].startswith("training-gate aborted")
    assert item(gate, job)["endings"][f"{job}-1"]["ending"] == "Aborted"

    rerun = gate.run({"TrainingJobName": job}, name=f"{job}-2")  # operations re-run it: it takes over
    assert rerun.states[-1] in ("Registered", "ModelRejected") or rerun.error == "ModelRejected"
    told = list(gate.notifications())
    events = list(gate.decision_events())

    gate.redrive(first.arn)  # someone redrives the stopped execution as well
    redriven = gate.watch(first.arn)
    assert redriven.status == "SUCCEEDED" and redriven.states[-1] == "Superseded"
    again = redriven.states[len(first.states) :]
    assert again[0] == stopped_in and "EvaluatePolicy" not in again  # from the step it stopped in, no earlier
    assert list(gate.notifications()) == [] and list(gate.decision_events()) == []
    assert len(told) == (1 if log is WEAK_LOG else 0) and len(events) == 1
    assert len(packages()) == (0 if log is WEAK_LOG else 1)
    record = item(gate, job)
    assert (record["status"], record["owner"], record["takeovers"]) == ("complete", rerun.arn, [rerun.arn])
    ending = record["endings"][f"{job}-1"]
    assert (ending["ending"], ending["error"]) == ("Superseded", "NotOwner")
    assert rerun.arn in ending["cause"]
    assert list(gate.operations_notifications()) == []
    assert resumes_at in again


def test_the_item_tells_a_notification_that_failed_with_its_error(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "ending-notification", log_lines=WEAK_LOG, artifact=iris_artifact, statuses=())
    sns = boto3.client("sns")
    sns.delete_topic(TopicArn=gate.account.owners_topic_arn)  # as a disabled key would refuse it
    try:
        result = gate.run({"TrainingJobName": "ending-notification"}, name="ending-notification")
    finally:
        sns.create_topic(Name=gate.account.owners_topic_arn.rsplit(":", 1)[-1])
        queue_arn = boto3.client("sqs").get_queue_attributes(
            QueueUrl=gate.account.queue_urls["owners"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=gate.account.owners_topic_arn, Protocol="sqs", Endpoint=queue_arn)
    assert result.error == "NotificationFailed"
    record = item(gate, "ending-notification")
    assert record["status"] == "decided" and "notified_by" not in record  # unfinished: a re-run tells them
    ending = record["endings"]["ending-notification"]
    assert (ending["ending"], ending["error"]) == ("NotificationFailed", "NotificationFailed")
    assert "NotFound" in ending["cause"]
    assert ending["execution_arn"] == result.arn


def test_the_item_tells_a_gate_error_after_the_claim_and_nothing_before_it(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "ending-gate-error", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    gate.faults.append(Fault(function="RecordOutcome", kind="error", error="RuntimeError"))
    gate.faults.append(Fault(function="RegisterModel", kind="error", error="RuntimeError"))
    result = gate.run({"TrainingJobName": "ending-gate-error"}, name="ending-gate-error")
    assert result.error == "GateError"
    ending = item(gate, "ending-gate-error")["endings"]["ending-gate-error"]
    assert (ending["ending"], ending["error"]) == ("GateError", "GateError")
    assert "RuntimeError" in ending["cause"]

    unknown = gate.run({"TrainingJobName": "no-such-job"}, name="ending-before-claim")
    assert unknown.error == "GateError"
    assert DecisionLog(gate.decision_table).history("no-such-job") == []  # no stub item for an ending


def test_a_lost_response_after_the_owners_were_told_is_retried_without_telling_them_again(
    gate: LocalGate, iris_artifact: bytes
):
    create_training_job(gate, "lost-notify", log_lines=WEAK_LOG, artifact=iris_artifact, statuses=())
    gate.faults.append(Fault(function="NotifyOwners", kind="lose_response"))
    result = gate.run({"TrainingJobName": "lost-notify"}, name="lost-notify")
    assert result.error == "ModelRejected"
    assert result.states.count("NotifyOwners") == 1  # the retry is the same state
    assert len(list(gate.notifications())) == 1
    record = item(gate, "lost-notify")
    assert (record["status"], record["completion"], record["notified_by"]) == ("complete", "notified", result.arn)


def test_a_notice_whose_claimant_crashed_after_claiming_is_told_once_by_the_rerun(gate: LocalGate):
    job = failed_job(gate, "notice-crash", "Failed")
    execution_input = gate.route_event(state_change_event(job, "Failed"))
    gate.faults.append(Fault(function="DescribeFailure", kind="error", error="RuntimeError"))
    first = gate.run(execution_input, name="notice-crash-1")
    assert first.error == "GateError" and list(gate.notifications()) == []
    assert item(gate, "notice-crash")["endings"]["notice-crash-1"]["ending"] == "GateError"
    assert "notice-crash" in next(gate.operations_notifications())["Message"]

    rerun = gate.run(execution_input, name="notice-crash-2")
    assert rerun.error == "TrainingJobFailed"
    assert len(list(gate.notifications())) == 1
    assert item(gate, "notice-crash")["takeovers"] == [rerun.arn]


# -- a skipped decision: operations are told, once ----------------------------------------------------------

# A model of a framework the gate recognises and does not judge (a PMML document): the decision is `skipped`.
UNJUDGED_ARTIFACT = pack_model_tar_gz({"model.pmml": b'<?xml version="1.0"?>\n<PMML version="4.4">'})
NAMED_ENDS = {"Skipped", "DuplicateDecision", "DuplicateInProgress", "Superseded", "NotificationFailed", "GateError"}


def skip_notices(notes: list[dict]) -> list[str]:
    return [n["Subject"] for n in notes if n["Subject"].startswith("Model skipped, not scikit-learn")]


def test_a_skipped_decision_stopped_before_operations_heard_is_told_by_the_rerun(gate: LocalGate):
    job = "skip-stopped-before-notice"
    create_training_job(gate, job, log_lines=GOOD_LOG, artifact=UNJUDGED_ARTIFACT, statuses=())
    gate.faults.append(Fault(function="RecordOutcome", kind="abort"))  # the event is out, no notice yet
    first = gate.run({"TrainingJobName": job}, name=f"{job}-1")
    assert first.status == "ABORTED" and skip_notices(list(gate.operations_notifications())) == []
    assert item(gate, job)["status"] != "complete"  # the notice completes it, and it was not sent

    rerun = gate.run({"TrainingJobName": job}, name=f"{job}-2")  # "Re-run, do not redrive"
    assert rerun.states[-1] == "Skipped"
    (notice,) = skip_notices(list(gate.operations_notifications()))
    assert notice.startswith(f"Model skipped, not scikit-learn: {job}")
    assert len(list(gate.decision_events())) == 1  # the event the first published is not published again
    record = item(gate, job)
    assert (record["status"], record["completion"], record["takeovers"]) == ("complete", "skipped", [rerun.arn])


SKIP_DEATHS = [
    ("EvaluatePolicy", "abort"),
    ("RecordOutcome", "stop"),
    ("RecordOutcome", "abort"),
    ("NotifyOwners", "stop"),
    ("NotifyOwners", "abort"),
    ("NotifyOwners", "lose_response"),
    ("NotifyOwners", "time_out"),
]


@pytest.mark.parametrize(("function", "kind"), SKIP_DEATHS, ids=["-".join(d) for d in SKIP_DEATHS])
def test_a_skipped_decision_dying_between_any_two_side_effects_tells_operations_once(
    gate: LocalGate, function: str, kind: str
):
    job = f"skip-{function}-{kind}".lower().replace("_", "-")
    create_training_job(gate, job, log_lines=GOOD_LOG, artifact=UNJUDGED_ARTIFACT, statuses=())
    gate.faults.append(Fault(function=function, kind=kind))
    first = gate.run({"TrainingJobName": job}, name=f"{job}-1")
    gate.faults.clear()
    rerun = gate.run({"TrainingJobName": job}, name=f"{job}-2")
    redriven = None
    if first.status != "SUCCEEDED":
        gate.redrive(first.arn)
        redriven = gate.watch(first.arn)
    operations = list(gate.operations_notifications())
    summary = {
        "first": (first.status, first.states[-2:]),
        "rerun": (rerun.status, rerun.states[-2:]),
        "redriven": redriven and (redriven.status, redriven.states[-2:]),
        "operations": [n["Subject"] for n in operations],
    }
    assert len(skip_notices(operations)) == 1, summary
    assert list(gate.notifications()) == [], summary  # never the owners: nothing to retrain
    assert len(list(gate.decision_events())) == 1 and packages() == [], summary
    for result in (first, rerun, redriven):
        if result is not None and result.status == "SUCCEEDED":
            assert result.states[-1] in NAMED_ENDS, summary
        elif result is not None:
            assert result.alert and result.alert["alerted"], summary  # an operations alert, not silence
    record = item(gate, job)
    assert (record["status"], record["completion"]) == ("complete", "skipped"), (record, summary)
    if first.status != "SUCCEEDED":
        assert f"{job}-1" in record.get("endings", {}), (record, summary)


def test_operations_refusing_the_skip_notice_end_it_notification_failed_and_the_rerun_tells_them(gate: LocalGate):
    job = "skip-operations-refuse"
    create_training_job(gate, job, log_lines=GOOD_LOG, artifact=UNJUDGED_ARTIFACT, statuses=())
    first = gate.run({"TrainingJobName": job}, name=f"{job}-1", test_case="OperationsNotificationFails")
    assert (first.status, first.error) == ("FAILED", "NotificationFailed")
    assert first.states[-3:] == ["NotifyOperationsSkipped", "AnswerNotificationFailed", "NotificationFailed"]
    assert skip_notices(list(gate.operations_notifications())) == []
    record = item(gate, job)
    assert (record["status"], record["closed_by"]) == ("decided", first.arn)

    rerun = gate.run({"TrainingJobName": job}, name=f"{job}-2")
    assert rerun.states[-1] == "Skipped"
    assert len(skip_notices(list(gate.operations_notifications()))) == 1
    assert item(gate, job)["completion"] == "skipped"
