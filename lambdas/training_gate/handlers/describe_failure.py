"""A Failed/Stopped job (training or tuning): the notice that says what to do next, claimed once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.stepfunctions import Executions
from training_gate.domain.contract import Claim
from training_gate.handlers.environment import DescribeFailureEnvironment, environment
from training_gate.handlers.observability import logger, metrics, trace_aws_calls, tracer
from training_gate.logic.failure import DescribeFailureRequest, FailurePorts, describe_failure

trace_aws_calls()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path="job.training_job_name || tuning.tuning_job_name")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=DescribeFailureRequest)
    env = environment(DescribeFailureEnvironment)
    notice = describe_failure(request, FailurePorts(log=DecisionLog(env.DECISION_TABLE), executions=Executions()))
    if notice.claim == Claim.OWNER and not notice.resumed:
        metrics.add_metric(name=f"TrainingJobsFailed_{notice.action}", unit=MetricUnit.Count, value=1)
    logger.info("failure", extra={"action": notice.action, "claim": notice.claim.value})
    return notice.model_dump(mode="json")
