"""EvaluatePolicy's use case, in three steps: decide (pure, from the job's evidence), report (write
the execution's report once), record (claim the decision in the decision table, or find who
already carries it out).

A tuning job is judged by its candidates, best first: each goes through the same decision; one
that does not pass while others remain is only reported (nothing is claimed) and the workflow
judges the next. The first that passes, or the last, makes the tuning job's one decision, keyed by
the tuning job, which names every candidate tried."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from training_gate.constants import POLICY_PARAMETER_PREFIX
from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.s3 import ArtifactStore
from training_gate.dal.sagemaker import ModelRegistry, TrainingJobs
from training_gate.dal.stepfunctions import Executions
from training_gate.domain.contract import (
    NOTIFICATION_MESSAGE_MAX,
    SUMMARY_MAX,
    TABLE_MAX,
    CandidateResult,
    Claim,
    Evaluation,
    MetricsSummary,
    Notification,
    TrainingJob,
    TuningContext,
    trim,
)
from training_gate.domain.decision_record import ClaimVerdict, DecisionItem, ItemStatus, judge_existing
from training_gate.domain.framework_policies import derived_for_model
from training_gate.domain.inputs import GateInput, describe_validation_error, field_problems
from training_gate.domain.metrics import recombine, tuning_objective_value
from training_gate.domain.models import InspectionResult, MetricsResult, MetricValue, parse_finite
from training_gate.domain.pipeline import WaitingToken
from training_gate.domain.policy import Champion, Decision, Outcome, Policy, ReasonCode, decide, framework_policy
from training_gate.domain.report import (
    decision_message,
    decision_subject,
    decision_table,
    model_facts,
    tuning_lines,
    tuning_outcome,
    tuning_subject,
)
from training_gate.domain.report_document import Report, TuningReport, execution_name, report_prefix

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
    tuning: TuningContext | None = Field(default=None, description="set when the job is a tuning job's candidate")


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
    extra: list[MetricValue] | None = None,
) -> Decided:
    policy, group, notes = resolve_policy(gate, job, settings.policy_overrides, ports.jobs, ports.load_stored)
    found = [*inspection.metrics, *(extra or [])]
    found += derived_for_model(inspection.model, [*collected.details, *found])
    metrics = recombine(collected, found)
    # The model's framework chooses the rules (its own in the policy, or the gate's defaults for it).
    policy, rules_from = framework_policy(policy, inspection, metrics)
    if rules_from:
        notes.append(f"rules: {rules_from} ({', '.join(r.metric for r in policy.rules)})")
    champion = load_champion(policy, group, ports.registry)
    decision = decide(policy, metrics, inspection, champion, settings.policy_overrides)
    decision.rules_from = rules_from
    decision.warnings = list(dict.fromkeys([*notes, *decision.warnings]))
    return Decided(policy=policy, group=group, decision=decision, metrics=metrics)


# -- report -----------------------------------------------------------------------------------


def write_report(
    decided: Decided,
    request: EvaluateRequest,
    reports_bucket: str,
    store: ArtifactStore,
    tuning: TuningReport | None = None,
    header: list[str] | None = None,
) -> tuple[str | None, str]:
    """report.json and report.md under the execution's own prefix (a dry run's too: it says so).
    Without a bucket (the command line's dry run) nothing is written. Returns (report URI, message)."""
    job_name = request.job.training_job_name
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
        tuning=tuning,
    )
    return store_report(report, reports_bucket, store, header)


def store_report(
    report: Report, reports_bucket: str, store: ArtifactStore, header: list[str] | None = None
) -> tuple[str | None, str]:
    """Write report.json and report.md of one job under the execution's prefix; (URI, message)."""
    prefix = report_prefix(report.training_job, execution_name(report.execution_arn))
    report_uri = None
    if reports_bucket:
        report_uri, _ = store.put_json(reports_bucket, f"{prefix}/report.json", report.document())
    message = decision_message(
        report.training_job, report.decision, report.inspection, report_uri, report.execution_arn
    )
    if header:
        message = "\n".join([*header, "", f"The judged training job {report.training_job}:", message])
    if report.dry_run:
        message = "DRY RUN: nothing was registered or notified.\n" + message
    if reports_bucket:
        store.put_text(reports_bucket, f"{prefix}/report.md", message)
    return report_uri, message


# -- record -----------------------------------------------------------------------------------


def _summary(decision: Decision) -> str:
    return trim("; ".join(decision.reasons) or "every check passed", SUMMARY_MAX, "the report")


def new_item(
    decided: Decided,
    request: EvaluateRequest,
    report_uri: str | None,
    notification: Notification,
    judged: TrainingJob | None = None,
) -> DecisionItem:
    decision = decided.decision
    tuning = request.tuning
    callback = request.settings.pipeline_callback
    return DecisionItem(
        training_job=request.settings.decision_key or request.job.training_job_name,
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
        judged_job=(judged or request.job).model_dump_json(),
        tuning_job_name=tuning.tuning_job_name if tuning else None,
        tuning_job_arn=tuning.tuning_job_arn if tuning else None,
        judged_model=json.dumps(facts, sort_keys=True) if (facts := model_facts(request.inspection)) else None,
        waiting=[WaitingToken.of(callback, request.execution_arn).entry()] if callback else [],
    )


def evaluation_from_item(item: DecisionItem, claim: Claim, dry_run: bool, resumed: bool = False) -> Evaluation:
    """The decision as the table stores it: what a taker-over, a retry or a duplicate reports."""
    codes = list(
        dict.fromkeys(
            ReasonCode(c) for c in (item.reason_codes or "").split(",") if c in ReasonCode.__members__.values()
        )
    )
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
        decision_key=item.training_job,
        tuning_job_name=item.tuning_job_name,
        tuning_job_arn=item.tuning_job_arn,
        model=json.loads(item.judged_model) if item.judged_model else None,
    )


def record_decision(item: DecisionItem, log: DecisionLog, executions: Executions) -> tuple[Claim, DecisionItem, bool]:
    """Claim the decision for `item.owner`. Returns the claim, the item that now holds the decision
    this execution carries out (or reports), and whether it was taken over from another execution.

    A pipeline's token (`item.waiting`, this execution's own) goes where it will be answered: on the item
    this execution creates or takes over; on the item another running execution owns, only while that one
    is neither complete nor given up (else the item is judged again: a complete one is answered by this
    execution with its decision, a given-up one is taken over); never on a complete one."""
    me = item.owner or ""
    waiting = item.waiting[0] if item.waiting else None
    if log.create(item):
        return Claim.OWNER, item, False
    for _ in range(CLAIM_ATTEMPTS):
        existing = log.get(item.training_job, item.policy_sha256)
        if existing is None:  # deleted by hand between the two calls
            if log.create(item):
                return Claim.OWNER, item, False
            continue
        # An owner that gave the decision up (it failed, and said so) is not waited for, even while it runs.
        running = bool(existing.owner) and existing.owner != me and not existing.complete and not existing.closed
        running = running and executions.is_running(existing.owner or "")
        verdict = judge_existing(existing, me, running)
        if verdict is ClaimVerdict.OWN:
            return Claim.OWNER, existing, False
        if verdict is ClaimVerdict.COMPLETE:
            log.add_duplicate(item.training_job, item.policy_sha256, me)
            return Claim.DUPLICATE, existing, False
        if verdict is ClaimVerdict.OWNER_RUNNING:
            if waiting is not None and not log.add_waiting(
                item.training_job, item.policy_sha256, existing.owner or "", waiting
            ):
                continue  # completed or given up since it was read: judge it again
            log.record_ending(
                item.training_job,
                item.policy_sha256,
                me,
                "DuplicateInProgress",
                cause=f"execution {existing.owner} was carrying the decision out",
            )
            return Claim.IN_PROGRESS, existing, False
        replace = None if existing.resumable else _decision_attributes(item)
        if log.take_over(existing, me, replace, waiting):
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
        "judged_job",
        "tuning_job_name",
        "tuning_job_arn",
        "judged_model",
    )
    values = item.model_dump()
    return {f: str(values[f]) for f in fields if values.get(f) is not None} | {"status": ItemStatus.DECIDED.value}


# -- the use case -----------------------------------------------------------------------------


def evaluate(
    request: EvaluateRequest, collected: MetricsResult, gate: GateSettings, ports: EvaluatePorts
) -> Evaluation:
    """Decide, report, record. A dry run, or a run without a decision table, records nothing."""
    if request.tuning is not None:
        return evaluate_candidate(request, request.tuning, collected, gate, ports)
    decided = decide_job(request.job, request.inspection, collected, request.settings, gate, ports)
    report_uri, message = write_report(decided, request, gate.reports_bucket, ports.store)
    notification = Notification(
        subject=decision_subject(request.job.training_job_name, decided.decision),
        message=trim(message, NOTIFICATION_MESSAGE_MAX, report_uri or "the report"),
    )
    return record(decided, request, new_item(decided, request, report_uri, notification), ports)


def record(decided: Decided, request: EvaluateRequest, item: DecisionItem, ports: EvaluatePorts) -> Evaluation:
    if request.settings.dry_run or ports.log is None or ports.executions is None:
        evaluation = evaluation_from_item(item, Claim.NOT_RECORDED, request.settings.dry_run)
        evaluation.observed_values = decided.decision.observed_values()
        return evaluation
    claim, holding, resumed = record_decision(item, ports.log, ports.executions)
    evaluation = evaluation_from_item(holding, claim, dry_run=False, resumed=resumed)
    evaluation.token_left_with_owner = claim == Claim.IN_PROGRESS and bool(item.waiting)
    if claim == Claim.OWNER and not resumed:
        evaluation.observed_values = decided.decision.observed_values()
    return evaluation


# -- a tuning job's candidates ------------------------------------------------------------------

CANDIDATE_REASONS_MAX = 5


def candidate_result(job: TrainingJob, decided: Decided, objective: float | None) -> CandidateResult:
    decision = decided.decision
    return CandidateResult(
        training_job_name=job.training_job_name,
        outcome=decision.outcome,
        reasons=[r[:300] for r in decision.reasons[:CANDIDATE_REASONS_MAX]],
        reason_codes=decision.reason_codes[:CANDIDATE_REASONS_MAX],
        objective_value=objective,
    )


def evaluate_candidate(
    request: EvaluateRequest, tuning: TuningContext, collected: MetricsResult, gate: GateSettings, ports: EvaluatePorts
) -> Evaluation:
    """One candidate of a tuning job. Not the last and not passing: reported, nothing claimed, the next
    candidate follows. Otherwise the tuning job's decision: this candidate's pass, or (none passed)
    the best candidate's rejection with every candidate's reasons."""
    job, candidate = request.job, tuning.current
    if candidate is None or candidate.training_job_name != job.training_job_name:
        raise ValueError(
            f"training job {job.training_job_name} is not the current candidate of tuning job {tuning.tuning_job_name}"
        )
    extra = []
    if candidate.objective_metric and candidate.objective_value is not None:
        extra.append(tuning_objective_value(candidate.objective_metric, candidate.objective_value))
    decided = decide_job(job, request.inspection, collected, request.settings, gate, ports, extra)
    result = candidate_result(job, decided, candidate.objective_value)
    passed = decided.decision.outcome == Outcome.PASS
    tried = [*tuning.tried, result]
    if not passed and tuning.is_last and not tuning.tried:
        # The only candidate: its report is the tuning job's, written once by the rejection.
        return reject_tuning_job(request, tuning, tried, decided, gate, ports)
    header = tuning_lines(tuning, tried, Outcome.PASS) if passed else None
    report_uri, message = write_report(
        decided, request, gate.reports_bucket, ports.store, TuningReport.of(tuning, tried), header
    )
    result.report_uri = report_uri
    if passed:
        notification = Notification(
            subject=tuning_subject(tuning.tuning_job_name, Outcome.PASS, []),
            message=trim(message, NOTIFICATION_MESSAGE_MAX, report_uri or "the report"),
        )
        return record(decided, request, new_item(decided, request, report_uri, notification), ports)
    if tuning.is_last:
        return reject_tuning_job(request, tuning, tried, decided, gate, ports)
    evaluation = evaluation_from_item(
        new_item(decided, request, report_uri, Notification(subject="-", message="-")),
        Claim.NOT_RECORDED,
        request.settings.dry_run,
    )
    evaluation.next_candidate = True
    evaluation.tuning = tuning.advanced(result)
    return evaluation


def reject_tuning_job(
    request: EvaluateRequest,
    tuning: TuningContext,
    tried: list[CandidateResult],
    last: Decided,
    gate: GateSettings,
    ports: EvaluatePorts,
) -> Evaluation:
    """No candidate passed: the decision is about the best candidate, with every candidate's reasons.
    Its report (the best candidate's, rewritten) names the tuning job and each candidate tried."""
    outcome = tuning_outcome(tried)
    # Reasons and codes stay pairwise aligned, as in any decision: one pair per reason of each candidate.
    pairs = [
        (code, f"{r.training_job_name}: {reason}")
        for r in tried
        for code, reason in zip(r.reason_codes, r.reasons, strict=False)
    ]
    codes = [code for code, _ in pairs]
    reasons = [reason for _, reason in pairs]
    best = tried[0]
    if best.report_uri is None and gate.reports_bucket:
        # The best candidate's report is this decision's: the candidates listed in it point at it too.
        prefix = report_prefix(best.training_job_name, execution_name(request.execution_arn))
        best.report_uri = f"s3://{gate.reports_bucket}/{prefix}/report.json"
    if best.training_job_name == request.job.training_job_name:
        judged, best_decided, best_inspection = request.job, last, request.inspection
    else:
        judged = ports.jobs.describe(best.training_job_name).job
        stored = Report.model_validate(ports.store.get_json(best.report_uri)) if best.report_uri else None
        if stored is None:  # the command line's dry run keeps no reports: the last candidate stands in
            best_decided, best_inspection = last, request.inspection
        else:
            best_decided = Decided(stored.policy, stored.model_package_group, stored.decision, stored.metrics)
            best_inspection = stored.inspection
    decision = best_decided.decision.model_copy(update={"outcome": outcome, "reasons": reasons, "reason_codes": codes})
    decided = Decided(best_decided.policy, best_decided.group, decision, best_decided.metrics)
    best_request = request.model_copy(update={"job": judged, "inspection": best_inspection})
    report_uri, message = write_report(
        decided,
        best_request,
        gate.reports_bucket,
        ports.store,
        TuningReport.of(tuning, tried),
        tuning_lines(tuning, tried, outcome),
    )
    notification = Notification(
        subject=tuning_subject(tuning.tuning_job_name, outcome, reasons, codes),
        message=trim(message, NOTIFICATION_MESSAGE_MAX, report_uri or "the report"),
    )
    return record(decided, best_request, new_item(decided, best_request, report_uri, notification, judged), ports)


def load_collected(summary: MetricsSummary, store: ArtifactStore) -> MetricsResult:
    """The full MetricsResult CollectMetrics left in S3."""
    if not summary.metrics_uri:
        return MetricsResult(metrics={}, details=[], warnings=summary.warnings, log_streams=summary.log_streams)
    return MetricsResult.model_validate(store.get_json(summary.metrics_uri))


def evaluate_execution(request: EvaluateRequest, gate: GateSettings, ports: EvaluatePorts) -> Evaluation:
    """EvaluatePolicy's whole use case: the metrics CollectMetrics stored, then evaluate."""
    return evaluate(request, load_collected(request.metrics, ports.store), gate, ports)
