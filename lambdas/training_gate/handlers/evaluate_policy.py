"""Apply the policy, write the report, prepare the registration request and the notification."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.aws import ArtifactStore
from training_gate.domain.policy import Policy
from training_gate.handlers.observability import JOB_NAME_PATH, logger, metrics, tracer
from training_gate.logic.evaluate import EvaluateInput, evaluate


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=EvaluateInput)
    policy = Policy.model_validate(json.loads(os.environ["GATE_POLICY"]))
    result = evaluate(
        request,
        policy=policy,
        group=os.environ["MODEL_PACKAGE_GROUP"],
        store=ArtifactStore(),
        reports_bucket=os.environ["REPORTS_BUCKET"],
    )
    # One metric per outcome rather than a dimension: dimensions outlive a warm invocation's flush.
    metrics.add_metric(name=f"Decisions_{result.outcome.value}", unit=MetricUnit.Count, value=1)
    for code in result.decision.reason_codes:
        metrics.add_metric(name=f"Reason_{code.value}", unit=MetricUnit.Count, value=1)
    logger.info("decision", extra={"outcome": result.outcome.value, "reasons": result.decision.reasons})
    return result.model_dump(mode="json")
