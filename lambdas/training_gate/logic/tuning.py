"""DescribeTuningJob's use case: a tuning job, reduced to its status and its candidates.

The tuning job's state-change event names no best job; DescribeHyperParameterTuningJob does
(BestTrainingJob, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeHyperParameterTuningJob.html).
With more than one candidate asked for, the next ones come from ListTrainingJobsForHyperParameterTuningJob,
completed jobs in objective order."""

from __future__ import annotations

from training_gate.dal.sagemaker import TuningJobs, objective_of, parse_tuning_job
from training_gate.domain.contract import TuningContext

# A tuning job in these states may have a best job to judge.
JUDGEABLE = ("Completed", "Stopped")


def describe_tuning_job(tuning_job_name: str, candidates: int, jobs: TuningJobs) -> TuningContext:
    described = jobs.describe(tuning_job_name)
    ranked = []
    status = described["HyperParameterTuningJobStatus"]
    if status in JUDGEABLE and described.get("BestTrainingJob") and candidates > 1:
        _, kind = objective_of(described)
        best = described["BestTrainingJob"]
        kind = kind or (best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Type")
        # One more than needed: the best job is among them and is not counted twice.
        ranked = jobs.best_completed(tuning_job_name, kind, candidates + 1)
    return parse_tuning_job(described, ranked, candidates)
