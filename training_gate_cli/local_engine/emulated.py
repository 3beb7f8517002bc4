"""Build what a SageMaker training job leaves behind, in the emulated account: a model.tar.gz in S3,
the job itself, its CloudWatch log stream, and the EventBridge event it emits."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import boto3

from training_gate.constants import DEFAULT_JOB_TAG_KEY, DEFAULT_JOB_TAG_VALUE
from training_gate_cli.local_engine import moto_hooks
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


# -- hyperparameter tuning jobs -----------------------------------------------------------------------

TUNING_OBJECTIVE = {"Type": "Maximize", "MetricName": "validation:accuracy"}


@dataclass
class TuningChild:
    """What one training job of a tuning job reports: its validation metrics (the objective is its
    accuracy), how it ended, and which training definition launched it."""

    accuracy: float | None
    status: str = "Completed"
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    definition: str | None = None
    failure_reason: str | None = None
    artifact: bytes | None = None


def tuning_definition(name: str | None = None) -> dict[str, Any]:
    """A HyperParameterTrainingJobDefinition as the SageMaker SDK's tuner writes it."""
    definition: dict[str, Any] = {
        "AlgorithmSpecification": {
            "TrainingImage": TRAINING_IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": SEED_METRIC_DEFINITIONS,
        },
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": f"s3://{ARTIFACT_BUCKET}/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "StaticHyperParameters": {"n_estimators": "100"},
        "HyperParameterRanges": {
            "ContinuousParameterRanges": [{"Name": "max_features", "MinValue": "0.1", "MaxValue": "1"}]
        },
    }
    if name:
        definition["DefinitionName"] = name
        definition["TuningObjective"] = dict(TUNING_OBJECTIVE)
    return definition


def create_tuning_job(
    gate: LocalGate,
    name: str,
    children: list[TuningChild],
    *,
    final_status: str = "Completed",
    statuses: tuple[str, ...] = (),
    failure_reason: str | None = None,
    tags: dict[str, str] | None = None,
    definitions: list[str] | None = None,
    parent: str | None = None,
    parent_best: dict[str, Any] | None = None,
    artifact: bytes | None = None,
) -> dict[str, Any]:
    """A tuning job with `children` (launched with its tags, as SageMaker does), reporting `statuses`
    on successive DescribeHyperParameterTuningJob calls, then `final_status`. With `definitions`, the
    children cycle through those training definitions; with `parent`, it is a warm start of that
    tuning job whose best child is `parent_best`. Returns the tuning job as its state-change event
    describes it, with the children's DescribeTrainingJob answers under "Children"."""
    from training_gate_cli.local_engine.tuning import EmulatedChild, EmulatedTuningJob, child_name

    tags = GATE_TAGS if tags is None else tags
    config: dict[str, Any] = {
        "Strategy": "Bayesian",
        "ResourceLimits": {"MaxNumberOfTrainingJobs": max(1, len(children)), "MaxParallelTrainingJobs": 2},
    }
    request: dict[str, Any] = {"HyperParameterTuningJobName": name, "HyperParameterTuningJobConfig": config}
    if definitions:
        request["TrainingJobDefinitions"] = [tuning_definition(d) for d in definitions]
    else:
        config["HyperParameterTuningJobObjective"] = dict(TUNING_OBJECTIVE)
        request["TrainingJobDefinition"] = tuning_definition()
    if parent:
        request["WarmStartConfig"] = {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent}],
            "WarmStartType": "IdenticalDataAndAlgorithm",
        }
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    sagemaker = boto3.client("sagemaker")
    arn = sagemaker.create_hyper_parameter_tuning_job(**request)["HyperParameterTuningJobArn"]
    gate.tuning.register(
        EmulatedTuningJob(
            name=name,
            arn=arn,
            objective_metric=TUNING_OBJECTIVE["MetricName"],
            objective_type=TUNING_OBJECTIVE["Type"],
            statuses=list(statuses),
            final_status=final_status,
            failure_reason=failure_reason,
            parent_best=parent_best,
        )
    )
    launched = []
    for index, spec in enumerate(children, start=1):
        job_name = child_name(name, index)
        definition = spec.definition or (definitions[(index - 1) % len(definitions)] if definitions else None)
        child = EmulatedChild(
            name=job_name,
            arn="",
            status=spec.status,
            definition_name=definition,
            objective_value=spec.accuracy if spec.status == "Completed" else None,
            objective_metric=TUNING_OBJECTIVE["MetricName"],
            objective_type=TUNING_OBJECTIVE["Type"],
            tuned_hyperparameters={"max_features": f"{0.1 + index / 100:.2f}"},
            failure_reason=spec.failure_reason,
        )
        job_request = training_job_request(job_name)
        job_request["AlgorithmSpecification"]["MetricDefinitions"] = SEED_METRIC_DEFINITIONS
        final = {TUNING_OBJECTIVE["MetricName"]: spec.accuracy} if child.objective_value is not None else None
        described = gate.launch_tuning_child(name, job_request, child, final)
        payload = spec.artifact if spec.artifact is not None else artifact
        if payload is not None and spec.status == "Completed":
            uri = upload_artifact(job_name, payload)
            moto_hooks.sagemaker_backend().training_jobs[job_name].model_artifacts = {"S3ModelArtifacts": uri}
            described["ModelArtifacts"] = {"S3ModelArtifacts": uri}
        if spec.accuracy is not None:
            rest = [v if v is not None else spec.accuracy for v in (spec.precision, spec.recall, spec.f1)]
            write_log_stream(job_name, training_log(spec.accuracy + 0.01, spec.accuracy, *rest))
        launched.append(described)
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": arn,
        "Tags": dict(tags),
        "Children": launched,
    }


def tuning_state_change_event(tuning: dict[str, Any], status: str) -> dict[str, Any]:
    """The "SageMaker HyperParameter Tuning Job State Change" event as EventBridge delivers it: the
    tuning job's name, ARN, status and tags; no best training job
    (https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html)."""
    return {
        "version": "0",
        "id": f"local-{tuning['HyperParameterTuningJobName']}",
        "detail-type": "SageMaker HyperParameter Tuning Job State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [tuning["HyperParameterTuningJobArn"]],
        "detail": {
            "HyperParameterTuningJobName": tuning["HyperParameterTuningJobName"],
            "HyperParameterTuningJobArn": tuning["HyperParameterTuningJobArn"],
            "HyperParameterTuningJobStatus": status,
            "Tags": dict(tuning.get("Tags", {})),
        },
    }
