"""Registration exactly once, adoption of a job's own package, decision events, notifications."""

from __future__ import annotations

import json

import boto3

from training_gate.dal.aws import DecisionLog
from training_gate_cli.emulated import create_training_job, state_change_event, training_log
from training_gate_cli.local_engine import LocalGate

GOOD_LOG = training_log(0.912, 0.905, 0.908, 0.901, 0.905)
GROUP = "training-gate-models"


def packages() -> list[dict]:
    return boto3.client("sagemaker").list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]


def test_the_same_event_three_times_at_once_registers_one_package(gate: LocalGate, iris_artifact: bytes):
    job = create_training_job(gate, "iris-dup", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    execution_input = gate.route_event(state_change_event(job, "Completed"))
    arns = [gate.start(execution_input, name=f"iris-dup-{i}") for i in range(3)]
    results = [gate.watch(arn) for arn in arns]

    assert [r.status for r in results] == ["SUCCEEDED"] * 3, [(r.error, r.cause, r.states) for r in results]
    registered = [r for r in results if r.states[-1] == "Registered"]
    duplicates = [r for r in results if r.states[-1] == "DuplicateDecision"]
    assert (len(registered), len(duplicates)) == (1, 2)
    assert {d.output["original_execution"] for d in duplicates} == {registered[0].arn}
    assert len(packages()) == 1
    (item,) = DecisionLog(gate.decision_table).history("iris-dup")
    assert (item["status"], item["outcome"], item["duplicates"]) == ("registered", "pass", "2")
    assert set(item["duplicate_executions"]) == {d.arn for d in duplicates}
    assert item["model_package_arn"] == registered[0].output["ModelPackageArn"]
    assert [e["detail"]["outcome"] for e in gate.decision_events()] == ["pass"]


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
    assert result.output["ModelPackageArn"] == own["ModelPackageArn"] and result.output["adopted"] is True
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
        log_lines=training_log(0.7, 0.7, 0.7, 0.7, 0.7),
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


def test_a_failed_notification_still_ends_with_the_decision_and_keeps_the_record(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "iris-nosns", log_lines=training_log(0.7, 0.7, 0.7, 0.7, 0.7), artifact=iris_artifact)
    boto3.client("sns").delete_topic(TopicArn=gate.topic_arn)
    result = gate.run({"TrainingJobName": "iris-nosns"}, name="nosns")
    assert result.error == "ModelRejected"
    assert result.states[-2:] == ["NotifyRejected", "ModelRejected"]
    (item,) = DecisionLog(gate.decision_table).history("iris-nosns")
    assert item["outcome"] == "reject"


def test_a_gate_error_after_the_decision_frees_it_for_a_rerun(gate: LocalGate, iris_artifact: bytes, monkeypatch):
    from training_gate.dal import aws

    create_training_job(gate, "iris-retry", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())

    def refuse(self, request):
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr(aws.ModelRegistry, "create_package", refuse)
    failed = gate.run({"TrainingJobName": "iris-retry"}, name="retry-1")
    assert failed.error == "GateError" and "MarkDecisionFailed" in failed.states
    (item,) = DecisionLog(gate.decision_table).history("iris-retry")
    assert item["status"] == "failed"
    monkeypatch.undo()
    rerun = gate.run({"TrainingJobName": "iris-retry"}, name="retry-2")
    assert rerun.states[-1] == "Registered"
    assert len(packages()) == 1


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
