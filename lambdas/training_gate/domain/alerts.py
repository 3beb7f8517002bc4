"""What operations read when an execution ends in a way no owner was told about. Pure."""

from __future__ import annotations

import json
from urllib.parse import quote

from pydantic import BaseModel

from training_gate.domain.contract import Notification
from training_gate.domain.inputs import tuning_decision_key
from training_gate.domain.report import SNS_SUBJECT_MAX, ascii_line

# Outcomes the workflow itself reports to the model's owners: operations need not hear of them.
DESIGNED_OUTCOMES = frozenset({"ModelRejected", "ModelInconclusive", "TrainingJobFailed", "TuningJobFailed"})
# SNS takes at most 256 KiB a message (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html);
# the cause and the input to re-run are budgeted so the whole alert stays far inside it.
CAUSE_MAX_BYTES = 32 * 1024
RERUN_INPUT_MAX_BYTES = 16 * 1024


class FailedExecution(BaseModel):
    execution_arn: str
    state_machine_arn: str | None = None
    status: str
    error: str | None = None
    cause: str | None = None
    input: str | None = None


def needs_operations(execution: FailedExecution) -> bool:
    """Everything but a designed outcome: gate errors, a notification that could not be sent, data
    limits, runtime errors, timeouts and aborts (which carry no error at all)."""
    if execution.status == "FAILED" and execution.error in DESIGNED_OUTCOMES:
        return False
    return execution.status in ("FAILED", "TIMED_OUT", "ABORTED")


def _input_field(execution_input: str | None, field: str) -> str | None:
    try:
        parsed = json.loads(execution_input or "")
    except json.JSONDecodeError:
        return None
    name = parsed.get(field) if isinstance(parsed, dict) else None
    return name if isinstance(name, str) else None


def job_name_of(execution_input: str | None) -> str | None:
    """The job the execution judged: a training job's name, or a tuning job's."""
    return _input_field(execution_input, "TrainingJobName") or _input_field(
        execution_input, "HyperParameterTuningJobName"
    )


def decision_key_of(execution_input: str | None) -> str | None:
    """The decision table key of what the execution judged (see GateInput.decision_key)."""
    tuning = _input_field(execution_input, "HyperParameterTuningJobName")
    if tuning:
        return tuning_decision_key(tuning)
    return _input_field(execution_input, "TrainingJobName")


def ending_of(execution: FailedExecution) -> str:
    """The error an execution ended with; a timeout or an abort carries none, so it is named for it."""
    return execution.error or {"TIMED_OUT": "States.Timeout", "ABORTED": "Aborted"}.get(execution.status, "unknown")


def _clip(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode(errors="ignore") + " [cut: the whole cause is on the execution's page]"


def execution_console_link(execution_arn: str) -> str:
    parts = execution_arn.split(":")
    region = parts[3] if len(parts) > 3 and parts[3] else "us-east-1"
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/"
        f"{quote(execution_arn, safe='')}"
    )


def operations_alert(execution: FailedExecution, note: str | None = None) -> Notification:
    job = job_name_of(execution.input)
    error = ending_of(execution)
    subject = ascii_line(f"training-gate {execution.status.lower()}: {error} - {job or 'no job name'}", SNS_SUBJECT_MAX)
    cause = _clip(execution.cause or "(no cause given)", CAUSE_MAX_BYTES)
    rerun = execution.input if job else json.dumps({"TrainingJobName": "<the training job's name>"})
    if rerun and len(rerun.encode()) > RERUN_INPUT_MAX_BYTES:
        # A large input (its policy_overrides, say) is in the execution's own page; the job is enough here.
        rerun = json.dumps({"TrainingJobName": job}) + "  (the full input is on the execution's page)"
    lines = [
        f"A training-gate execution ended {execution.status} and no model owner was told.",
        f"Training job: {job or '(the input names none)'}",
        f"Error: {error}",
        f"Cause: {cause}",
        "",
        f"Execution: {execution_console_link(execution.execution_arn)}",
        "",
        "Fix the cause, then re-run the gate for this job: start a new execution of",
        f"{execution.state_machine_arn or 'the training-gate state machine'} with this input:",
        rerun or "{}",
        "An unfinished decision is taken over by the re-run; nothing is registered or notified twice.",
    ]
    if note:
        lines += ["", note]
    return Notification.model_construct(subject=subject, message="\n".join(lines))
