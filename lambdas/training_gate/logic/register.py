"""Register a passing model exactly once, record it, and announce the decision."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from training_gate.dal.aws import ArtifactStore, DecisionEvents, DecisionLog, ModelRegistry, parse_s3_uri
from training_gate.domain.report import decision_event

GROUP_DESCRIPTION = "Models that passed training-gate"
GROUP_TAGS = [{"Key": "managed-by", "Value": "training-gate"}]


class RegisterInput(BaseModel):
    job: dict[str, Any]
    evaluation: dict[str, Any]
    execution_arn: str


class Registration(BaseModel):
    ModelPackageArn: str
    ModelPackageVersion: str
    adopted: bool


def register(
    request: RegisterInput,
    registry: ModelRegistry,
    log: DecisionLog,
    events: DecisionEvents,
    store: ArtifactStore | None = None,
) -> Registration:
    job, evaluation = request.job, request.evaluation
    registration = evaluation["registration"]
    policy_sha256 = evaluation["decision"]["policy_sha256"]
    own_package = job.get("OutputModelPackageArn")
    if own_package:
        # The job registered its model itself: apply the gate's decision to that package, add none.
        registry.set_approval(
            own_package,
            registration["ModelApprovalStatus"],
            f"training-gate: pass under policy {policy_sha256[:12]}; report {evaluation.get('report_uri')}",
        )
        arn = own_package
    else:
        registry.ensure_group(registration["ModelPackageGroupName"], GROUP_DESCRIPTION, GROUP_TAGS)
        arn = registry.create_package(registration)
    version = arn.rsplit("/", 1)[-1]
    log.mark(job["TrainingJobName"], policy_sha256, "registered", model_package_arn=arn)
    report_uri = evaluation.get("report_uri")
    if store is not None and report_uri:
        # The report was written before registration; it gains the package it led to.
        report = store.get_json(report_uri)
        report["registration"] = {
            "model_package_arn": arn,
            "model_package_version": version,
            "adopted": bool(own_package),
        }
        bucket, key = parse_s3_uri(report_uri)
        store.put_json(bucket, key, report)
    events.publish(
        decision_event(job, evaluation, request.execution_arn, model_package_arn=arn, model_package_version=version),
        [r for r in (arn, job.get("TrainingJobArn")) if r],
    )
    return Registration(ModelPackageArn=arn, ModelPackageVersion=version, adopted=bool(own_package))
