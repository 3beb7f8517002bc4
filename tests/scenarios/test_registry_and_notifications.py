"""Registration exactly once, adoption of a job's own package, decision events, notifications."""

from __future__ import annotations

import json

import boto3

from training_gate.dal.dynamodb import DecisionLog
from training_gate_cli.local_engine import LocalGate
from training_gate_cli.local_engine.emulated import create_training_job, state_change_event, training_log

GOOD_LOG = training_log(0.912, 0.905, 0.908, 0.901, 0.905)
WEAK_LOG = training_log(0.7, 0.7, 0.7, 0.7, 0.7)
GROUP = "training-gate-models"


def packages() -> list[dict]:
    try:
        return boto3.client("sagemaker").list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    except boto3.client("sagemaker").exceptions.ClientError:
        return []


def test_the_same_event_three_times_at_once_registers_one_package(gate: LocalGate, iris_artifact: bytes):
    job = create_training_job(gate, "iris-dup", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    execution_input = gate.route_event(state_change_event(job, "Completed"))
    arns = [gate.start(execution_input, name=f"iris-dup-{i}") for i in range(3)]
    results = [gate.watch(arn) for arn in arns]

    assert [r.status for r in results] == ["SUCCEEDED"] * 3, [(r.error, r.cause, r.states) for r in results]
    registered = [r for r in results if r.states[-1] == "Registered"]
    duplicates = [r for r in results if r.states[-1] in ("DuplicateDecision", "DuplicateInProgress")]
    assert (len(registered), len(duplicates)) == (1, 2)
    for duplicate in duplicates:
        named = duplicate.output.get("original_execution") or duplicate.output.get("owner_execution")
        assert named == registered[0].arn
    assert len(packages()) == 1
    (item,) = DecisionLog(gate.decision_table).history("iris-dup")
    assert (item["status"], item["outcome"]) == ("complete", "pass")
    assert item["model_package_arn"] == registered[0].output["model_package_arn"]
    assert [e["detail"]["outcome"] for e in gate.decision_events()] == ["pass"]


def test_a_duplicate_after_completion_names_the_execution_and_its_package(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "iris-again", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    first = gate.run({"TrainingJobName": "iris-again"}, name="again-1")
    again = gate.run({"TrainingJobName": "iris-again"}, name="again-2")
    assert again.states[-1] == "DuplicateDecision"
    assert again.output == {
        "duplicate": True,
        "training_job_name": "iris-again",
        "original_execution": first.arn,
        "outcome": "pass",
        "completion": "registered",
        "model_package_arn": first.output["model_package_arn"],
    }
    (item,) = DecisionLog(gate.decision_table).history("iris-again")
    assert (item["duplicates"], item["duplicate_executions"]) == (1, [again.arn])


def test_a_different_policy_is_a_new_decision(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "iris-repolicy", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    first = gate.run({"TrainingJobName": "iris-repolicy"}, name="policy-a")
    again = gate.run({"TrainingJobName": "iris-repolicy"}, name="policy-a-again")
    other = gate.run(
        {"TrainingJobName": "iris-repolicy", "policy_overrides": {"outcome": {"approval_status": "Approved"}}},
        name="policy-b",
    )
    assert (first.states[-1], again.states[-1], other.states[-1]) == ("Registered", "DuplicateDecision", "Registered")
    history = DecisionLog(gate.decision_table).history("iris-repolicy")
    assert len(history) == 2 and len({h["policy_sha256"] for h in history}) == 2
    assert sorted(p["ModelApprovalStatus"] for p in packages()) == ["Approved", "PendingManualApproval"]


def test_a_job_that_registered_itself_gets_no_second_package(gate: LocalGate, iris_artifact: bytes):
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    own = sagemaker.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval")
    create_training_job(
        gate, "iris-own", log_lines=GOOD_LOG, artifact=iris_artifact, output_model_package_arn=own["ModelPackageArn"]
    )
    result = gate.run(
        {"TrainingJobName": "iris-own", "policy_overrides": {"outcome": {"approval_status": "Approved"}}}, name="own"
    )
    assert result.output["model_package_arn"] == own["ModelPackageArn"] and result.output["adopted"] is True
    assert len(packages()) == 1
    described = sagemaker.describe_model_package(ModelPackageName=own["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "Approved"


def test_a_rejected_job_that_registered_itself_gets_its_package_rejected(gate: LocalGate, iris_artifact: bytes):
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    own = sagemaker.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval")
    create_training_job(
        gate,
        "iris-own-weak",
        log_lines=WEAK_LOG,
        artifact=iris_artifact,
        output_model_package_arn=own["ModelPackageArn"],
    )
    result = gate.run({"TrainingJobName": "iris-own-weak"}, name="own-weak")
    assert result.error == "ModelRejected"
    described = sagemaker.describe_model_package(ModelPackageName=own["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "Rejected"
    assert len(packages()) == 1


def test_rejection_notification_can_be_triaged_and_filtered(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "iris-notify", log_lines=training_log(0.7, 0.71, 0.9, 0.9, 0.9), artifact=iris_artifact)
    result = gate.run({"TrainingJobName": "iris-notify"}, name="notify")
    (note,) = gate.notifications()
    assert note["Subject"] == "Model rejected: iris-notify - accuracy 0.710 not > 0.9"
    attributes = {k: v["Value"] for k, v in note["MessageAttributes"].items()}
    assert attributes["decision"] == "reject" and attributes["model_package_group"] == GROUP
    assert json.loads(attributes["reason_codes"]) == ["THRESHOLD_NOT_MET"]
    message = note["Message"]
    assert "Reasons:\n- [THRESHOLD_NOT_MET] accuracy 0.710 not > 0.9" in message
    assert "Report: https://s3.console.aws.amazon.com/s3/object/" in message
    assert "#/v2/executions/details/" + result.arn.replace(":", "%3A") in message
    assert "logStreamNameFilter$3Diris-notify" in message
    (event,) = gate.decision_events()
    assert (event["source"], event["detail-type"]) == ("training-gate", "Training Gate Decision")
    assert event["detail"]["outcome"] == "reject" and event["detail"]["reason_codes"] == ["THRESHOLD_NOT_MET"]


def test_owners_that_cannot_be_told_end_as_notification_failed_and_operations_hear_of_it(
    gate: LocalGate, iris_artifact: bytes
):
    create_training_job(gate, "iris-nosns", log_lines=WEAK_LOG, artifact=iris_artifact)
    sns = boto3.client("sns")
    sns.delete_topic(TopicArn=gate.account.owners_topic_arn)  # as a disabled key would make publishing fail
    try:
        result = gate.run({"TrainingJobName": "iris-nosns"}, name="nosns")
    finally:
        sns.create_topic(Name=gate.account.owners_topic_arn.rsplit(":", 1)[-1])
        queue_arn = boto3.client("sqs").get_queue_attributes(
            QueueUrl=gate.account.queue_urls["owners"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=gate.account.owners_topic_arn, Protocol="sqs", Endpoint=queue_arn)
    assert (result.status, result.error) == ("FAILED", "NotificationFailed")
    assert result.states[-3:] == ["NotifyOwners", "AnswerNotificationFailed", "NotificationFailed"]
    (alert,) = gate.operations_notifications()
    assert alert["Subject"] == "training-gate failed: NotificationFailed - iris-nosns"
    (item,) = DecisionLog(gate.decision_table).history("iris-nosns")
    assert (item["outcome"], item["status"]) == ("reject", "decided")  # unfinished: a re-run tells the owners
    rerun = gate.run({"TrainingJobName": "iris-nosns"}, name="nosns-rerun")
    assert rerun.error == "ModelRejected"
    assert len(list(gate.notifications())) == 1
    (item,) = DecisionLog(gate.decision_table).history("iris-nosns")
    assert (item["status"], item["owner"], item["takeovers"]) == ("complete", rerun.arn, [rerun.arn])
    assert [e["detail"]["outcome"] for e in gate.decision_events()] == ["reject"]  # published once, before


def emitted_metric_values(stdout: str) -> list[dict]:
    documents = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]
    return [d for d in documents if "MetricValue" in d]


def test_judged_metric_values_are_published_once_per_decision_by_group(
    gate: LocalGate, iris_artifact: bytes, capsys, monkeypatch
):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # the tests and the local engine turn it off
    job = create_training_job(gate, "iris-values", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    execution_input = gate.route_event(state_change_event(job, "Completed"))
    for i in range(2):  # the second delivery is a duplicate: its values are not counted again
        assert gate.run(execution_input, name=f"iris-values-{i}").status == "SUCCEEDED"

    published = emitted_metric_values(capsys.readouterr().out)
    values = {d["Metric"]: d["MetricValue"] for d in published}
    assert len(published) == len(values) == 4, published
    assert values == {"accuracy": [0.905], "precision": [0.908], "recall": [0.901], "f1": [0.905]}
    for document in published:
        (dimensions,) = document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        assert set(dimensions) == {"ModelPackageGroup", "Metric", "service"}
        assert document["ModelPackageGroup"] == GROUP
