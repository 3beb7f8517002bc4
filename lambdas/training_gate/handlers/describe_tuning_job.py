"""Read a tuning job: its status, its objective and its candidates, best first; never the raw response."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from training_gate.constants import TUNING_CANDIDATES_MAX
from training_gate.dal.sagemaker import TuningJobs
from training_gate.handlers.observability import logger, trace_aws_calls, tracer
from training_gate.logic.tuning import describe_tuning_job

trace_aws_calls()


class DescribeTuningInput(BaseModel):
    tuning_job_name: str
    candidates: Annotated[int, Field(ge=1, le=TUNING_CANDIDATES_MAX)] = 1


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path="tuning_job_name")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=DescribeTuningInput)
    tuning = describe_tuning_job(request.tuning_job_name, request.candidates, TuningJobs())
    logger.info("tuning job", extra={"status": tuning.status, "candidates": len(tuning.candidates)})
    return tuning.model_dump(mode="json")
