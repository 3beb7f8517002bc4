"""Build what a SageMaker training job leaves behind, in the emulated account: a model.tar.gz in S3,
the job itself, its CloudWatch log stream, and the EventBridge event it emits."""

from __future__ import annotations

import time
from typing import Any

import boto3

from training_gate.constants import DEFAULT_JOB_TAG_KEY, DEFAULT_JOB_TAG_VALUE
from training_gate_cli.local_engine.constants import ACCOUNT_ID, REGION, TRAINING_LOG_GROUP
from training_gate_cli.local_engine.engine import LocalGate

ARTIFACT_BUCKET = f"sagemaker-{REGION}-{ACCOUNT_ID}"
TRAINING_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/SageMakerExecution"
# Emulated jobs opt in to the gate as the README tells users to, unless a test says otherwise.
GATE_TAGS = {DEFAULT_JOB_TAG_KEY: DEFAULT_JOB_TAG_VALUE}
# MetricDefinitions as a user of the seed's training script writes them.
SEED_METRIC_DEFINITIONS = [
    {"Name": "train:accuracy", "Regex": r"Training accuracy: ([0-9\.]+)"},
    {"Name": "validation:accuracy", "Regex": r"Validation accuracy: ([0-9\.]+)"},
    {"Name": "validation:precision", "Regex": r"Validation precision: ([0-9\.]+)"},
    {"Name": "validation:recall", "Regex": r"Validation recall: ([0-9\.]+)"},
    {"Name": "validation:f1", "Regex": r"Validation f1: ([0-9\.]+)"},
]


def training_log(train_accuracy: float, accuracy: float, precision: float, recall: float, f1: float) -> list[str]:
    return [
        "[INFO] Loading training data from /opt/ml/input/data/train",
        "[INFO] Training RandomForestClassifier(n_estimators=100)",
        f"[INFO] Training accuracy: {train_accuracy:.3f}",
        f"[INFO] Validation accuracy: {accuracy:.3f}",
        f"[INFO] Validation precision: {precision:.3f}",
        f"[INFO] Validation recall: {recall:.3f}",
        f"[INFO] Validation f1: {f1:.3f}",
        "[INFO] Saving model to /opt/ml/model/model.joblib",
    ]


def upload_artifact(job_name: str, data: bytes) -> str:
    s3 = boto3.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if ARTIFACT_BUCKET not in existing:
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    key = f"{job_name}/output/model.tar.gz"
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=data)
    return f"s3://{ARTIFACT_BUCKET}/{key}"


def write_log_stream(job_name: str, lines: list[str], host: str = "algo-1") -> str:
    logs = boto3.client("logs")
    stream = f"{job_name}/{host}-{int(time.time())}"
    logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName=stream)
    start = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=TRAINING_LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": start + i, "message": line} for i, line in enumerate(lines)],
    )
    return stream


def training_job_request(name: str) -> dict[str, Any]:
    """A complete CreateTrainingJob request for an emulated job: the fields SageMaker requires."""
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": TRAINING_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": f"s3://{ARTIFACT_BUCKET}/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def create_training_job(
    gate: LocalGate,
    name: str,
    *,
    log_lines: list[str] | None,
    final_status: str = "Completed",
    statuses: tuple[str, ...] = ("InProgress", "InProgress"),
    failure_reason: str | None = None,
    artifact: bytes | None = None,
    metric_definitions: list[dict[str, str]] | None = None,
    output_model_package_arn: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create an emulated job that reports `statuses` on successive polls, then `final_status`; it carries
    `tags` (by default the gate's opt-in tag), as its state-change event will."""
    tags = GATE_TAGS if tags is None else tags
    sagemaker = boto3.client("sagemaker")
    request = training_job_request(name)
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    sagemaker.create_training_job(**request)
    artifact_uri = upload_artifact(name, artifact) if artifact is not None else None
    if log_lines is not None:
        write_log_stream(name, log_lines)
    # Read before scripting: scripted jobs advance their status on every DescribeTrainingJob call.
    job = sagemaker.describe_training_job(TrainingJobName=name)
    gate.script_training_job(
        name,
        statuses=list(statuses),
        final_status=final_status,
        metric_definitions=SEED_METRIC_DEFINITIONS if metric_definitions is None else metric_definitions,
        failure_reason=failure_reason,
        model_artifact=artifact_uri,
        output_model_package_arn=output_model_package_arn,
    )
    job["Tags"] = dict(tags)
    if artifact_uri:
        job["ModelArtifacts"] = {"S3ModelArtifacts": artifact_uri}
    if failure_reason:
        job["FailureReason"] = failure_reason
    return job


def state_change_event(job: dict[str, Any], status: str) -> dict[str, Any]:
    """The "SageMaker Training Job State Change" event as EventBridge delivers it."""
    detail = {
        "TrainingJobName": job["TrainingJobName"],
        "TrainingJobArn": job["TrainingJobArn"],
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "ModelArtifacts": job.get("ModelArtifacts", {}),
        "OutputDataConfig": job.get("OutputDataConfig", {}),
        # SageMaker's event carries the job's tags as an object: what the start rule filters on.
        "Tags": dict(job.get("Tags", {})),
    }
    if status == "Failed" and job.get("FailureReason"):
        detail["FailureReason"] = job["FailureReason"]
    return {
        "version": "0",
        "id": f"local-{job['TrainingJobName']}",
        "detail-type": "SageMaker Training Job State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [job["TrainingJobArn"]],
        "detail": detail,
    }
