"""Per-group policies stored in SSM Parameter Store."""

from __future__ import annotations

import json
from typing import Any

from training_gate.constants import POLICY_PARAMETER_PREFIX
from training_gate.dal.clients import ClientError, error_code

POLICY_CACHE_SECONDS = 300


def stored_policy(group: str, prefix: str = POLICY_PARAMETER_PREFIX) -> dict[str, Any] | None:
    """The group's stored policy (JSON), cached for minutes; None when there is none."""
    from aws_lambda_powertools.utilities import parameters

    try:
        document = parameters.get_parameter(f"{prefix}{group}", max_age=POLICY_CACHE_SECONDS)
    except parameters.exceptions.GetParameterError as exc:
        # Powertools wraps the ClientError without `from`: the original is the exception's context.
        original = exc.__context__
        if isinstance(original, ClientError) and error_code(original) == "ParameterNotFound":
            return None
        raise
    try:
        parsed = json.loads(str(document))
    except json.JSONDecodeError as exc:
        raise ValueError(f"policy parameter {prefix}{group} is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"policy parameter {prefix}{group} must hold a JSON object")
    return parsed
