"""Handlers called as Lambda calls them, against emulated AWS (moto) where they touch it."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from training_gate.dal.aws import TrainingLogs
from training_gate.handlers import collect_metrics, describe_failure, inspect_artifact, validate_input
from training_gate_cli.local_engine import LambdaContext

CONTEXT = LambdaContext(function_name="test", invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:t")
LOG_GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def test_validate_input_fills_defaults_from_the_function_settings(monkeypatch):
    monkeypatch.setenv("DEFAULT_POLL_INTERVAL_SECONDS", "30")
    monkeypatch.setenv("DEFAULT_MAX_POLLS", "5")
    assert validate_input.handler({"TrainingJobName": "job-1"}, CONTEXT) == {
        "TrainingJobName": "job-1",
        "poll_interval_seconds": 30,
        "max_polls": 5,
        "dry_run": False,
        "policy_overrides": None,
    }


@pytest.mark.parametrize("event", [[], "job", 42, None])
def test_validate_input_refuses_non_object_input(event):
    with pytest.raises(validate_input.InvalidInput, match="expected a JSON object"):
        validate_input.validate(event)


def test_validate_input_names_every_bad_field():
    with pytest.raises(validate_input.InvalidInput) as refused:
        validate_input.validate({"TrainingJobName": "x" * 70, "dry_run": "maybe", "extra": 1})
    message = str(refused.value)
    assert "TrainingJobName" in message and "dry_run" in message and "extra" in message


@pytest.fixture
def logs(aws):
    """Emulated CloudWatch Logs with SageMaker's training log group, as every collection reads it."""
    client = boto3.client("logs")
    client.create_log_group(logGroupName=LOG_GROUP)
    return client


def _write_stream(logs, name: str, lines: list[str]) -> None:
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=name)
    now = int(time.time() * 1000)
    for start in range(0, len(lines), 5000):
        logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=name,
            logEvents=[{"timestamp": now + start + i, "message": m} for i, m in enumerate(lines[start : start + 5000])],
        )


def collect_one_host(logs, job_name: str, lines: list[str], definitions: list[dict[str, str]]) -> dict:
    """Collect a job whose one host logged `lines`, under its own MetricDefinitions."""
    _write_stream(logs, f"{job_name}/algo-1-1", lines)
    job = {"TrainingJobName": job_name, "AlgorithmSpecification": {"MetricDefinitions": definitions}}
    return collect_metrics.handler({"job": job}, CONTEXT)


def test_collect_metrics_reads_every_page_of_every_host(logs):
    lines = [f"epoch {i} val_accuracy: 0.{i % 10}" for i in range(12_000)] + ["val_accuracy: 0.9321"]
    _write_stream(logs, "job-a/algo-1-1700000000", lines)
    _write_stream(logs, "job-a/algo-2-1700000000", ["val_accuracy: 0.5"])
    _write_stream(logs, "job-b/algo-1-1700000000", ["val_accuracy: 0.1"])  # another job: never read
    job = {"TrainingJobName": "job-a", "AlgorithmSpecification": {"MetricDefinitions": []}}

    result = collect_metrics.handler({"job": job}, CONTEXT)

    assert result["log_streams"] == 2
    assert result["metrics"]["accuracy"]["raw"] == "0.9321"
    assert result["metrics"]["accuracy"]["host"] == "algo-1"
    assert {d["host"] for d in result["details"]} == {"algo-1", "algo-2"}


def test_collect_metrics_pages_through_logs_api(logs):
    _write_stream(logs, "job-p/algo-1-1", [f"val_loss: {i}" for i in range(25_000)])
    reader = TrainingLogs(logs)
    assert sum(len(page) for page in reader.pages(["job-p/algo-1-1"])) == 25_000
    assert reader.api_calls > 1


def test_job_without_log_streams_is_a_clear_no_logs_result(logs):
    result = collect_metrics.handler({"job": {"TrainingJobName": "quiet", "FinalMetricDataList": []}}, CONTEXT)
    assert result["log_streams"] == 0 and result["metrics"] == {}
    assert result["warnings"] == ["no logs: the job has no log streams under quiet/"]


def test_invalid_metric_definition_is_reported_and_the_others_still_read(logs):
    definitions = [{"Name": "auc", "Regex": "auc=("}, {"Name": "f1", "Regex": "f1=([0-9.]+)"}]
    result = collect_one_host(logs, "j", ["f1=0.8 auc=0.9"], definitions)
    assert result["metrics"]["f1"]["value"] == 0.8 and "auc" not in result["metrics"]
    assert result["warnings"][0].startswith("MetricDefinitions: metric 'auc': invalid regex")


def test_inspect_handler_reports_a_missing_object_by_uri(aws):
    boto3.client("s3").create_bucket(Bucket="sagemaker-us-east-1-123456789012")
    uri = "s3://sagemaker-us-east-1-123456789012/job/output/model.tar.gz"
    event = {"job": {"TrainingJobName": "job", "ModelArtifacts": {"S3ModelArtifacts": uri}}}
    result = inspect_artifact.handler(event, CONTEXT)
    assert result["verdict"] == "reject"
    assert result["checks"][0] == {"name": "locate", "status": "fail", "detail": f"artifact not found at {uri}"}


def test_inspect_handler_streams_the_object_from_s3(aws, monkeypatch):
    from training_gate_cli.emulated import iris_model_joblib, pack_model_tar_gz

    monkeypatch.setenv("INSPECT_CONFIG", '{"sample_input": [[5.1, 3.5, 1.4, 0.2]]}')
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="artifacts")
    s3.upload_fileobj(io.BytesIO(pack_model_tar_gz({"model.joblib": iris_model_joblib()})), "artifacts", "m.tar.gz")
    event = {"job": {"TrainingJobName": "job", "ModelArtifacts": {"S3ModelArtifacts": "s3://artifacts/m.tar.gz"}}}
    result = inspect_artifact.handler(event, CONTEXT)
    assert result["verdict"] == "pass"
    assert result["model"] == {"class": "Pipeline", "sklearn_version": __import__("sklearn").__version__}


def test_describe_failure_handler_returns_subject_and_message():
    event = {"job": {"TrainingJobName": "j", "TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxRuntimeExceeded"}}
    result = describe_failure.handler(event, CONTEXT)
    assert result["action"] == "fix-code"
    assert "MaxRuntimeInSeconds" in result["message"]


def test_collect_asks_cloudwatch_only_for_lines_that_can_match(logs):
    from training_gate.logic.collect import collect_job_metrics
    from training_gate_cli.local_engine import cloudwatch_filter_patterns

    noise = [f"step {i} throughput=123 samples/s" for i in range(30_000)]
    _write_stream(logs, "job-f/algo-1-1", [*noise, "[INFO] Validation accuracy: 0.93", *noise[:100]])
    job = {
        "TrainingJobName": "job-f",
        "AlgorithmSpecification": {
            "MetricDefinitions": [{"Name": "validation:accuracy", "Regex": "Validation accuracy: ([0-9.]+)"}]
        },
    }
    with cloudwatch_filter_patterns():
        reader = TrainingLogs(logs)
        result = collect_job_metrics(job, reader)
    assert result.metrics["accuracy"].raw == "0.93"
    assert reader.api_calls == 2  # one DescribeLogStreams, one FilterLogEvents page for 30,101 lines


def test_collect_reads_evaluation_files_from_the_job_output_archive(logs):
    import json as _json

    from training_gate_cli.emulated import pack_model_tar_gz

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="out")
    body = pack_model_tar_gz({"eval/evaluation.json": _json.dumps({"accuracy": 0.97}).encode()})
    s3.put_object(Bucket="out", Key="prefix/job-e/output/output.tar.gz", Body=body)
    job = {"TrainingJobName": "job-e", "OutputDataConfig": {"S3OutputPath": "s3://out/prefix/"}}
    result = collect_metrics.handler({"job": job}, CONTEXT)
    accuracy = result["metrics"]["accuracy"]
    assert (accuracy["value"], accuracy["source"]) == (0.97, "evaluation_file")
    assert accuracy["location"] == "output.tar.gz:eval/evaluation.json"


def test_collect_reads_cloudwatch_metrics_when_enabled(logs, monkeypatch):
    import datetime as dt

    cloudwatch = boto3.client("cloudwatch")
    now = dt.datetime.now(dt.UTC)
    for minutes, value in ((3, 0.80), (1, 0.93)):
        cloudwatch.put_metric_data(
            Namespace="/aws/sagemaker/TrainingJobs",
            MetricData=[
                {
                    "MetricName": "validation:accuracy",
                    "Dimensions": [{"Name": "TrainingJobName", "Value": "job-cw"}],
                    "Timestamp": now - dt.timedelta(minutes=minutes),
                    "Value": value,
                }
            ],
        )
    job = {
        "TrainingJobName": "job-cw",
        "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "validation:accuracy", "Regex": "acc=(.*)"}]},
        "TrainingStartTime": (now - dt.timedelta(minutes=30)).isoformat(),
        "TrainingEndTime": now.isoformat(),
    }
    monkeypatch.setenv("READ_CLOUDWATCH_METRICS", "false")
    assert collect_metrics.handler({"job": job}, CONTEXT)["metrics"] == {}
    monkeypatch.setenv("READ_CLOUDWATCH_METRICS", "true")
    accuracy = collect_metrics.handler({"job": job}, CONTEXT)["metrics"]["accuracy"]
    assert (accuracy["source"], accuracy["value"]) == ("cloudwatch_metric", 0.93)


def test_a_metric_defined_twice_is_reported_and_the_first_definition_used(logs):
    definitions = [{"Name": "auc", "Regex": "auc=([0-9.]+)"}, {"Name": "auc", "Regex": "f1=([0-9.]+)"}]
    result = collect_one_host(logs, "jd", ["auc=0.9 f1=0.8"], definitions)
    assert result["metrics"]["auc"]["value"] == 0.9
    assert result["warnings"][0] == "MetricDefinitions: metric 'auc' is defined twice in MetricDefinitions"
