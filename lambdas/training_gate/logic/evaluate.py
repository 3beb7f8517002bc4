"""Decide, write the report, and prepare the registration request and the notification."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from training_gate.dal.aws import ArtifactStore
from training_gate.domain.inputs import GateInput
from training_gate.domain.metrics import combine
from training_gate.domain.models import InspectionResult, MetricsResult
from training_gate.domain.policy import Decision, Outcome, Policy, decide
from training_gate.domain.report import (
    client_token,
    decision_message,
    decision_subject,
    decision_table,
    model_monitor_statistics,
    sanitize_metadata,
)


class EvaluateInput(BaseModel):
    job: dict[str, Any]
    inspection: InspectionResult
    metrics: MetricsResult
    settings: GateInput
    execution_arn: str


class Notification(BaseModel):
    subject: str
    message: str


class Evaluation(BaseModel):
    outcome: Outcome
    summary: str
    table: str
    decision: Decision
    notification: Notification
    report_uri: str | None
    dry_run: bool
    registration: dict[str, Any] | None


def _execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


def registration_request(
    request: EvaluateInput, policy: Policy, group: str, statistics: tuple[str, str], decision: Decision
) -> dict[str, Any]:
    job = request.job
    artifact = request.inspection.artifact
    stats_uri, stats_sha = statistics
    metadata = {
        "training_job_arn": job.get("TrainingJobArn", ""),
        "gate_execution_arn": request.execution_arn,
        "policy_sha256": decision.policy_sha256,
        "artifact_sha256": artifact.sha256 or "",
        **{f"metric_{r.metric}": r.raw or "" for r in decision.rules},
    }
    image = job.get("AlgorithmSpecification", {}).get("TrainingImage")
    request_fields: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": (
            f"registered by training-gate: {decision.outcome.value} for training job {job['TrainingJobName']}"
        ),
        "ModelApprovalStatus": policy.outcome.approval_status,
        "ClientToken": client_token(job.get("TrainingJobArn", job["TrainingJobName"]), decision.policy_sha256),
        "CustomerMetadataProperties": sanitize_metadata(metadata),
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": stats_uri,
                    "ContentDigest": f"sha256:{stats_sha}",
                }
            }
        },
    }
    if image:
        request_fields["InferenceSpecification"] = {
            "Containers": [{"Image": image, "ModelDataUrl": artifact.uri}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        }
    return request_fields


def evaluate(
    request: EvaluateInput, policy: Policy, group: str, store: ArtifactStore, reports_bucket: str
) -> Evaluation:
    job_name = request.job["TrainingJobName"]
    metrics = combine(request.metrics.details + request.inspection.metrics)
    metrics.warnings = [*request.metrics.warnings, *metrics.warnings]
    decision = decide(policy, metrics.metrics, request.inspection)
    prefix = f"reports/{job_name}/{_execution_name(request.execution_arn)}"
    report_uri = None
    statistics = None
    if not request.settings.dry_run:
        report_uri, _ = store.put_json(
            reports_bucket,
            f"{prefix}/report.json",
            {
                "training_job": job_name,
                "execution_arn": request.execution_arn,
                "decision": decision.model_dump(mode="json"),
                "inspection": request.inspection.model_dump(mode="json", by_alias=True),
                "metrics": metrics.model_dump(mode="json"),
            },
        )
        if decision.outcome == Outcome.PASS:
            statistics = store.put_json(
                reports_bucket, f"{prefix}/statistics.json", model_monitor_statistics(metrics.metrics)
            )
    message = decision_message(job_name, decision, request.inspection, report_uri)
    if request.settings.dry_run:
        message = "DRY RUN: nothing was registered or notified.\n" + message
    else:
        store.put_text(reports_bucket, f"{prefix}/report.md", message)
    registration = None
    if statistics is not None:
        registration = registration_request(request, policy, group, statistics, decision)
    return Evaluation(
        outcome=decision.outcome,
        summary="; ".join(decision.reasons) or "every check passed",
        table=decision_table(decision),
        decision=decision,
        notification=Notification(subject=decision_subject(job_name, decision), message=message),
        report_uri=report_uri,
        dry_run=request.settings.dry_run,
        registration=registration,
    )
