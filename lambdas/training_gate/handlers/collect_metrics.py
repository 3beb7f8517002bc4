"""Collect the job's metrics (FinalMetricDataList, its CloudWatch logs through its MetricDefinitions,
evaluation files); the full result goes to S3, a summary to the state."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from training_gate.dal.cloudwatch import TrainingJobMetrics
from training_gate.dal.logs import TrainingLogs
from training_gate.dal.s3 import ArtifactStore
from training_gate.dal.sagemaker import TrainingJobs
from training_gate.domain.contract import TrainingJob
from training_gate.handlers.environment import CollectMetricsEnvironment, environment
from training_gate.handlers.observability import JOB_NAME_PATH, logger, metrics, trace_aws_calls, tracer
from training_gate.logic.collect import collect_metrics

trace_aws_calls()


class CollectInput(BaseModel):
    job: TrainingJob
    execution_name: str


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path=JOB_NAME_PATH)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=CollectInput)
    env = environment(CollectMetricsEnvironment)
    logs = TrainingLogs(log_group=env.TRAINING_LOG_GROUP)
    summary = collect_metrics(
        request.job,
        TrainingJobs(),
        logs,
        ArtifactStore(),
        env.REPORTS_BUCKET,
        request.execution_name,
        TrainingJobMetrics() if env.READ_CLOUDWATCH_METRICS else None,
    )
    metrics.add_metric(name="LogStreamsRead", unit=MetricUnit.Count, value=summary.log_streams)
    logger.info("metrics collected", extra={"metrics": summary.metric_names, "log_api_calls": logs.api_calls})
    return summary.model_dump(mode="json")
