"""The whole gate on the local engine: the synthesized ASL, real handlers, emulated SageMaker."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from tests.scenarios.paths import GATE_ERROR_TAIL, NOTIFIED_TAIL, POLL, REGISTERED_PATH
from training_gate_cli.artifacts import pack_model_tar_gz
from training_gate_cli.local_engine import ACCOUNT_ID, REGION, LocalGate
from training_gate_cli.local_engine.emulated import create_training_job, state_change_event, training_log

GOOD_LOG = training_log(0.912, 0.905, 0.908, 0.901, 0.905)


def run_job(gate: LocalGate, name: str, **job_kwargs):
    job = create_training_job(gate, name, **job_kwargs)
    execution_input = gate.route_event(state_change_event(job, job_kwargs.get("final_status", "Completed")))
    assert execution_input == {"TrainingJobName": name, "source_account": ACCOUNT_ID, "source_region": REGION}
    result = gate.run(execution_input, name=f"{name}-run")
    return result, list(gate.notifications())


def s3_json(uri: str) -> dict:
    bucket, key = uri[5:].split("/", 1)
    return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def test_good_job_is_registered_with_its_metrics_and_report(gate: LocalGate, iris_artifact: bytes):
    result, notes = run_job(gate, "iris-good", log_lines=GOOD_LOG, artifact=iris_artifact)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    # Two InProgress polls, then the path of a completed job.
    assert result.states == [*REGISTERED_PATH[:3], *POLL, *POLL, *REGISTERED_PATH[3:]]
    assert notes == [] and list(gate.operations_notifications()) == []
    arn = result.output["model_package_arn"]
    assert arn.endswith("model-package/training-gate-models/1") and result.output["model_package_version"] == "1"
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = package["CustomerMetadataProperties"]
    assert metadata["metric_accuracy"] == "0.905"
    assert (metadata["managed_by"], metadata["training_job_name"], metadata["gate_decision"]) == (
        "training-gate",
        "iris-good",
        "pass",
    )
    stats = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert stats["ContentDigest"].startswith("sha256:")
    assert s3_json(stats["S3Uri"])["multiclass_classification_metrics"]["accuracy"]["value"] == 0.905
    assert "| accuracy (validation:accuracy) | 0.905 | > 0.9 | - | log | PASS |" in result.output["table"]
    assert metadata["gate_report"] == result.output["report_uri"]
    spec = package["InferenceSpecification"]
    assert spec["Containers"][0]["ModelDataUrl"].endswith("iris-good/output/model.tar.gz")
    assert spec["SupportedRealtimeInferenceInstanceTypes"] == ["ml.m5.large"]
    report = s3_json(result.output["report_uri"])
    assert (report["schema_version"], report["dry_run"], report["decision"]["outcome"]) == (4, False, "pass")
    assert report["decision"]["policy_sha256"] == metadata["policy_sha256"]
    assert report["registration"] == {"model_package_arn": arn, "model_package_version": "1", "adopted": False}
    assert report["metrics_uri"].endswith("/metrics.json") and report["fidelity_uri"].endswith("/fidelity.json")
    assert s3_json(report["fidelity_uri"])["metrics"]["accuracy"]["chosen"]["original_name"] == "validation:accuracy"
    (event,) = gate.decision_events()
    assert (event["detail"]["outcome"], event["detail"]["model_package_arn"]) == ("pass", arn)
    (item,) = boto3.client("dynamodb").scan(TableName=gate.decision_table)["Items"]
    assert (item["status"]["S"], item["completion"]["S"], item["model_package_arn"]["S"]) == (
        "complete",
        "registered",
        arn,
    )
    assert item["owner"]["S"] == result.arn and "Tags" not in json.loads(item["registration_request"]["S"])


def test_second_good_job_becomes_version_two_of_the_existing_group(gate: LocalGate, iris_artifact: bytes):
    first, _ = run_job(gate, "iris-one", log_lines=GOOD_LOG, artifact=iris_artifact)
    second, _ = run_job(gate, "iris-two", log_lines=GOOD_LOG, artifact=iris_artifact)
    assert first.output["model_package_version"] == "1" and second.output["model_package_version"] == "2"
    group = boto3.client("sagemaker").describe_model_package_group(ModelPackageGroupName="training-gate-models")
    assert group["ModelPackageGroupDescription"] == "Models that passed training-gate"


def test_weak_job_is_rejected_and_the_retrain_notification_names_the_failing_metrics(
    gate: LocalGate, iris_artifact: bytes
):
    result, notes = run_job(
        gate, "iris-weak", log_lines=training_log(0.75, 0.71, 0.86, 0.86, 0.86), artifact=iris_artifact
    )
    assert (result.status, result.error) == ("FAILED", "ModelRejected")
    assert result.states[-7:] == [*NOTIFIED_TAIL, "ModelRejected"]
    assert "accuracy 0.710 not > 0.9" in result.cause
    (note,) = notes
    assert note["Subject"] == "Model rejected: iris-weak - accuracy 0.710 not > 0.9"
    assert "| accuracy (validation:accuracy) | 0.71 | > 0.9 | - | log | FAIL |" in note["Message"]
    assert "| precision (validation:precision) | 0.86 | > 0.85 | - | log | PASS |" in note["Message"]
    assert note["MessageAttributes"]["decision"]["Value"] == "reject"
    assert (
        boto3.client("sagemaker").list_model_packages(ModelPackageGroupName="training-gate-models")[
            "ModelPackageSummaryList"
        ]
        == []
    )
    assert result.alert == {"alerted": False, "error": "ModelRejected", "message_id": None, "pipelines_answered": 0}
    assert list(gate.operations_notifications()) == []
    (item,) = boto3.client("dynamodb").scan(TableName=gate.decision_table)["Items"]
    assert (item["status"]["S"], item["completion"]["S"]) == ("complete", "notified")


def test_failed_training_job_notifies_with_its_reason(gate: LocalGate):
    result, notes = run_job(
        gate,
        "iris-crashed",
        log_lines=["Traceback (most recent call last):"],
        final_status="Failed",
        failure_reason="AlgorithmError: ExecuteUserScriptError: exit code 1",
    )
    assert (result.status, result.error) == ("FAILED", "TrainingJobFailed")
    assert "InspectArtifact" not in result.states
    (note,) = notes
    assert note["Subject"].startswith("Training job failed: iris-crashed - fix-code")
    assert "AlgorithmError: ExecuteUserScriptError: exit code 1" in note["Message"]
    assert list(gate.operations_notifications()) == []


def test_hostile_artifact_is_rejected_through_the_whole_gate(gate: LocalGate, tmp_path):
    import io

    import joblib

    target = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(target), "w"))

    buffer = io.BytesIO()
    joblib.dump(Payload(), buffer)
    result, notes = run_job(
        gate, "iris-hostile", log_lines=GOOD_LOG, artifact=pack_model_tar_gz({"model.joblib": buffer.getvalue()})
    )
    assert (result.status, result.error) == ("FAILED", "ModelRejected")
    assert not target.exists()
    assert "artifact check load failed" in notes[0]["Message"]
    assert "refused global 'io.open': not on the allowlist, nothing from the file was run" in notes[0]["Message"]
    assert "RegisterModel" not in result.states


def test_job_without_metrics_is_inconclusive_and_not_registered(gate: LocalGate, iris_artifact: bytes):
    result, notes = run_job(gate, "iris-silent", log_lines=["[INFO] nothing to report"], artifact=iris_artifact)
    assert (result.status, result.error) == ("FAILED", "ModelInconclusive")
    assert notes[0]["Subject"].startswith("Gate inconclusive, needs a human: iris-silent")
    assert "[METRIC_MISSING]" in notes[0]["Message"]


def test_missing_artifact_is_rejected_naming_the_uri(gate: LocalGate):
    result, notes = run_job(gate, "iris-noartifact", log_lines=GOOD_LOG, artifact=None)
    assert result.error == "ModelRejected"
    assert "the job reports no model artifact" in notes[0]["Message"] or "artifact not found" in notes[0]["Message"]


def test_job_that_never_finishes_ends_in_a_bounded_timeout_that_operations_hear_of(gate: LocalGate):
    create_training_job(
        gate, "iris-stuck", log_lines=GOOD_LOG, statuses=("InProgress",) * 100, final_status="InProgress"
    )
    result = gate.run({"TrainingJobName": "iris-stuck", "max_polls": 3}, name="stuck")
    assert (result.status, result.error) == ("FAILED", "GateError")
    assert result.states.count("WaitForTrainingJob") == 3
    assert result.states[-4:] == ["PollingTimedOut", *GATE_ERROR_TAIL]
    assert list(gate.notifications()) == []  # a gate problem is not the owners' to fix
    (note,) = gate.operations_notifications()
    assert "still InProgress after 3 polls" in note["Message"]
    assert note["Subject"] == "training-gate failed: GateError - iris-stuck"
    assert '"TrainingJobName": "iris-stuck"' in note["Message"]  # the input to re-run it


@pytest.mark.parametrize(
    ("execution_input", "field"),
    [
        ("my-job", "expected a JSON object, got str"),
        (["my-job"], "expected a JSON object, got list"),
        ({}, "TrainingJobName: Field required"),
        ({"TrainingJobName": ""}, "TrainingJobName"),
        ({"TrainingJobName": "bad_name!"}, "TrainingJobName"),
        ({"TrainingJobName": "a" * 64}, "TrainingJobName"),
        ({"TrainingJobName": "ok", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"TrainingJobName": "ok", "max_polls": "many"}, "max_polls"),
        ({"TrainingJobName": "ok", "max_polls": True}, "max_polls"),
    ],
)
def test_bad_execution_input_fails_before_any_sagemaker_call(gate: LocalGate, execution_input, field):
    result = gate.run(execution_input, name=f"bad-input-{uuid.uuid4().hex[:8]}")
    assert (result.status, result.error) == ("FAILED", "GateError")
    assert result.states == ["ReceiveInput", "ValidateInput", *GATE_ERROR_TAIL]
    assert field in result.cause and result.cause.startswith("InvalidInput: ")
    (note,) = gate.operations_notifications()
    assert "InvalidInput" in note["Message"]
    assert list(gate.notifications()) == []


def test_unknown_job_is_a_gate_error_naming_the_job(gate: LocalGate):
    result = gate.run({"TrainingJobName": "does-not-exist"}, name="unknown-job")
    assert result.error == "GateError"
    assert "TrainingJobNotFound" in result.cause and "does-not-exist" in result.cause
    (note,) = gate.operations_notifications()
    assert "training job 'does-not-exist' not found" in note["Message"]


def test_dry_run_decides_but_registers_and_notifies_nothing(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "iris-dry", log_lines=GOOD_LOG, artifact=iris_artifact)
    result = gate.run({"TrainingJobName": "iris-dry", "dry_run": True}, name="dry")
    assert result.status == "SUCCEEDED"
    assert result.output["dry_run"] is True and result.output["outcome"] == "pass"
    assert s3_json(result.output["report_uri"])["dry_run"] is True
    assert "RegisterModel" not in result.states
    assert list(gate.notifications()) == [] and list(gate.decision_events()) == []
    assert boto3.client("dynamodb").scan(TableName=gate.decision_table)["Items"] == []


def test_rule_ignores_events_the_gate_does_not_handle(gate: LocalGate):
    job = {"TrainingJobName": "j", "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:training-job/j"}
    assert gate.route_event(state_change_event(job, "InProgress")) is None
    assert gate.route_event({**state_change_event(job, "Completed"), "source": "my.app"}) is None
    # A job of another account or region, forwarded to this bus, is not this gate's to judge.
    assert gate.route_event({**state_change_event(job, "Completed"), "account": "210987654321"}) is None
    assert gate.route_event({**state_change_event(job, "Completed"), "region": "eu-west-1"}) is None


def test_metrics_from_an_evaluation_file_in_the_model_artifact_can_pass_the_gate(gate: LocalGate):
    from training_gate_cli.artifacts import iris_model_joblib

    evaluation = {
        "multiclass_classification_metrics": {m: {"value": 0.95} for m in ("accuracy", "precision", "recall", "f1")}
    }
    artifact = pack_model_tar_gz(
        {"model.joblib": iris_model_joblib(), "evaluation.json": json.dumps(evaluation).encode()}
    )
    result, _ = run_job(gate, "iris-evalfile", log_lines=["[INFO] training done"], artifact=artifact)
    assert result.status == "SUCCEEDED", result.cause
    assert "| accuracy | 0.95 | > 0.9 | - | evaluation_file | PASS |" in result.output["table"]


# -- the effective policy at run time ------------------------------------------------------------


def test_a_groups_stored_policy_replaces_the_shipped_one(gate: LocalGate, iris_artifact: bytes):
    stricter = {"rules": [{"metric": "accuracy", "operator": ">=", "threshold": 0.95}]}
    boto3.client("ssm").put_parameter(
        Name="/training-gate/policies/training-gate-models", Value=json.dumps(stricter), Type="String"
    )
    result, notes = run_job(gate, "iris-strict", log_lines=GOOD_LOG, artifact=iris_artifact)
    assert result.error == "ModelRejected"
    assert "accuracy 0.905 not >= 0.95" in result.cause
    assert (
        "policy of group training-gate-models from /training-gate/policies/training-gate-models" in notes[0]["Message"]
    )


def _approved_champion(accuracy: str) -> str:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="training-gate-models")
    return sagemaker.create_model_package(
        ModelPackageGroupName="training-gate-models",
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"metric_accuracy": accuracy, "metric_f1": "0.5"},
    )["ModelPackageArn"]


@pytest.mark.parametrize(("champion_accuracy", "registered"), [("0.89", True), ("0.93", False)])
def test_champion_comparison_through_the_gate(gate: LocalGate, iris_artifact: bytes, champion_accuracy, registered):
    champion_arn = _approved_champion(champion_accuracy)
    create_training_job(gate, f"iris-challenger-{registered}", log_lines=GOOD_LOG, artifact=iris_artifact)
    result = gate.run(
        {"TrainingJobName": f"iris-challenger-{registered}", "policy_overrides": {"champion": {"enabled": True}}},
        name=f"challenge-{registered}",
    )
    if registered:
        assert result.status == "SUCCEEDED", result.cause
        assert "| accuracy (validation:accuracy) | 0.905 | > 0.9 | 0.89 | log | PASS |" in result.output["table"]
    else:
        assert result.error == "ModelRejected"
        assert "accuracy 0.905 vs champion 0.93 (higher is better)" in result.cause
        (note,) = gate.notifications()
        assert f"Champion: {champion_arn}" in note["Message"]
        assert 'Policy overrides for this execution: {"champion": {"enabled": true}}' in note["Message"]


def test_bad_policy_override_fails_before_any_sagemaker_call_naming_the_field(gate: LocalGate):
    overrides = {"rules": [{"metric": "accuracy", "operator": ">", "threshold": "high"}]}
    result = gate.run({"TrainingJobName": "anything", "policy_overrides": overrides}, name="bad-override")
    assert result.states == ["ReceiveInput", "ValidateInput", *GATE_ERROR_TAIL]
    assert "policy_overrides.rules.0.threshold" in result.cause


def test_dry_run_of_a_failed_training_job_notifies_no_one(gate: LocalGate):
    create_training_job(
        gate, "iris-dry-failed", log_lines=None, final_status="Failed", statuses=(), failure_reason="ClientError: x"
    )
    result = gate.run({"TrainingJobName": "iris-dry-failed", "dry_run": True}, name="dry-failed")
    assert result.error == "TrainingJobFailed"
    assert "NotifyTrainingJobFailed" not in result.states
    assert list(gate.notifications()) == []
