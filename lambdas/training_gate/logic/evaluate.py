"""EvaluatePolicy's use case, in three steps: decide (pure, from the job's evidence), report (write
the execution's report once), record (claim the decision in the decision table, or find who
already carries it out)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from training_gate.constants import POLICY_PARAMETER_PREFIX
from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.s3 import ArtifactStore
from training_gate.dal.sagemaker import ModelRegistry, TrainingJobs
from training_gate.dal.stepfunctions import Executions
from training_gate.domain.contract import (
    NOTIFICATION_MESSAGE_MAX,
    SUMMARY_MAX,
    TABLE_MAX,
    Claim,
    Evaluation,
    MetricsSummary,
    Notification,
    TrainingJob,
    trim,
)
from training_gate.domain.decision_record import ClaimVerdict, DecisionItem, ItemStatus, judge_existing
from training_gate.domain.inputs import GateInput, describe_validation_error, field_problems
from training_gate.domain.metrics import recombine
from training_gate.domain.models import InspectionResult, MetricsResult, parse_finite
from training_gate.domain.policy import Champion, Decision, Outcome, Policy, ReasonCode, decide
from training_gate.domain.report import decision_message, decision_subject, decision_table
from training_gate.domain.report_document import Report, execution_name, report_prefix

CLAIM_ATTEMPTS = 3


class PolicyError(ValueError):
    """The effective policy cannot be built; the message names the source and the field."""


class GateSettings(BaseModel):
    """What the function's configuration says (environment, from cdk.json)."""

    default_policy: Policy
    default_group: str
    allowed_groups: list[str]
    reports_bucket: str
    policy_parameter_prefix: str = POLICY_PARAMETER_PREFIX


class EvaluateRequest(BaseModel):
    job: TrainingJob
    inspection: InspectionResult
    metrics: MetricsSummary
    settings: GateInput
    execution_arn: str


@dataclass
class EvaluatePorts:
    store: ArtifactStore
    registry: ModelRegistry
    jobs: TrainingJobs
    load_stored: Callable[[str], dict[str, Any] | None]
    log: DecisionLog | None = None
    executions: Executions | None = None


@dataclass
class Decided:
    """The outcome of the decide step: everything the report and the record need."""

    policy: Policy
    group: str
    decision: Decision
    metrics: MetricsResult


# -- decide -----------------------------------------------------------------------------------


def check_group(group: str, allowed: Collection[str]) -> None:
    if group not in allowed:
        raise PolicyError(
            f"model package group {group!r} is not one the gate may register in ({', '.join(sorted(allowed))}); "
            "add it to additional_model_package_groups in cdk.json"
        )


def resolve_policy(
    settings: GateSettings,
    job: TrainingJob,
    overrides: dict[str, Any] | None,
    jobs: TrainingJobs,
    load_stored: Callable[[str], dict[str, Any] | None],
) -> tuple[Policy, str, list[str]]:
    """The effective policy and group: default -> group (fixed or from a job tag) -> the group's
    stored policy, if any -> this execution's overrides. Returns notes saying what applied."""
    notes: list[str] = []
    default = settings.default_policy
    group = default.outcome.model_package_group or settings.default_group
    tag = default.outcome.group_from_tag
    if tag:
        tagged = jobs.tags(job.training_job_arn).get(tag)
        if tagged:
            group = tagged
            notes.append(f"model package group {group} from the job's tag {tag}")
        else:
            notes.append(f"the job has no tag {tag}: using model package group {group}")
    check_group(group, settings.allowed_groups)
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
        # An override may name the group too: it must be one the gate may use, like any other.
        check_group(policy.outcome.model_package_group or group, settings.allowed_groups)
        group = policy.outcome.model_package_group or group
        notes.append("policy_overrides from the execution input applied")
    return policy, group, notes


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


def decide_job(
    job: TrainingJob,
    inspection: InspectionResult,
    collected: MetricsResult,
    settings: GateInput,
    gate: GateSettings,
    ports: EvaluatePorts,
) -> Decided:
    policy, group, notes = resolve_policy(gate, job, settings.policy_overrides, ports.jobs, ports.load_stored)
    metrics = recombine(collected, inspection.metrics)
    champion = load_champion(policy, group, ports.registry)
    decision = decide(policy, metrics, inspection, champion, settings.policy_overrides)
    decision.warnings = list(dict.fromkeys([*notes, *decision.warnings]))
    return Decided(policy=policy, group=group, decision=decision, metrics=metrics)


# -- report -----------------------------------------------------------------------------------


def write_report(
    decided: Decided,
    request: EvaluateRequest,
    reports_bucket: str,
    store: ArtifactStore,
) -> tuple[str | None, str]:
    """report.json and report.md under the execution's own prefix (a dry run's too: it says so).
    Without a bucket (the command line's dry run) nothing is written. Returns (report URI, message)."""
    job_name = request.job.training_job_name
    prefix = report_prefix(job_name, execution_name(request.execution_arn))
    report = Report(
        dry_run=request.settings.dry_run,
        training_job=job_name,
        execution_arn=request.execution_arn,
        model_package_group=decided.group,
        decision=decided.decision,
        policy=decided.policy,
        inspection=request.inspection,
        metrics=decided.metrics,
        metrics_uri=request.metrics.metrics_uri,
        fidelity_uri=request.metrics.fidelity_uri,
    )
    report_uri = None
    if reports_bucket:
        report_uri, _ = store.put_json(reports_bucket, f"{prefix}/report.json", report.document())
    message = decision_message(job_name, decided.decision, request.inspection, report_uri, request.execution_arn)
    if request.settings.dry_run:
        message = "DRY RUN: nothing was registered or notified.\n" + message
    if reports_bucket:
        store.put_text(reports_bucket, f"{prefix}/report.md", message)
    return report_uri, message


# -- record -----------------------------------------------------------------------------------


def _summary(decision: Decision) -> str:
    return trim("; ".join(decision.reasons) or "every check passed", SUMMARY_MAX, "the report")


def new_item(
    decided: Decided, request: EvaluateRequest, report_uri: str | None, notification: Notification
) -> DecisionItem:
    decision = decided.decision
    return DecisionItem(
        training_job=request.job.training_job_name,
        policy_sha256=decision.policy_sha256,
        status=ItemStatus.DECIDED,
        owner=request.execution_arn,
        execution_arn=request.execution_arn,
        outcome=decision.outcome.value,
        reasons="; ".join(decision.reasons) or "every check passed",
        reason_codes=",".join(decision.reason_codes),
        report_uri=report_uri or "",
        model_package_group=decided.group,
        decided_at=datetime.now(UTC).isoformat(),
        notification_subject=notification.subject,
        notification_message=notification.message,
        decision_table=trim(decision_table(decision), TABLE_MAX, "the report"),
    )


def evaluation_from_item(item: DecisionItem, claim: Claim, dry_run: bool, resumed: bool = False) -> Evaluation:
    """The decision as the table stores it: what a taker-over, a retry or a duplicate reports."""
    codes = [ReasonCode(c) for c in (item.reason_codes or "").split(",") if c in ReasonCode.__members__.values()]
    return Evaluation(
        outcome=Outcome(item.outcome or Outcome.INCONCLUSIVE),
        summary=trim(item.reasons or "", SUMMARY_MAX, "the report"),
        reasons=[r[:300] for r in (item.reasons or "").split("; ")[:20] if r and item.outcome != Outcome.PASS],
        reason_codes=codes,
        table=trim(item.decision_table or "", TABLE_MAX, "the report"),
        policy_sha256=item.policy_sha256,
        model_package_group=item.model_package_group or "",
        report_uri=item.report_uri or None,
        notification=Notification(
            subject=item.notification_subject or f"training-gate decision: {item.training_job}",
            message=item.notification_message or (item.reasons or ""),
        ),
        dry_run=dry_run,
        claim=claim,
        decided_by=item.execution_arn or item.owner or "",
        resumed=resumed,
        owner_execution=item.owner or item.execution_arn,
        model_package_arn=item.model_package_arn,
        completion=item.completion,
    )


def record_decision(item: DecisionItem, log: DecisionLog, executions: Executions) -> tuple[Claim, DecisionItem, bool]:
    """Claim the decision for `item.owner`. Returns the claim, the item that now holds the decision
    this execution carries out (or reports), and whether it was taken over from another execution."""
    me = item.owner or ""
    if log.create(item):
        return Claim.OWNER, item, False
    for _ in range(CLAIM_ATTEMPTS):
        existing = log.get(item.training_job, item.policy_sha256)
        if existing is None:  # deleted by hand between the two calls
            if log.create(item):
                return Claim.OWNER, item, False
            continue
        running = bool(existing.owner) and existing.owner != me and not existing.complete
        running = running and executions.is_running(existing.owner or "")
        verdict = judge_existing(existing, me, running)
        if verdict is ClaimVerdict.OWN:
            return Claim.OWNER, existing, False
        if verdict is ClaimVerdict.COMPLETE:
            log.add_duplicate(item.training_job, item.policy_sha256, me)
            return Claim.DUPLICATE, existing, False
        if verdict is ClaimVerdict.OWNER_RUNNING:
            return Claim.IN_PROGRESS, existing, False
        replace = None if existing.resumable else _decision_attributes(item)
        if log.take_over(existing, me, replace):
            resumed = existing.model_copy(update={"owner": me, **(replace or {})})
            return Claim.OWNER, resumed, True
    raise RuntimeError(
        f"the decision on {item.training_job} changed {CLAIM_ATTEMPTS} times while this execution read it; re-run"
    )


def _decision_attributes(item: DecisionItem) -> dict[str, str]:
    """What a taker-over of a legacy item (no stored decision) writes: its own decision."""
    fields = (
        "execution_arn",
        "outcome",
        "reasons",
        "reason_codes",
        "report_uri",
        "model_package_group",
        "decided_at",
        "notification_subject",
        "notification_message",
        "decision_table",
    )
    values = item.model_dump()
    return {f: str(values[f]) for f in fields if values.get(f) is not None} | {"status": ItemStatus.DECIDED.value}


# -- the use case -----------------------------------------------------------------------------


def evaluate(
    request: EvaluateRequest, collected: MetricsResult, gate: GateSettings, ports: EvaluatePorts
) -> Evaluation:
    """Decide, report, record. A dry run, or a run without a decision table, records nothing."""
    decided = decide_job(request.job, request.inspection, collected, request.settings, gate, ports)
    report_uri, message = write_report(decided, request, gate.reports_bucket, ports.store)
    notification = Notification(
        subject=decision_subject(request.job.training_job_name, decided.decision),
        message=trim(message, NOTIFICATION_MESSAGE_MAX, report_uri or "the report"),
    )
    item = new_item(decided, request, report_uri, notification)
    if request.settings.dry_run or ports.log is None or ports.executions is None:
        evaluation = evaluation_from_item(item, Claim.NOT_RECORDED, request.settings.dry_run)
        evaluation.observed_values = decided.decision.observed_values()
        return evaluation
    claim, holding, resumed = record_decision(item, ports.log, ports.executions)
    evaluation = evaluation_from_item(holding, claim, dry_run=False, resumed=resumed)
    if claim == Claim.OWNER and not resumed:
        evaluation.observed_values = decided.decision.observed_values()
    return evaluation


def load_collected(summary: MetricsSummary, store: ArtifactStore) -> MetricsResult:
    """The full MetricsResult CollectMetrics left in S3."""
    if not summary.metrics_uri:
        return MetricsResult(metrics={}, details=[], warnings=summary.warnings, log_streams=summary.log_streams)
    return MetricsResult.model_validate(store.get_json(summary.metrics_uri))


def evaluate_execution(request: EvaluateRequest, gate: GateSettings, ports: EvaluatePorts) -> Evaluation:
    """EvaluatePolicy's whole use case: the metrics CollectMetrics stored, then evaluate."""
    return evaluate(request, load_collected(request.metrics, ports.store), gate, ports)
