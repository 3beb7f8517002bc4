"""Turn a Failed/Stopped training job into a notification that says what to do next."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from training_gate.domain.contract import TrainingJob
from training_gate.domain.failure import classify_failure
from training_gate.handlers.observability import JOB_NAME_PATH, logger, metrics, tracer


class DescribeFailureInput(BaseModel):
    job: TrainingJob


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = parse(event=event, model=DescribeFailureInput).job
    summary = classify_failure(job.training_job_name, job.status, job.secondary_status, job.failure_reason)
    metrics.add_metric(name=f"TrainingJobsFailed_{summary.action}", unit=MetricUnit.Count, value=1)
    return summary.model_dump(mode="json")
