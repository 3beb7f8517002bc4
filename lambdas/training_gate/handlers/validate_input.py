"""First state: validate the execution input and fill in defaults from the function's settings."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from training_gate.domain.inputs import GateInput, describe_validation_error
from training_gate.domain.policy import Policy
from training_gate.handlers.observability import logger, tracer


class InvalidInput(Exception):
    """The execution input is malformed; the message names every offending field."""


def validate(event: Any, environ: dict[str, str] | os._Environ[str] = os.environ) -> GateInput:
    if not isinstance(event, dict):
        raise InvalidInput(f"invalid execution input: expected a JSON object, got {type(event).__name__}")
    merged = {
        "poll_interval_seconds": int(environ.get("DEFAULT_POLL_INTERVAL_SECONDS", "60")),
        "max_polls": int(environ.get("DEFAULT_MAX_POLLS", "720")),
        **event,
    }
    try:
        validated = GateInput.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc)) from exc
    if validated.policy_overrides:
        # Checked against the shipped policy now, before any AWS call; the same schema applies to
        # a group's stored policy, which the evaluation merges the overrides into later.
        try:
            Policy.model_validate(json.loads(environ["GATE_POLICY"])).with_overrides(validated.policy_overrides)
        except ValidationError as exc:
            raise InvalidInput(describe_validation_error(exc, prefix="policy_overrides")) from exc
    return validated


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path="TrainingJobName")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return validate(event).model_dump(mode="json")
