"""DescribeTrainingJob's use case: the job, parsed once into what the workflow carries."""

from __future__ import annotations

from training_gate.dal.sagemaker import TrainingJobs
from training_gate.domain.contract import TrainingJob


def describe_training_job(training_job_name: str, jobs: TrainingJobs) -> TrainingJob:
    return jobs.describe(training_job_name).job
