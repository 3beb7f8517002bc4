"""Collect the job's metrics (FinalMetricDataList + CloudWatch logs through its MetricDefinitions)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from training_gate.dal.aws import TRAINING_LOG_GROUP, ArtifactStore, TrainingJobMetrics, TrainingLogs
from training_gate.handlers.observability import JOB_NAME_PATH, logger, metrics, trace_aws_calls, tracer
from training_gate.logic.collect import collect_job_metrics

trace_aws_calls()


class CollectInput(BaseModel):
    job: dict[str, Any]


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=CollectInput)
    logs = TrainingLogs(log_group=os.environ.get("TRAINING_LOG_GROUP", TRAINING_LOG_GROUP))
    cloudwatch = TrainingJobMetrics() if os.environ.get("READ_CLOUDWATCH_METRICS") == "true" else None
    result = collect_job_metrics(request.job, logs, ArtifactStore(), cloudwatch)
    metrics.add_metric(name="LogStreamsRead", unit=MetricUnit.Count, value=result.log_streams)
    logger.info("metrics collected", extra={"metrics": sorted(result.metrics), "log_api_calls": logs.api_calls})
    return result.model_dump(mode="json")
