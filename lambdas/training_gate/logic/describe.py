"""DescribeTrainingJob's use case: the job, parsed once into what the workflow carries."""

from __future__ import annotations

from collections.abc import Sequence

from training_gate.dal.sagemaker import TrainingJobs
from training_gate.domain.contract import TrainingJob
from training_gate.domain.scope import judged_with_tuning_job


def describe_training_job(
    training_job_name: str, jobs: TrainingJobs, job_name_prefixes: Sequence[str] = ()
) -> TrainingJob:
    job = jobs.describe(training_job_name).job
    judged = judged_with_tuning_job(job.training_job_name, job.tuning_job_arn, job_name_prefixes)
    return job.model_copy(update={"judged_with_tuning_job": judged})
