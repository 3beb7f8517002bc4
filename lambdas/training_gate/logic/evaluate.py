"""Resolve the effective policy, decide, write the report, prepare registration and notification."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from training_gate.dal.aws import POLICY_PARAMETER_PREFIX, ArtifactStore, DecisionEvents, DecisionLog, ModelRegistry
from training_gate.domain.inputs import GateInput, describe_validation_error, field_problems
from training_gate.domain.metrics import recombine
from training_gate.domain.models import InspectionResult, MetricsResult, parse_finite
from training_gate.domain.policy import Champion, Decision, Outcome, Policy, decide
from training_gate.domain.report import (
    client_token,
    decision_event,
    decision_message,
    decision_subject,
    decision_table,
    model_monitor_statistics,
    sanitize_metadata,
)

METADATA_METRICS_MAX = 40  # of the 50 CustomerMetadataProperties entries AWS allows
# 2: metric sources gain log-default; metrics gain ambiguous and unavailable; reason METRIC_AMBIGUOUS.
REPORT_SCHEMA_VERSION = 2
# The execution output must stay well under Step Functions' 256 KiB payload limit.
MARKDOWN_IN_OUTPUT_MAX = 16_000


class PolicyError(ValueError):
    """The effective policy cannot be built; the message names the source and the field."""


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
    report_markdown: str
    dry_run: bool
    model_package_group: str
    registration: dict[str, Any] | None
    duplicate_of: str | None = None
    recorded: bool = False


class GateSettings(BaseModel):
    """What the function's configuration says (environment, from cdk.json)."""

    default_policy: Policy
    default_group: str
    allowed_groups: list[str]
    reports_bucket: str
    policy_parameter_prefix: str = POLICY_PARAMETER_PREFIX
    inference: dict[str, Any] = {}


def resolve_policy(
    settings: GateSettings,
    job: dict[str, Any],
    overrides: dict[str, Any] | None,
    registry: ModelRegistry,
    load_stored: Callable[[str], dict[str, Any] | None],
) -> tuple[Policy, str, list[str]]:
    """The effective policy and group: default -> group (fixed or from a job tag) -> the group's
    stored policy, if any -> this execution's overrides. Returns notes saying what applied."""
    notes: list[str] = []
    default = settings.default_policy
    group = default.outcome.model_package_group or settings.default_group
    tag = default.outcome.group_from_tag
    if tag:
        tagged = registry.job_tags(job["TrainingJobArn"]).get(tag)
        if tagged:
            group = tagged
            notes.append(f"model package group {group} from the job's tag {tag}")
        else:
            notes.append(f"the job has no tag {tag}: using model package group {group}")
    _check_group(group, settings.allowed_groups)
    policy = default
    stored = load_stored(group)
    if stored is not None:
        try:
            policy = Policy.model_validate(stored)
        except ValidationError as exc:
            raise PolicyError(
                f"the stored policy {settings.policy_parameter_prefix}{group} is invalid: " + field_problems(exc)
            ) from exc
        notes.append(f"policy of group {group} from {settings.policy_parameter_prefix}{group}")
    if overrides:
        try:
            policy = policy.with_overrides(overrides)
        except ValidationError as exc:
            raise PolicyError(describe_validation_error(exc, prefix="policy_overrides")) from exc
        notes.append("policy_overrides from the execution input applied")
    return policy, group, notes


def _check_group(group: str, allowed: Collection[str]) -> None:
    if group not in allowed:
        raise PolicyError(
            f"model package group {group!r} is not one the gate may register in ({', '.join(sorted(allowed))}); "
            "add it to model_package_groups in cdk.json"
        )


def load_champion(policy: Policy, group: str, registry: ModelRegistry) -> Champion | None:
    """The group's latest Approved package, with the metric values the gate stored when it registered it."""
    if not policy.champion.enabled:
        return None
    found = registry.latest_approved(group)
    if found is None:
        return None
    arn, metadata = found
    metrics = {
        key.removeprefix("metric_"): value
        for key, raw in metadata.items()
        if key.startswith("metric_") and (value := parse_finite(raw)) is not None
    }
    return Champion(model_package_arn=arn, metrics=metrics)


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 60] + "\n\n[trimmed: the whole report is in S3 at report_uri]"


def _execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


def registration_request(
    request: EvaluateInput,
    policy: Policy,
    group: str,
    statistics: tuple[str, str],
    decision: Decision,
    metrics: MetricsResult,
    report_uri: str,
    inference: dict[str, Any],
) -> dict[str, Any]:
    job = request.job
    artifact = request.inspection.artifact
    stats_uri, stats_sha = statistics
    # Every reported metric is stored, so a later champion comparison can read it back.
    stored_metrics = {f"metric_{name}": m.raw for name, m in sorted(metrics.metrics.items()) if m.value is not None}
    metadata = {
        "training_job_arn": job.get("TrainingJobArn", ""),
        "gate_execution_arn": request.execution_arn,
        "gate_report": report_uri,
        "policy_sha256": decision.policy_sha256,
        "artifact_sha256": artifact.sha256 or "",
        **dict(list(stored_metrics.items())[:METADATA_METRICS_MAX]),
    }
    image = inference.get("image") or job.get("AlgorithmSpecification", {}).get("TrainingImage")
    request_fields: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": (
            f"registered by training-gate: {decision.outcome.value} for training job {job['TrainingJobName']}"
        ),
        "ModelApprovalStatus": policy.outcome.approval_status,
        "ClientToken": client_token(job.get("TrainingJobArn", job["TrainingJobName"]), decision.policy_sha256),
        "CustomerMetadataProperties": sanitize_metadata(metadata),
        "Tags": [
            {"Key": "managed-by", "Value": "training-gate"},
            {"Key": "training-job", "Value": job["TrainingJobName"]},
            {"Key": "gate-decision", "Value": decision.outcome.value},
        ],
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
            "SupportedContentTypes": inference.get("content_types", ["text/csv"]),
            "SupportedResponseMIMETypes": inference.get("response_types", ["text/csv"]),
            "SupportedRealtimeInferenceInstanceTypes": inference.get("realtime_instance_types", []),
            "SupportedTransformInstanceTypes": inference.get("transform_instance_types", []),
        }
        spec = request_fields["InferenceSpecification"]
        for key in ("SupportedRealtimeInferenceInstanceTypes", "SupportedTransformInstanceTypes"):
            if not spec[key]:
                del spec[key]  # AWS refuses an empty list here
    return request_fields


def evaluate(
    request: EvaluateInput,
    settings: GateSettings,
    store: ArtifactStore,
    registry: ModelRegistry,
    load_stored: Callable[[str], dict[str, Any] | None],
    log: DecisionLog | None = None,
    events: DecisionEvents | None = None,
) -> Evaluation:
    """Decide and report. Unless it is a dry run, the decision is recorded once per (job, policy):
    a repeated event or re-run finds it and ends as a duplicate."""
    job_name = request.job["TrainingJobName"]
    overrides = request.settings.policy_overrides
    policy, group, notes = resolve_policy(settings, request.job, overrides, registry, load_stored)
    metrics = recombine(request.metrics, request.inspection.metrics)
    champion = load_champion(policy, group, registry)
    decision = decide(policy, metrics, request.inspection, champion, overrides)
    decision.warnings = [*notes, *decision.warnings]
    prefix = f"reports/{job_name}/{_execution_name(request.execution_arn)}"
    dry_run = request.settings.dry_run
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "dry_run": dry_run,
        "training_job": job_name,
        "execution_arn": request.execution_arn,
        "model_package_group": group,
        "decision": decision.model_dump(mode="json"),
        "policy": policy.model_dump(mode="json"),
        "inspection": request.inspection.model_dump(mode="json", by_alias=True),
        "metrics": metrics.model_dump(mode="json"),
    }
    # Written in a dry run too: a report registers and notifies nothing, and it says it was a dry run.
    # Without a reports bucket (the command line's dry run) the report is only returned.
    report_uri = None
    if settings.reports_bucket:
        report_uri, _ = store.put_json(settings.reports_bucket, f"{prefix}/report.json", report)
    message = decision_message(job_name, decision, request.inspection, report_uri, request.execution_arn)
    if dry_run:
        message = "DRY RUN: nothing was registered or notified.\n" + message
    if settings.reports_bucket:
        store.put_text(settings.reports_bucket, f"{prefix}/report.md", message)
    duplicate_of = None
    if not dry_run and log is not None:
        existing = log.record(
            job_name,
            decision.policy_sha256,
            {
                "outcome": decision.outcome.value,
                "reasons": "; ".join(decision.reasons) or "every check passed",
                "reason_codes": ",".join(decision.reason_codes),
                "execution_arn": request.execution_arn,
                "report_uri": report_uri or "",
                "model_package_group": group,
                "decided_at": datetime.now(UTC).isoformat(),
            },
        )
        if existing is not None:
            duplicate_of = existing.get("execution_arn", "an earlier execution")
            log.add_duplicate(job_name, decision.policy_sha256, request.execution_arn)
    own_package = request.job.get("OutputModelPackageArn")
    if duplicate_of is None and not dry_run and decision.outcome != Outcome.PASS:
        if own_package and decision.outcome == Outcome.REJECT:
            registry.set_approval(own_package, "Rejected", f"training-gate: {'; '.join(decision.reasons)}")
        if events is not None:
            events.publish(
                _event_detail(request, decision, group, report_uri),
                [r for r in (request.job.get("TrainingJobArn"),) if r],
            )
    registration = None
    if decision.outcome == Outcome.PASS and not dry_run and duplicate_of is None:
        statistics = store.put_json(
            settings.reports_bucket, f"{prefix}/statistics.json", model_monitor_statistics(metrics.metrics)
        )
        registration = registration_request(
            request, policy, group, statistics, decision, metrics, report_uri, settings.inference
        )
    return Evaluation(
        outcome=decision.outcome,
        summary="; ".join(decision.reasons) or "every check passed",
        table=decision_table(decision),
        decision=decision,
        notification=Notification(subject=decision_subject(job_name, decision), message=message),
        report_uri=report_uri,
        report_markdown=_trim(message, MARKDOWN_IN_OUTPUT_MAX),
        dry_run=dry_run,
        model_package_group=group,
        registration=registration,
        duplicate_of=duplicate_of,
        recorded=not dry_run and log is not None and duplicate_of is None,
    )


def _event_detail(request: EvaluateInput, decision: Decision, group: str, report_uri: str | None) -> dict[str, Any]:
    summary = {"decision": decision.model_dump(mode="json"), "model_package_group": group, "report_uri": report_uri}
    return decision_event(request.job, summary, request.execution_arn)
