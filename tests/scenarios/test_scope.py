"""Opt-in scope: which jobs start the gate, what a manual execution judges, and an artifact that holds
no model of a framework the gate judges (skipped: operations told once, the owners never, the job's own
package untouched)."""

from __future__ import annotations

import json

import boto3

from training_gate.dal.dynamodb import DecisionLog
from training_gate_cli.artifacts import pack_model_tar_gz
from training_gate_cli.local_engine import LocalGate
from training_gate_cli.local_engine.emulated import create_training_job, state_change_event, training_log

GOOD_LOG = training_log(0.912, 0.905, 0.908, 0.901, 0.905)
GROUP = "training-gate-models"
# A model of a framework the gate recognises and does not judge: a PMML document.
PMML_ARTIFACT = pack_model_tar_gz({"model.pmml": b'<?xml version="1.0"?>\n<PMML version="4.4">'})


def test_an_untagged_jobs_event_does_not_start_the_gate(gate: LocalGate, iris_artifact: bytes):
    job = create_training_job(gate, "untagged", log_lines=GOOD_LOG, artifact=iris_artifact, tags={})
    assert gate.route_event(state_change_event(job, "Completed")) is None
    other = create_training_job(
        gate, "other-tag", log_lines=GOOD_LOG, artifact=iris_artifact, tags={"training-gate": "disabled"}
    )
    assert gate.route_event(state_change_event(other, "Completed")) is None


def test_a_tagged_jobs_event_starts_the_gate_and_is_judged(gate: LocalGate, iris_artifact: bytes):
    job = create_training_job(
        gate, "tagged", log_lines=GOOD_LOG, artifact=iris_artifact, tags={"training-gate": "enabled", "team": "ml"}
    )
    execution_input = gate.route_event(state_change_event(job, "Completed"))
    assert execution_input is not None and execution_input["TrainingJobName"] == "tagged"
    result = gate.run(execution_input, name="tagged")
    assert result.states[-1] == "Registered", (result.error, result.cause)


def test_a_manual_execution_judges_an_untagged_job(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "manual-untagged", log_lines=GOOD_LOG, artifact=iris_artifact, tags={})
    result = gate.run({"TrainingJobName": "manual-untagged"}, name="manual-untagged")
    assert result.states[-1] == "Registered", (result.error, result.cause)


def test_an_artifact_with_no_judged_model_is_skipped_once_for_operations_and_never_for_the_owners(
    gate: LocalGate,
):
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    own = sagemaker.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval")
    job = create_training_job(
        gate,
        "pmml-job",
        log_lines=GOOD_LOG,
        artifact=PMML_ARTIFACT,
        output_model_package_arn=own["ModelPackageArn"],
    )
    result = gate.run(gate.route_event(state_change_event(job, "Completed")), name="pmml-job")

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.states[-5:] == [
        "RecordOutcome",
        "AfterRecord",
        "NotifyOperationsSkipped",
        "AfterSkippedNotice",
        "Skipped",
    ]
    assert result.output["outcome"] == "skipped"
    assert result.output["reason_codes"] == ["NOT_A_SKLEARN_MODEL"]

    assert list(gate.notifications()) == []
    (note,) = gate.operations_notifications()
    assert note["Subject"].startswith("Model skipped, not scikit-learn: pmml-job")
    assert "model.pmml" in note["Message"]
    attributes = {k: v["Value"] for k, v in note["MessageAttributes"].items()}
    assert attributes["decision"] == "skipped"
    assert json.loads(attributes["reason_codes"]) == ["NOT_A_SKLEARN_MODEL"]

    (event,) = gate.decision_events()
    assert (event["detail"]["outcome"], event["detail"]["reason_codes"]) == ("skipped", ["NOT_A_SKLEARN_MODEL"])

    bucket, key = result.output["report_uri"].removeprefix("s3://").split("/", 1)
    report = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report["decision"]["outcome"] == "skipped" and report["inspection"]["verdict"] == "skip"

    described = sagemaker.describe_model_package(ModelPackageName=own["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert len(sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]) == 1

    (item,) = DecisionLog(gate.decision_table).history("pmml-job")
    assert (item["status"], item["outcome"], item["completion"]) == ("complete", "skipped", "skipped")
    again = gate.run({"TrainingJobName": "pmml-job"}, name="pmml-job-again")
    assert again.states[-1] == "DuplicateDecision"
    assert list(gate.operations_notifications()) == [] and list(gate.notifications()) == []
