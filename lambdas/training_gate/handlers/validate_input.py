"""First state: validate the execution input and fill in defaults from the function's settings."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.handlers.environment import ValidateInputEnvironment, environment
from training_gate.handlers.observability import logger, tracer
from training_gate.logic.validate import InputDefaults, InvalidInput, validate_input

__all__ = ["InvalidInput", "handler"]


def defaults(context: LambdaContext | None) -> InputDefaults:
    env = environment(ValidateInputEnvironment)
    # The function's own ARN says which account and region the gate runs in.
    arn = getattr(context, "invoked_function_arn", "") or ""
    parts = arn.split(":")
    return InputDefaults(
        poll_interval_seconds=env.DEFAULT_POLL_INTERVAL_SECONDS,
        max_polls=env.DEFAULT_MAX_POLLS,
        tuning_candidates=env.DEFAULT_TUNING_CANDIDATES,
        gate_tuning_children=env.GATE_TUNING_CHILDREN,
        fail_step_on_reject=env.FAIL_STEP_ON_REJECT,
        policy=env.GATE_POLICY,
        allowed_groups=env.MODEL_PACKAGE_GROUPS,
        region=parts[3] if len(parts) > 4 and parts[3] else None,
        account=parts[4] if len(parts) > 4 and parts[4] else None,
    )


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path="TrainingJobName || HyperParameterTuningJobName")
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return validate_input(event, defaults(context)).model_dump(mode="json")
