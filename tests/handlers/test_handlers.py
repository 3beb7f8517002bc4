"""Handlers called as Lambda calls them, against emulated AWS (moto) where they touch it. What the
use cases decide is tested below them, in tests/logic and tests/unit."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.support.context import CONTEXT, LambdaContext
from training_gate.handlers import (
    collect_metrics,
    describe_failure,
    describe_training_job,
    inspect_artifact,
    validate_input,
)
from training_gate_cli.local_engine.emulated import ARTIFACT_BUCKET, training_job_request

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
POLICY = json.dumps({"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}]})


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def validate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFAULT_POLL_INTERVAL_SECONDS", "30")
    monkeypatch.setenv("DEFAULT_MAX_POLLS", "5")
    monkeypatch.setenv("GATE_POLICY", POLICY)
    monkeypatch.setenv("MODEL_PACKAGE_GROUPS", "models,other-models")


def test_validate_input_fills_defaults_and_names_the_job_once(validate_env):
    assert validate_input.handler({"TrainingJobName": "job-1"}, CONTEXT) == {
        "training_job_name": "job-1",
        "tuning_job_name": None,
        "poll_interval_seconds": 30,
        "max_polls": 5,
        "tuning_candidates": 1,
        "gate_tuning_children": False,
        "dry_run": False,
        "policy_overrides": None,
        "source_account": None,
        "source_region": None,
        "pipeline_callback": None,
    }


@pytest.mark.parametrize("event", [[], "job", 42, None])
def test_validate_input_refuses_non_object_input(validate_env, event):
    with pytest.raises(validate_input.InvalidInput, match="expected a JSON object"):
        validate_input.handler(event, CONTEXT)


def test_validate_input_names_every_bad_field(validate_env):
    with pytest.raises(validate_input.InvalidInput) as refused:
        validate_input.handler({"TrainingJobName": "x" * 70, "dry_run": "maybe", "extra": 1}, CONTEXT)
    message = str(refused.value)
    assert "TrainingJobName" in message and "dry_run" in message and "extra" in message


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"max_polls": True}, "max_polls"),
        ({"poll_interval_seconds": False}, "poll_interval_seconds"),
        ({"max_polls": 3000}, "max_polls"),
        ({"max_polls": 2000, "poll_interval_seconds": 3600}, "48 h timeout"),
        ({"max_polls": "5"}, "max_polls"),
    ],
)
def test_validate_input_refuses_polling_aws_could_never_finish(validate_env, change, named):
    with pytest.raises(validate_input.InvalidInput, match=named):
        validate_input.handler({"TrainingJobName": "job-1", **change}, CONTEXT)


def test_validate_input_refuses_an_event_from_another_account_or_region(validate_env):
    own = {"TrainingJobName": "job-1", "source_account": "123456789012", "source_region": "us-east-1"}
    assert validate_input.handler(own, CONTEXT)["source_account"] == "123456789012"
    with pytest.raises(validate_input.InvalidInput, match="source_account 210987654321"):
        validate_input.handler({**own, "source_account": "210987654321"}, CONTEXT)
    with pytest.raises(validate_input.InvalidInput, match="source_region eu-west-1"):
        validate_input.handler({**own, "source_region": "eu-west-1"}, CONTEXT)
    elsewhere = LambdaContext(invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:t")
    with pytest.raises(validate_input.InvalidInput, match="us-east-1 is not the gate's own"):
        validate_input.handler(own, elsewhere)


def test_validate_input_refuses_an_override_naming_a_group_the_gate_may_not_use(validate_env):
    allowed = {"TrainingJobName": "j", "policy_overrides": {"outcome": {"model_package_group": "other-models"}}}
    assert validate_input.handler(allowed, CONTEXT)["policy_overrides"] == allowed["policy_overrides"]
    with pytest.raises(validate_input.InvalidInput, match="'someone-elses' is not one the gate may register in"):
        validate_input.handler(
            {"TrainingJobName": "j", "policy_overrides": {"outcome": {"model_package_group": "someone-elses"}}},
            CONTEXT,
        )


def test_validate_input_refuses_oversized_overrides(validate_env):
    huge = {"rules": [{"metric": f"m{i}", "operator": ">", "threshold": 0.5} for i in range(300)]}
    with pytest.raises(validate_input.InvalidInput, match=r"policy_overrides is \d+ bytes"):
        validate_input.handler({"TrainingJobName": "j", "policy_overrides": huge}, CONTEXT)


@pytest.fixture
def logs(aws):
    client = boto3.client("logs")
    client.create_log_group(logGroupName=LOG_GROUP)
    return client


def _write_stream(logs, name: str, lines: list[str]) -> None:
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=name)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=name,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)],
    )


def _create_job(name: str, **request: object) -> dict:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_training_job(**{**training_job_request(name), **request})
    return sagemaker.describe_training_job(TrainingJobName=name)


def test_describe_training_job_returns_only_what_the_gate_uses_however_large_the_job(aws):
    hyperparameters = {f"h{i:03d}".ljust(256, "k"): "x" * 2500 for i in range(100)}  # SageMaker's maximum
    _create_job("big", HyperParameters=hyperparameters)
    raw = boto3.client("sagemaker").describe_training_job(TrainingJobName="big")
    assert len(json.dumps(raw, default=str)) > 256 * 1024  # the raw response could not enter a state

    job = describe_training_job.handler({"training_job_name": "big"}, CONTEXT)

    assert job["training_job_name"] == "big" and job["status"] == "Completed"
    assert job["training_job_arn"].endswith(":training-job/big")
    assert len(json.dumps(job)) < 2048


def test_collect_metrics_handler_keeps_the_full_result_in_s3_and_returns_a_summary(logs, monkeypatch):
    boto3.client("s3").create_bucket(Bucket="reports")
    monkeypatch.setenv("REPORTS_BUCKET", "reports")
    _create_job("job-a")
    lines = [f"epoch {i} val_accuracy: 0.{i % 10}" for i in range(2_000)] + ["val_accuracy: 0.9321"]
    _write_stream(logs, "job-a/algo-1-1700000000", lines)
    _write_stream(logs, "job-a/algo-2-1700000000", ["val_accuracy: 0.5"])
    job = describe_training_job.handler({"training_job_name": "job-a"}, CONTEXT)

    summary = collect_metrics.handler({"job": job, "execution_name": "exec-1"}, CONTEXT)

    assert summary["log_streams"] == 2 and "accuracy" in summary["metric_names"]
    assert summary["metrics_uri"] == "s3://reports/reports/job-a/exec-1/metrics.json"
    stored = json.loads(
        boto3.client("s3").get_object(Bucket="reports", Key="reports/job-a/exec-1/metrics.json")["Body"].read()
    )
    assert stored["metrics"]["accuracy"]["raw"] == "0.9321"
    assert {d["host"] for d in stored["details"] if d["source"] == "log-default"} == {"algo-1", "algo-2"}
    fidelity = json.loads(
        boto3.client("s3").get_object(Bucket="reports", Key="reports/job-a/exec-1/fidelity.json")["Body"].read()
    )
    (reading,) = fidelity["metrics"]["accuracy"]["readings"]
    assert reading["definition"] == "default" and set(reading["hosts"]) == {"algo-1", "algo-2"}
    assert reading["hosts"]["algo-1"]["raw"] == "0.9321" and reading["hosts"]["algo-1"]["matches"] == 2001


def test_inspect_handler_reports_a_missing_object_by_uri(aws):
    boto3.client("s3").create_bucket(Bucket=ARTIFACT_BUCKET)
    uri = f"s3://{ARTIFACT_BUCKET}/job/output/model.tar.gz"
    job = {"training_job_name": "job", "training_job_arn": "arn:x", "status": "Completed", "model_artifact": uri}
    result = inspect_artifact.handler({"job": job}, CONTEXT)
    assert result["verdict"] == "reject"
    assert result["checks"][0] == {"name": "locate", "status": "fail", "detail": f"artifact not found at {uri}"}


def test_inspect_handler_streams_the_object_from_s3(aws, monkeypatch):
    from training_gate_cli.artifacts import iris_model_joblib, pack_model_tar_gz

    monkeypatch.setenv("INSPECT_CONFIG", '{"sample_input": [[5.1, 3.5, 1.4, 0.2]]}')
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="artifacts")
    s3.upload_fileobj(io.BytesIO(pack_model_tar_gz({"model.joblib": iris_model_joblib()})), "artifacts", "m.tar.gz")
    job = {
        "training_job_name": "job",
        "training_job_arn": "arn:x",
        "status": "Completed",
        "model_artifact": "s3://artifacts/m.tar.gz",
    }
    result = inspect_artifact.handler({"job": job}, CONTEXT)
    assert result["verdict"] == "pass"
    version = __import__("sklearn").__version__
    assert {k: v for k, v in result["model"].items() if v is not None and v != {}} == {
        "class": "Pipeline",
        "sklearn_version": version,
        "framework": "scikit-learn",
        "format": "joblib",
        "reader": "scikit-learn",
        "reader_version": version,
        "writer_version": version,
        "bytes_validated": True,
    }


def test_describe_failure_handler_returns_subject_and_message(monkeypatch):
    monkeypatch.setenv("DECISION_TABLE", "decisions")  # a dry classification claims nothing
    job = {
        "training_job_name": "j",
        "training_job_arn": "arn:x",
        "status": "Stopped",
        "secondary_status": "MaxRuntimeExceeded",
    }
    result = describe_failure.handler({"job": job}, CONTEXT)
    assert result["action"] == "fix-code"
    assert "MaxRuntimeInSeconds" in result["message"]
