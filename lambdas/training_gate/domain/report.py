"""What people read (Markdown table, notifications) and what the registry stores. Pure."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from training_gate.domain.contract import CandidateResult, Evaluation, TrainingJob, TuningContext
from training_gate.domain.models import InspectionResult, MetricValue
from training_gate.domain.policy import Decision, Outcome, ReasonCode, RuleResult

SNS_SUBJECT_MAX = 100
METADATA_KEY_MAX = 128
METADATA_VALUE_MAX = 256
_METADATA_FORBIDDEN = re.compile(r"[^A-Za-z0-9 _.:/=+\-@]")
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")
# A fixed namespace makes the ClientToken a pure function of (job, policy): the same decision
# retried or re-run can never create a second package.
CLIENT_TOKEN_NAMESPACE = uuid.UUID("5d0c3f57-7b5e-4a47-9a3c-61a1c3bd3c11")


def _value_text(result: RuleResult) -> str:
    if result.reason == ReasonCode.METRIC_AMBIGUOUS:
        return "ambiguous"
    if result.raw is None:
        return "missing"
    return result.raw if result.value is None else f"{result.value:.4g}"


def decision_table(decision: Decision) -> str:
    """The Markdown table people expect: Metric | Value | Threshold | Champion | Source | Result."""
    lines = [
        "| Metric | Value | Threshold | Champion | Source | Result |",
        "|---|---|---|---|---|---|",
    ]
    for result in decision.rules:
        name = result.metric
        if result.original_name and canonical_differs(result):
            name = f"{result.metric} ({result.original_name})"
        verdict = "PASS" if result.passed else ("FAIL" if result.required else "FAIL (optional)")
        champion = "-" if result.champion is None else f"{result.champion:.4g}"
        lines.append(
            f"| {name} | {_value_text(result)} | {result.operator} {result.threshold:g} | {champion} "
            f"| {result.source or '-'} | {verdict} |"
        )
    return "\n".join(lines)


def canonical_differs(result: RuleResult) -> bool:
    return (result.original_name or "").lower() != result.metric


def ascii_line(text: str, limit: int) -> str:
    """SNS subjects must be printable ASCII, without line breaks or control characters, at most
    100 characters (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html, Subject)."""
    flat = " ".join(text.split())
    flat = _NOT_PRINTABLE_ASCII.sub("?", flat) or "?"
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def decision_subject(job_name: str, decision: Decision) -> str:
    first = f" - {decision.reasons[0]}" if decision.reasons else ""
    return ascii_line(f"{_title(decision.outcome, decision.reason_codes)}: {job_name}{first}", SNS_SUBJECT_MAX)


_TITLES = {
    Outcome.PASS: "Model passed",
    Outcome.REJECT: "Model rejected",
    Outcome.INCONCLUSIVE: "Gate inconclusive, needs a human",
    Outcome.SKIPPED: "Model skipped, not scikit-learn",
}


def _title(outcome: Outcome, codes: list[ReasonCode]) -> str:
    if outcome == Outcome.SKIPPED and ReasonCode.READER_NOT_INSTALLED in codes:
        return "Model skipped, no reader in the inspector"
    return _TITLES[outcome]


# What registries, events and messages say about the judged model (`ModelInfo`'s identity, not its details).
MODEL_FIELDS = ("framework", "format", "reader", "reader_version", "writer_version", "bytes_validated")
# What a checkpoint's reader counted (under `ModelInfo.details`): its size, in the same flat object.
CHECKPOINT_FACTS = ("parameters", "dtypes", "tensor_bytes")


def model_facts(inspection: InspectionResult | None) -> dict[str, Any] | None:
    """The judged model's framework, format, reader and writer (a checkpoint's parameters, dtypes and bytes
    too), as one flat object (None: no model loaded)."""
    if inspection is None or not inspection.model.framework:
        return None
    facts = inspection.model.model_dump(include=set(MODEL_FIELDS))
    facts["class"] = inspection.model.class_name
    facts.update({k: inspection.model.details[k] for k in CHECKPOINT_FACTS if k in inspection.model.details})
    return facts


def tuning_subject(
    tuning_job_name: str, outcome: Outcome, reasons: list[str], codes: list[ReasonCode] | None = None
) -> str:
    first = f" - {reasons[0]}" if reasons else ""
    return ascii_line(f"{_title(outcome, codes or [])}: tuning job {tuning_job_name}{first}", SNS_SUBJECT_MAX)


def tuning_outcome(results: list[CandidateResult]) -> Outcome:
    """The tuning job's outcome when no candidate passed: rejected if any candidate was, else
    inconclusive if any was (a person must look), else skipped (no candidate held a model to judge)."""
    outcomes = {r.outcome for r in results}
    for outcome in (Outcome.PASS, Outcome.REJECT, Outcome.INCONCLUSIVE):
        if outcome in outcomes:
            return outcome
    return Outcome.SKIPPED


def tuning_lines(tuning: TuningContext, tried: list[CandidateResult], outcome: Outcome) -> list[str]:
    """What a person reads first about a tuning job's decision: the tuning job, its objective and
    size, and each candidate judged, best first, with what the policy said."""
    objective = tuning.objective_metric or "(none given)"
    if tuning.objective_type:
        objective += f" ({tuning.objective_type})"
    action = {
        Outcome.PASS: f"Its training job {tried[-1].training_job_name} passed and is the one registered.",
        Outcome.REJECT: "No candidate passed: nothing was registered. Retrain or fix the failing checks below.",
        Outcome.INCONCLUSIVE: "No candidate could be decided; nothing was registered. A person must look.",
        Outcome.SKIPPED: "No candidate holds a scikit-learn model: nothing was judged or registered.",
    }[outcome]
    lines = [
        f"Tuning job: {tuning.tuning_job_name} ({tuning.status})",
        f"Objective: {objective}; {tuning.children} training jobs launched, {tuning.children_completed} completed",
    ]
    if tuning.definitions:
        lines.append(f"Training definitions: {', '.join(tuning.definitions)}")
    lines += [
        f"Decision: {outcome.value}",
        action,
        "",
        f"Candidates judged, best first ({len(tried)} of at most {len(tuning.candidates)}):",
    ]
    by_name = {c.training_job_name: c for c in tuning.candidates}
    for result in tried:
        candidate = by_name.get(result.training_job_name)
        facts = []
        if result.objective_value is not None:
            facts.append(f"objective {result.objective_value:.6g}")
        if candidate is not None and candidate.definition_name:
            facts.append(f"definition {candidate.definition_name}")
        said = "; ".join(result.reasons) or "every check passed"
        lines.append(
            f"- {result.training_job_name} ({', '.join(facts) or 'no objective'}): {result.outcome.value} - {said}"
        )
        if result.report_uri:
            lines.append(f"  report: {result.report_uri}")
    if tuning.overall_best_training_job:
        lines += [
            "",
            f"Warm start: the best across the parent tuning jobs is {tuning.overall_best_training_job}; it is judged "
            "with its own tuning job, not this one.",
        ]
    return lines


def decision_message(
    job_name: str,
    decision: Decision,
    inspection: InspectionResult | None,
    report_uri: str | None,
    execution_arn: str | None = None,
) -> str:
    action = {
        Outcome.PASS: "The model passed every check.",
        Outcome.REJECT: "The model was NOT registered. Retrain or fix the failing checks below.",
        Outcome.INCONCLUSIVE: "The gate could not decide; nothing was registered. A person must look.",
        Outcome.SKIPPED: (
            "The artifact holds no model of a framework the gate judges (scikit-learn, XGBoost, LightGBM, "
            "CatBoost, ONNX): nothing was judged, registered or changed. If this job should not reach the gate, "
            "remove its training-gate tag (or its name prefix); if its model is under another name, set model_file."
        ),
    }[decision.outcome]
    if decision.outcome == Outcome.SKIPPED and ReasonCode.READER_NOT_INSTALLED in decision.reason_codes:
        action = (
            "The gate judges this model's framework, but this inspector image does not carry its reader: nothing "
            "was judged, registered or changed. Deploy an inspector image that carries it (sklearn_version: see "
            "the README's table of readers per image)."
        )
    parts = [
        f"Training job: {job_name}",
        f"Decision: {decision.outcome.value}",
        action,
        "",
        "Reasons:",
        *(
            [f"- [{code.value}] {reason}" for code, reason in zip(decision.reason_codes, decision.reasons, strict=True)]
            or ["- none"]
        ),
        "",
        decision_table(decision),
    ]
    if decision.warnings:
        parts += ["", "Warnings:", *(f"- {w}" for w in decision.warnings)]
    summary = inspection.model.summary() if inspection is not None else None
    if summary:
        parts += ["", f"Model: {summary}"]
    if decision.rules_from:
        parts.append(f"Rules: {decision.rules_from}")
    if inspection is not None:
        parts += ["", "Artifact checks:"]
        parts += [f"- {c.name}: {c.status.value} - {c.detail}" for c in inspection.checks]
    parts += ["", f"Policy sha256: {decision.policy_sha256}"]
    if decision.overrides:
        parts.append(f"Policy overrides for this execution: {json.dumps(decision.overrides, sort_keys=True)}")
    if decision.champion_arn:
        parts.append(f"Champion: {decision.champion_arn}")
    if execution_arn:
        parts += ["", *console_links(execution_arn, job_name, report_uri)]
    if report_uri:
        parts.append(f"Report: {report_uri}")
    return "\n".join(parts)


def console_links(execution_arn: str, job_name: str, report_uri: str | None) -> list[str]:
    """Console pages a person opens from a notification: the report, the execution, the job's logs."""
    parts = execution_arn.split(":")
    region = parts[3] if len(parts) > 3 and parts[3] else "us-east-1"
    console = f"https://{region}.console.aws.amazon.com"
    links = [
        f"Execution: {console}/states/home?region={region}#/v2/executions/details/{quote(execution_arn, safe='')}",
        f"Training job logs: {console}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/"
        f"$252Faws$252Fsagemaker$252FTrainingJobs$3FlogStreamNameFilter$3D{quote(job_name)}",
    ]
    if report_uri:
        bucket, _, key = report_uri.removeprefix("s3://").partition("/")
        links.insert(
            0, f"Report: https://s3.console.aws.amazon.com/s3/object/{bucket}?region={region}&prefix={quote(key)}"
        )
    return links


def decision_event(
    job: TrainingJob, evaluation: Evaluation, execution_arn: str, model_package_arn: str | None = None
) -> dict[str, Any]:
    """What EventBridge subscribers receive about a decision (the report's summary)."""
    subject_arn = evaluation.tuning_job_arn or job.training_job_arn
    return {
        # Stable for the decision: a subscriber drops a second delivery of the same event by it.
        "decision_id": client_token(subject_arn, evaluation.policy_sha256),
        "tuning_job_name": evaluation.tuning_job_name,
        "tuning_job_arn": evaluation.tuning_job_arn,
        "training_job_name": job.training_job_name,
        "training_job_arn": job.training_job_arn,
        "execution_arn": execution_arn,
        "decided_by": evaluation.decided_by,
        "outcome": evaluation.outcome.value,
        "reason_codes": [c.value for c in evaluation.reason_codes],
        "reasons": evaluation.reasons,
        "policy_sha256": evaluation.policy_sha256,
        "model_package_group": evaluation.model_package_group,
        "report_uri": evaluation.report_uri,
        "model_package_arn": model_package_arn,
        "model_package_version": model_package_arn.rsplit("/", 1)[-1] if model_package_arn else None,
        # The judged model: framework, format, reader and writer versions, and a checkpoint's parameters,
        # dtypes and bytes (None when no model was loaded).
        "model": evaluation.model,
    }


def client_token(training_job_arn: str, policy_sha256: str) -> str:
    return str(uuid.uuid5(CLIENT_TOKEN_NAMESPACE, f"{training_job_arn}|{policy_sha256}"))


def sanitize_metadata(properties: Mapping[str, str]) -> dict[str, str]:
    """Fit CustomerMetadataProperties to AWS limits: allowed characters only, bounded lengths,
    at most 50 entries."""
    clean: dict[str, str] = {}
    for key, value in list(properties.items())[:50]:
        safe_key = _METADATA_FORBIDDEN.sub("_", key)[:METADATA_KEY_MAX] or "_"
        safe_value = _METADATA_FORBIDDEN.sub("_", str(value))[:METADATA_VALUE_MAX]
        if safe_value:  # AWS refuses an empty value (1 to 256 characters)
            clean[safe_key] = safe_value
    return clean


def model_monitor_statistics(metrics: Mapping[str, MetricValue]) -> dict[str, object]:
    """Model quality statistics in the SageMaker Model Monitor shape that Studio displays."""
    return {
        "version": 0.0,
        "multiclass_classification_metrics": {
            name: {"value": metric.value, "standard_deviation": "NaN"}
            for name, metric in sorted(metrics.items())
            if metric.value is not None and ":" not in name
        },
    }
