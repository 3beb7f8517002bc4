"""Decide, write the report, and claim the decision (or find who already carries it out)."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.s3 import ArtifactStore
from training_gate.dal.sagemaker import ModelRegistry, TrainingJobs
from training_gate.dal.ssm import stored_policy
from training_gate.dal.stepfunctions import Executions
from training_gate.domain.contract import Claim
from training_gate.handlers.environment import EvaluatePolicyEnvironment, environment
from training_gate.handlers.observability import (
    JOB_NAME_PATH,
    logger,
    metrics,
    publish_metric_values,
    trace_aws_calls,
    tracer,
)
from training_gate.logic.evaluate import EvaluatePorts, EvaluateRequest, GateSettings, evaluate_execution

trace_aws_calls()


def gate_settings(env: EvaluatePolicyEnvironment) -> GateSettings:
    return GateSettings(
        default_policy=env.GATE_POLICY,
        default_group=env.MODEL_PACKAGE_GROUP,
        allowed_groups=env.MODEL_PACKAGE_GROUPS,
        reports_bucket=env.REPORTS_BUCKET,
        policy_parameter_prefix=env.POLICY_PARAMETER_PREFIX,
    )


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=EvaluateRequest)
    env = environment(EvaluatePolicyEnvironment)
    ports = EvaluatePorts(
        store=ArtifactStore(),
        registry=ModelRegistry(),
        jobs=TrainingJobs(),
        load_stored=functools.partial(stored_policy, prefix=env.POLICY_PARAMETER_PREFIX),
        log=DecisionLog(env.DECISION_TABLE),
        executions=Executions(),
    )
    result = evaluate_execution(request, gate_settings(env), ports)
    if result.claim == Claim.OWNER and not result.resumed:
        # Counted once per decision: a duplicate delivery or a resumed decision was counted already.
        metrics.add_metric(name=f"Decisions_{result.outcome.value}", unit=MetricUnit.Count, value=1)
        for code in result.reason_codes:
            metrics.add_metric(name=f"Reason_{code.value}", unit=MetricUnit.Count, value=1)
        publish_metric_values(result.model_package_group, result.observed_values)
    logger.info("decision", extra={"outcome": result.outcome.value, "claim": result.claim.value})
    return result.model_dump(mode="json")
