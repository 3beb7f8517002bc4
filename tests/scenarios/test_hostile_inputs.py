"""Hostile and malformed input at every entry, through the whole gate: nothing registered, nothing
run, a clear reason every time."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import boto3
import joblib
import numpy as np
import pytest

from training_gate_cli.artifacts import iris_model_joblib, pack_model_tar_gz
from training_gate_cli.local_engine import LocalGate
from training_gate_cli.local_engine.emulated import (
    create_training_job,
    state_change_event,
    training_job_request,
    training_log,
)

GOOD_LOG = training_log(0.912, 0.905, 0.908, 0.901, 0.905)


def nothing_registered() -> bool:
    sagemaker = boto3.client("sagemaker")
    try:
        return not sagemaker.list_model_packages(ModelPackageGroupName="training-gate-models")[
            "ModelPackageSummaryList"
        ]
    except sagemaker.exceptions.ClientError:
        return True


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, len(data) if kind == tarfile.REGTYPE else 0, link
    return info, data if kind == tarfile.REGTYPE else None


class WritesFile:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def payload_after_arrays(target: Path) -> bytes:
    buffer = io.BytesIO()
    joblib.dump({"coef": np.ones(10_000), "hook": WritesFile(str(target))}, buffer, compress=3)
    return buffer.getvalue()


HOSTILE = {
    "path-traversal": (lambda t: tar_gz(member("../../evil.joblib", b"x")), "member_names"),
    "absolute-path": (lambda t: tar_gz(member("/tmp/evil.joblib", b"x")), "member_names"),
    "symlink": (lambda t: tar_gz(member("model.joblib", kind=tarfile.SYMTYPE, link="/etc/passwd")), "member_types"),
    "device": (lambda t: tar_gz(member("model.joblib", kind=tarfile.CHRTYPE)), "member_types"),
    "not-gzip": (lambda t: b"PK\x03\x04 this is a zip", "gzip"),
    "truncated": (lambda t: pack_model_tar_gz({"model.joblib": iris_model_joblib()})[:-30], "gzip"),
    "payload-after-arrays": (lambda t: pack_model_tar_gz({"model.joblib": payload_after_arrays(t)}), "load"),
    # Two candidates: the gate cannot tell which model would be deployed. (No candidate at all is not a
    # rejection but a skip: tests/scenarios/test_scope.py.)
    "ambiguous-model": (
        lambda t: pack_model_tar_gz({"a.joblib": iris_model_joblib(), "b.pkl": iris_model_joblib()}),
        "find_model",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_artifacts_are_rejected_through_the_whole_gate(gate: LocalGate, tmp_path: Path, case: str):
    build, check = HOSTILE[case]
    target = tmp_path / "payload-ran"
    create_training_job(gate, f"hostile-{case}", log_lines=GOOD_LOG, artifact=build(target), statuses=())
    result = gate.run({"TrainingJobName": f"hostile-{case}"}, name=f"hostile-{case}")
    assert (result.status, result.error) == ("FAILED", "ModelRejected")
    assert f"artifact check {'unpack' if check not in ('load', 'find_model') else check} failed" in result.cause
    if check not in ("load", "find_model"):
        assert check in result.cause
    assert not target.exists() and not Path("/tmp/evil.joblib").exists()
    assert nothing_registered()


@pytest.mark.parametrize(
    ("log", "error", "reason"),
    [
        # The job's own regex ([0-9\.]+) does not match "nan": SageMaker records nothing, nor does the gate.
        (training_log(0.9, float("nan"), 0.9, 0.9, 0.9), "ModelInconclusive", "accuracy was not found in any source"),
        (None, "ModelInconclusive", "accuracy was not found in any source"),
    ],
    ids=["nan-accuracy", "no-log-streams"],
)
def test_odd_logs_end_rejected_or_inconclusive_with_the_reason(gate: LocalGate, iris_artifact, log, error, reason):
    name = f"odd-{'nan' if log else 'nolog'}"
    create_training_job(gate, name, log_lines=log, artifact=iris_artifact, statuses=())
    result = gate.run({"TrainingJobName": name}, name=name)
    assert result.error == error and reason in result.cause
    assert nothing_registered()


def test_a_broken_metric_definition_makes_the_decision_inconclusive_and_says_why(gate: LocalGate, iris_artifact):
    definitions = [{"Name": "validation:accuracy", "Regex": "Validation accuracy: ([0-9.]+"}]
    create_training_job(
        gate,
        "odd-regex",
        log_lines=["Validation score 0.9"],
        artifact=iris_artifact,
        statuses=(),
        metric_definitions=definitions,
    )
    result = gate.run({"TrainingJobName": "odd-regex"}, name="odd-regex")
    assert result.error == "ModelInconclusive"
    (note,) = gate.notifications()
    assert "MetricDefinitions: metric 'validation:accuracy': invalid regex" in note["Message"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: {**e, "source": "my.app"},
        lambda e: {**e, "detail-type": "SageMaker Endpoint State Change"},
        lambda e: {**e, "detail": {**e["detail"], "TrainingJobStatus": "Deleting"}},
        lambda e: {**e, "detail": {k: v for k, v in e["detail"].items() if k != "TrainingJobStatus"}},
    ],
    ids=["other-source", "other-detail-type", "unknown-status", "no-status"],
)
def test_events_the_gate_does_not_handle_start_nothing(gate: LocalGate, mutate):
    job = {"TrainingJobName": "evt", "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/evt"}
    assert gate.route_event(mutate(state_change_event(job, "Completed"))) is None


def test_an_event_without_a_job_name_fails_before_any_sagemaker_call(gate: LocalGate):
    event = state_change_event({"TrainingJobName": "x", "TrainingJobArn": "arn"}, "Completed")
    del event["detail"]["TrainingJobName"]
    execution_input = gate.route_event(event)
    result = gate.run(execution_input, name="no-name")
    assert result.states[:2] == ["ReceiveInput", "ValidateInput"] and "DescribeTrainingJob" not in result.states
    assert result.error == "GateError" and "TrainingJobName" in result.cause
    (alert,) = gate.operations_notifications()
    assert alert["Subject"] == "training-gate failed: GateError - no job name"


def test_a_job_in_another_region_is_not_found_with_a_clear_cause(gate: LocalGate):
    boto3.client("sagemaker", region_name="eu-west-1").create_training_job(**training_job_request("elsewhere"))
    result = gate.run({"TrainingJobName": "elsewhere"}, name="elsewhere")
    assert result.error == "GateError"
    assert "training job 'elsewhere' not found" in result.cause


class DeniedS3:
    """An S3 client answering as S3 does when a bucket policy, IAM or the object's KMS key says no."""

    def __init__(self, code: str):
        self.code = code

    def get_object(self, **kwargs):
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": self.code, "Message": "Access Denied"}}, "GetObject")


@pytest.mark.parametrize("code", ["AccessDenied", "KMS.AccessDeniedException"])
def test_an_artifact_the_gate_may_not_read_is_a_gate_error_for_operations_never_a_rejection(
    gate: LocalGate, iris_artifact: bytes, monkeypatch, code: str
):
    from training_gate.dal.s3 import ArtifactStore

    job = f"denied-{code.split('.')[0].lower()}"
    create_training_job(gate, job, log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    real_open = ArtifactStore.open
    monkeypatch.setattr(ArtifactStore, "open", lambda self, uri: real_open(ArtifactStore(DeniedS3(code)), uri))
    result = gate.run({"TrainingJobName": job}, name=job)
    assert result.error == "GateError" and "ArtifactAccessDenied" in result.cause
    assert list(gate.notifications()) == []  # not a "retrain" mail to the owners
    (alert,) = gate.operations_notifications()
    assert "artifact_bucket_patterns" in alert["Message"] and "artifact_kms_key_arns" in alert["Message"]
    assert nothing_registered()
