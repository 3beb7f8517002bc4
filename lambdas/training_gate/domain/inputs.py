"""The execution input, validated before any AWS call."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# SageMaker's own rule for training job names.
TRAINING_JOB_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"


class GateInput(BaseModel):
    """What an EventBridge rule target or a person in the console passes to the state machine."""

    model_config = ConfigDict(extra="forbid")

    TrainingJobName: Annotated[str, Field(pattern=TRAINING_JOB_NAME_PATTERN, max_length=63)]
    poll_interval_seconds: Annotated[int, Field(ge=0, le=3600)]
    max_polls: Annotated[int, Field(ge=1, le=10_000)]
    dry_run: bool = False
    policy_overrides: Annotated[
        dict[str, Any] | None, Field(description="merged over the effective policy for this execution only")
    ] = None


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
