"""Typed values of the contract between the states, with sensible defaults."""

from __future__ import annotations

from typing import Any

from training_gate.domain.contract import JobMetricSources, MetricDefinition, TrainingJob
from training_gate.domain.models import ArtifactInfo, CheckResult, CheckStatus, InspectionResult, MetricValue

ACCOUNT = "123456789012"


def training_job(name: str = "job-1", **fields: Any) -> TrainingJob:
    values: dict[str, Any] = {
        "training_job_name": name,
        "training_job_arn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/{name}",
        "status": "Completed",
        "model_artifact": f"s3://sagemaker-us-east-1-{ACCOUNT}/{name}/output/model.tar.gz",
        "training_image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3",
    }
    values.update(fields)
    return TrainingJob(**values)


def sources(definitions: list[dict[str, str]] | None = None, **final: float) -> JobMetricSources:
    return JobMetricSources(
        metric_definitions=[MetricDefinition(**d) for d in definitions or []],
        final_metrics=[{"MetricName": k, "Value": v} for k, v in final.items()],
    )


def passing_inspection(uri: str = "s3://bucket/job/output/model.tar.gz") -> InspectionResult:
    return InspectionResult(
        verdict="pass",
        checks=[CheckResult(name="load", status=CheckStatus.PASS, detail="loaded")],
        artifact=ArtifactInfo(uri=uri, sha256="ab" * 32, bytes=100),
    )


def metric(name: str, value: float, source: str = "log", original: str | None = None) -> MetricValue:
    return MetricValue.from_raw(repr(value), name=name, original_name=original or name, source=source)
