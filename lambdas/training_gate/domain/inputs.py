"""The execution input, validated before any AWS call, and the limits it must respect."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from training_gate.constants import (
    TRAINING_JOB_NAME_MAX,
    TRAINING_JOB_NAME_PATTERN,
    TUNING_CANDIDATES_MAX,
    TUNING_DECISION_PREFIX,
    TUNING_JOB_NAME_MAX,
    TUNING_JOB_NAME_PATTERN,
)
from training_gate.domain.pipeline import PipelineCallback

# Step Functions quotas (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html):
# an execution's history holds at most 25,000 events, and the ASL sets TimeoutSeconds to 48 h.
HISTORY_EVENTS_MAX = 25_000
# One poll (DescribeTrainingJob task, the status Choice, the Wait and the counting Pass) writes 11
# history events; everything else an execution does stays well under the reserve.
HISTORY_EVENTS_PER_POLL = 11
HISTORY_EVENTS_RESERVED = 1_000
MAX_POLLS_LIMIT = (HISTORY_EVENTS_MAX - HISTORY_EVENTS_RESERVED) // HISTORY_EVENTS_PER_POLL
EXECUTION_TIMEOUT_SECONDS = 48 * 3600
# Inspection, metrics and registration must still fit after the last poll.
POLLING_TIME_RESERVED_SECONDS = 3600
POLL_INTERVAL_MAX = 3600
POLICY_OVERRIDES_MAX_BYTES = 8 * 1024


def polling_problems(poll_interval_seconds: int, max_polls: int) -> list[str]:
    """Why a polling setting could never finish on Step Functions, or [] when it can."""
    problems = []
    if max_polls > MAX_POLLS_LIMIT:
        problems.append(
            f"max_polls {max_polls} would pass Step Functions' {HISTORY_EVENTS_MAX:,}-event execution history "
            f"({HISTORY_EVENTS_PER_POLL} events a poll): at most {MAX_POLLS_LIMIT}"
        )
    budget = EXECUTION_TIMEOUT_SECONDS - POLLING_TIME_RESERVED_SECONDS
    if poll_interval_seconds * max_polls > budget:
        problems.append(
            f"max_polls x poll_interval_seconds = {poll_interval_seconds * max_polls} s would pass the execution's "
            f"48 h timeout: at most {budget} s of polling"
        )
    return problems


def tuning_decision_key(tuning_job_name: str) -> str:
    """The decision table's key for a tuning job's decision: never a training job's name."""
    return TUNING_DECISION_PREFIX + tuning_job_name


class GateInput(BaseModel):
    """What an EventBridge rule target or a person in the console passes to the state machine.

    The input names the job `TrainingJobName`, or a tuning job `HyperParameterTuningJobName` (the
    public contract); inside the gate they are `training_job_name` and `tuning_job_name`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    training_job_name: Annotated[
        str | None,
        Field(alias="TrainingJobName", pattern=TRAINING_JOB_NAME_PATTERN, max_length=TRAINING_JOB_NAME_MAX),
    ] = None
    tuning_job_name: Annotated[
        str | None,
        Field(alias="HyperParameterTuningJobName", pattern=TUNING_JOB_NAME_PATTERN, max_length=TUNING_JOB_NAME_MAX),
    ] = None
    poll_interval_seconds: Annotated[StrictInt, Field(ge=0, le=POLL_INTERVAL_MAX)]
    max_polls: Annotated[StrictInt, Field(ge=1, le=MAX_POLLS_LIMIT)]
    tuning_candidates: Annotated[
        StrictInt,
        Field(
            ge=1,
            le=TUNING_CANDIDATES_MAX,
            description="a tuning job's completed training jobs judged, best first, before it is rejected",
        ),
    ] = 1
    gate_tuning_children: Annotated[
        StrictBool, Field(description="judge a training job a tuning job launched on its own, not with its tuning job")
    ] = False
    dry_run: StrictBool = False
    policy_overrides: Annotated[
        dict[str, Any] | None, Field(description="merged over the effective policy for this execution only")
    ] = None
    # Set by the EventBridge rule from the event: the account and region the job ended in.
    source_account: Annotated[str | None, Field(pattern=r"^\d{12}$")] = None
    source_region: Annotated[str | None, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")] = None
    # Set by the pipeline bridge: the SageMaker pipeline step that waits for this decision.
    pipeline_callback: PipelineCallback | None = None

    @model_validator(mode="after")
    def _polling_fits(self) -> GateInput:
        problems = polling_problems(self.poll_interval_seconds, self.max_polls)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _one_job(self) -> GateInput:
        if (self.training_job_name is None) == (self.tuning_job_name is None):
            raise ValueError(
                "name exactly one job: TrainingJobName (a training job) or HyperParameterTuningJobName (a tuning job)"
            )
        return self

    @model_validator(mode="after")
    def _a_pipeline_waits_for_a_decision(self) -> GateInput:
        if self.pipeline_callback is not None and self.dry_run:
            raise ValueError(
                "dry_run: a dry run records no decision, and a pipeline waits for one (drop dry_run or "
                "pipeline_callback)"
            )
        return self

    @property
    def decision_key(self) -> str:
        """The decision table's partition key for what this execution judges."""
        if self.tuning_job_name is not None:
            return tuning_decision_key(self.tuning_job_name)
        return self.training_job_name or ""

    @property
    def job_label(self) -> str:
        """How people read the job this execution judges."""
        if self.tuning_job_name is not None:
            return f"tuning job {self.tuning_job_name}"
        return f"training job {self.training_job_name}"


def field_problems(exc: Exception, prefix: str | None = None) -> str:
    """`field.path: message; ...` for each offending field of a pydantic ValidationError."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for error in errors():
        where = ".".join(str(p) for p in (prefix, *error.get("loc", ())) if p is not None) or "input"
        parts.append(f"{where}: {error.get('msg')}")
    return "; ".join(parts)


def describe_validation_error(exc: Exception, prefix: str | None = None) -> str:
    """One line naming each offending field, for the GateError cause a person will read."""
    return "invalid execution input: " + field_problems(exc, prefix)
