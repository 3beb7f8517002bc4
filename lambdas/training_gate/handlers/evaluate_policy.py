"""Apply the policy, write the report, prepare the registration request and the notification."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.aws import (
    POLICY_PARAMETER_PREFIX,
    ArtifactStore,
    DecisionEvents,
    DecisionLog,
    ModelRegistry,
    stored_policy,
)
from training_gate.domain.policy import Policy
from training_gate.handlers.observability import (
    JOB_NAME_PATH,
    logger,
    metrics,
    publish_metric_values,
    trace_aws_calls,
    tracer,
)
from training_gate.logic.evaluate import EvaluateInput, GateSettings, evaluate

trace_aws_calls()


def load_settings(environ: dict[str, str] | os._Environ[str] = os.environ) -> GateSettings:
    group = environ["MODEL_PACKAGE_GROUP"]
    return GateSettings(
        default_policy=Policy.model_validate(json.loads(environ["GATE_POLICY"])),
        default_group=group,
        allowed_groups=[g for g in environ.get("MODEL_PACKAGE_GROUPS", group).split(",") if g],
        reports_bucket=environ["REPORTS_BUCKET"],
        policy_parameter_prefix=environ.get("POLICY_PARAMETER_PREFIX", POLICY_PARAMETER_PREFIX),
        inference=json.loads(environ.get("INFERENCE_CONFIG", "{}")),
    )


def stored_policy_loader(environ: dict[str, str] | os._Environ[str] = os.environ) -> Callable[[str], Any]:
    prefix = environ.get("POLICY_PARAMETER_PREFIX", POLICY_PARAMETER_PREFIX)
    return functools.partial(stored_policy, prefix=prefix)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=EvaluateInput)
    result = evaluate(
        request,
        load_settings(),
        ArtifactStore(),
        ModelRegistry(),
        stored_policy_loader(),
        DecisionLog(os.environ["DECISION_TABLE"]),
        DecisionEvents(),
    )
    # One metric per outcome rather than a dimension: dimensions outlive a warm invocation's flush.
    metrics.add_metric(name=f"Decisions_{result.outcome.value}", unit=MetricUnit.Count, value=1)
    for code in result.decision.reason_codes:
        metrics.add_metric(name=f"Reason_{code.value}", unit=MetricUnit.Count, value=1)
    if result.duplicate_of is None:  # a duplicate delivery would count the same job's values twice
        publish_metric_values(result.model_package_group, result.decision.observed_values())
    logger.info("decision", extra={"outcome": result.outcome.value, "reasons": result.decision.reasons})
    return result.model_dump(mode="json")
