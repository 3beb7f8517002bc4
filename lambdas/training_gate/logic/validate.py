"""ValidateInput's use case: the execution input, checked before any AWS call."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from training_gate.domain.inputs import POLICY_OVERRIDES_MAX_BYTES, GateInput, describe_validation_error
from training_gate.domain.policy import Policy


class InvalidInput(Exception):
    """The execution input is malformed; the message names every offending field."""


class InputDefaults(BaseModel):
    """What ValidateInput's environment provides: defaults and the limits an input must respect."""

    poll_interval_seconds: int
    max_polls: int
    tuning_candidates: int = 1
    gate_tuning_children: bool = False
    fail_step_on_reject: bool = False
    policy: Policy
    allowed_groups: list[str]
    account: str | None = None
    region: str | None = None


def validate_input(event: Any, defaults: InputDefaults) -> GateInput:
    if not isinstance(event, dict):
        raise InvalidInput(f"invalid execution input: expected a JSON object, got {type(event).__name__}")
    if "TrainingJobName" not in event and "HyperParameterTuningJobName" not in event:
        raise InvalidInput(
            "invalid execution input: TrainingJobName: Field required (or HyperParameterTuningJobName, to judge a "
            "tuning job by its best training jobs)"
        )
    merged = {
        "poll_interval_seconds": defaults.poll_interval_seconds,
        "max_polls": defaults.max_polls,
        "tuning_candidates": defaults.tuning_candidates,
        "gate_tuning_children": defaults.gate_tuning_children,
        **event,
    }
    try:
        validated = GateInput.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc)) from exc
    callback = validated.pipeline_callback
    if callback is not None and callback.fail_step_on_reject is None:
        # Fixed here, once: every execution that answers this token answers it the same way.
        validated.pipeline_callback = callback.model_copy(update={"fail_step_on_reject": defaults.fail_step_on_reject})
    # A forwarded event from another account or region names a job that is not this account's:
    # judging a same-named local job would be judging the wrong model.
    for field, expected in (("source_account", defaults.account), ("source_region", defaults.region)):
        given = getattr(validated, field)
        if given is not None and expected is not None and given != expected:
            raise InvalidInput(
                f"invalid execution input: {field} {given} is not the gate's own ({expected}); the gate judges "
                "only jobs of its own account and region"
            )
    if validated.policy_overrides:
        size = len(json.dumps(validated.policy_overrides))
        if size > POLICY_OVERRIDES_MAX_BYTES:
            raise InvalidInput(
                f"invalid execution input: policy_overrides is {size} bytes; at most {POLICY_OVERRIDES_MAX_BYTES} "
                "(store a larger policy for the group instead)"
            )
        # Checked against the shipped policy now, before any AWS call; the same schema applies to
        # a group's stored policy, which the evaluation merges the overrides into later.
        try:
            effective = defaults.policy.with_overrides(validated.policy_overrides)
        except ValidationError as exc:
            raise InvalidInput(describe_validation_error(exc, prefix="policy_overrides")) from exc
        group = effective.outcome.model_package_group
        if group is not None and group not in defaults.allowed_groups:
            raise InvalidInput(
                f"invalid execution input: policy_overrides.outcome.model_package_group {group!r} is not one the "
                f"gate may register in ({', '.join(sorted(defaults.allowed_groups))})"
            )
    return validated
