"""What to do about a training job that did not complete. Pure."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from training_gate.domain.report import SNS_SUBJECT_MAX, ascii_line

Action = Literal["retry", "fix-code", "fix-data", "investigate"]

# Ordered: the first pattern that matches the FailureReason decides.
_CLASSIFICATION: tuple[tuple[re.Pattern[str], Action, str], ...] = (
    (
        re.compile(r"capacity|spot|interrupt|InternalServerError|internal error|throttl", re.I),
        "retry",
        "a transient or capacity problem on the AWS side: start the job again",
    ),
    (
        re.compile(r"data|csv|parse|dtype|NaN|channel|S3 object|no such key|input", re.I),
        "fix-data",
        "the training data or its channels look wrong: check the input data",
    ),
    (
        re.compile(r"AlgorithmError|ClientError|Traceback|Exception|exit code|ImportError|Error", re.I),
        "fix-code",
        "the training code or its configuration failed: fix it and retrain",
    ),
)
_BY_SECONDARY: dict[str, tuple[Action, str]] = {
    "MaxRuntimeExceeded": ("fix-code", "the job hit its MaxRuntimeInSeconds: raise it or make training faster"),
    "MaxWaitTimeExceeded": ("retry", "spot capacity did not arrive within MaxWaitTimeInSeconds: retry or raise it"),
    "Interrupted": ("retry", "the job was interrupted (spot reclaim): retry, ideally with checkpoints"),
}


class FailureSummary(BaseModel):
    action: Action
    advice: str
    subject: str
    message: str


def _by_reason(reason: str) -> tuple[Action, str]:
    for pattern, candidate, text in _CLASSIFICATION:
        if pattern.search(reason):
            return candidate, text
    return "investigate", "the failure reason does not say: read the job's logs"


def classify_failure(
    job_name: str, status: str, secondary_status: str | None, failure_reason: str | None
) -> FailureSummary:
    reason = (failure_reason or "").strip()
    if secondary_status in _BY_SECONDARY:
        action, advice = _BY_SECONDARY[secondary_status]
    elif status == "Stopped" and not reason:
        action, advice = "investigate", "the job was stopped before it completed: ask who stopped it"
    else:
        action, advice = _by_reason(reason)
    subject = ascii_line(
        f"Training job {status.lower()}: {job_name} - {action}: {reason or secondary_status or status}",
        SNS_SUBJECT_MAX,
    )
    message = "\n".join(
        [
            f"Training job: {job_name}",
            f"Status: {status} ({secondary_status or 'no secondary status'})",
            f"Failure reason: {reason or '(none given)'}",
            f"Suggested action: {action} - {advice}",
            "No model was inspected or registered.",
        ]
    )
    return FailureSummary(action=action, advice=advice, subject=subject, message=message)


def classify_tuning_failure(
    tuning_job_name: str, status: str, failure_reason: str | None, children: int, children_completed: int
) -> FailureSummary:
    """A tuning job that produced no model to judge: it failed, it was stopped before any training job
    completed with the objective, or every training job it launched failed."""
    reason = (failure_reason or "").strip()
    if status == "Failed":
        action, advice = _by_reason(reason) if reason else ("investigate", "read the tuning job's training jobs")
        what = reason or "no failure reason given"
    elif status == "Stopped":
        action, advice = "investigate", "the tuning job was stopped before any training job completed: ask who"
        what = "stopped before any training job completed with the objective metric"
    else:
        action, advice = "fix-code", "no training job reported the objective metric: check the jobs' logs and the regex"
        what = f"none of its {children} training jobs completed with the objective metric"
    subject = ascii_line(f"Tuning job {status.lower()}: {tuning_job_name} - {action}: {what}", SNS_SUBJECT_MAX)
    message = "\n".join(
        [
            f"Tuning job: {tuning_job_name}",
            f"Status: {status}",
            f"Training jobs: {children} launched, {children_completed} completed",
            f"Failure reason: {reason or '(none given)'}",
            f"What happened: {what}",
            f"Suggested action: {action} - {advice}",
            "No model was inspected or registered.",
        ]
    )
    return FailureSummary(action=action, advice=advice, subject=subject, message=message)
