"""Read the training job: status, artifact, what the later states use; never the raw response."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from training_gate.dal.sagemaker import TrainingJobs
from training_gate.handlers.environment import DescribeTrainingJobEnvironment, PrefixScopeEnvironment, environment
from training_gate.handlers.observability import logger, trace_aws_calls, tracer
from training_gate.logic.describe import describe_training_job

trace_aws_calls()


class DescribeInput(BaseModel):
    training_job_name: str


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path="training_job_name")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=DescribeInput)
    scoped = environment(DescribeTrainingJobEnvironment).SCOPED_BY_PREFIX
    prefixes = environment(PrefixScopeEnvironment).JOB_NAME_PREFIXES if scoped else []
    job = describe_training_job(request.training_job_name, TrainingJobs(), prefixes)
    return job.model_dump(mode="json")
