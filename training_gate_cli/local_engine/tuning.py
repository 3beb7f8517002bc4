"""Hyperparameter tuning jobs as SageMaker runs them, for the emulated account.

moto 5.2.5's tuning job is a stub: Completed the moment it is created, a fake BestTrainingJob, no
training jobs, no tag propagation, no TuningJobArn on DescribeTrainingJob and no
ListTrainingJobsForHyperParameterTuningJob. This module emulates each after the API reference:

- CreateHyperParameterTuningJob: "Tags that you specify for the tuning job are also added to all
  training jobs that the tuning job launches"
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html).
  A child is named `<tuning job>-<3 digits>-<8 hex>`, as SageMaker names them.
- DescribeTrainingJob of a child carries TuningJobArn ("if the training job was launched by a
  hyperparameter tuning job"); a standalone job does not
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html).
- DescribeHyperParameterTuningJob: HyperParameterTuningJobStatus as scripted (InProgress, Stopping,
  then Completed, Failed or Stopped); TrainingJobStatusCounters and ObjectiveStatusCounters counted
  from the children; BestTrainingJob the completed child with the best objective for the objective's
  Type, absent while there is none; OverallBestTrainingJob only for a warm start, the best of this
  tuning job and its parents; FailureReason only when Failed
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeHyperParameterTuningJob.html).
- ListTrainingJobsForHyperParameterTuningJob: StatusEquals filters; SortBy Name (the default),
  CreationTime, Status or FinalObjectiveMetricValue ("any training jobs that did not return an
  objective metric are not listed"); SortOrder Ascending unless asked; MaxResults 1-100, 10 by
  default; NextToken pages; an unknown tuning job is ResourceNotFound
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListTrainingJobsForHyperParameterTuningJob.html).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from training_gate_cli.local_engine.constants import LocalEngineError

TERMINAL = ("Completed", "Failed", "Stopped")
LIST_DEFAULT = 10
LIST_MAX = 100


@dataclass
class EmulatedChild:
    """A training job a tuning job launched, with the objective the tuning job recorded for it."""

    name: str
    arn: str
    status: str
    definition_name: str | None = None
    objective_value: float | None = None
    objective_metric: str | None = None
    objective_type: str | None = None
    tuned_hyperparameters: dict[str, str] = field(default_factory=dict)
    failure_reason: str | None = None
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def summary(self, tuning_job_name: str) -> dict[str, Any]:
        """HyperParameterTrainingJobSummary."""
        found: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "TuningJobName": tuning_job_name,
            "CreationTime": self.created,
            "TrainingJobStatus": self.status,
            "TunedHyperParameters": dict(self.tuned_hyperparameters),
        }
        if self.definition_name:
            found["TrainingJobDefinitionName"] = self.definition_name
        if self.status != "InProgress":
            found["TrainingStartTime"] = self.created
            found["TrainingEndTime"] = self.created
        if self.failure_reason and self.status == "Failed":
            found["FailureReason"] = self.failure_reason
        if self.objective_value is not None:
            found["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": self.objective_type,
                "MetricName": self.objective_metric,
                "Value": self.objective_value,
            }
            found["ObjectiveStatus"] = "Succeeded"
        else:
            found["ObjectiveStatus"] = "Pending" if self.status == "InProgress" else "Failed"
        return found


@dataclass
class EmulatedTuningJob:
    name: str
    arn: str
    objective_metric: str | None
    objective_type: str | None
    statuses: list[str]
    final_status: str
    failure_reason: str | None = None
    children: list[EmulatedChild] = field(default_factory=list)
    # A warm start's parents' best training job (a HyperParameterTrainingJobSummary), if any.
    parent_best: dict[str, Any] | None = None
    polls: int = 0

    def status(self) -> str:
        return self.statuses[self.polls] if self.polls < len(self.statuses) else self.final_status

    def best(self) -> EmulatedChild | None:
        scored = [c for c in self.children if c.status == "Completed" and c.objective_value is not None]
        if not scored:
            return None
        return (min if self.objective_type == "Minimize" else max)(scored, key=lambda c: c.objective_value or 0.0)


def child_name(tuning_job_name: str, index: int) -> str:
    """`<tuning job>-<NNN>-<8 hex>`: how SageMaker names the training jobs of a tuning job."""
    digest = hashlib.sha256(f"{tuning_job_name}/{index}".encode()).hexdigest()[:8]
    return f"{tuning_job_name}-{index:03d}-{digest}"


class TuningEmulation:
    """Every emulated tuning job of the account, and which training job belongs to which."""

    def __init__(self) -> None:
        self.jobs: dict[str, EmulatedTuningJob] = {}
        self.parent_of: dict[str, str] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.jobs.clear()
            self.parent_of.clear()

    def register(self, job: EmulatedTuningJob) -> None:
        with self._lock:
            self.jobs[job.name] = job

    def add_child(self, tuning_job_name: str, child: EmulatedChild) -> None:
        with self._lock:
            self.jobs[tuning_job_name].children.append(child)
            self.parent_of[child.name] = tuning_job_name

    def tuning_job_arn_of(self, training_job_name: str) -> str | None:
        parent = self.parent_of.get(training_job_name)
        return self.jobs[parent].arn if parent else None

    # -- DescribeHyperParameterTuningJob ------------------------------------------------------------

    def describe(self, name: str, stub: dict[str, Any]) -> dict[str, Any]:
        """moto's answer (configuration, definitions, tags) with what SageMaker computes put right."""
        job = self.jobs.get(name)
        if job is None:
            return stub
        with self._lock:
            status = job.status()
            job.polls += 1
        described = {k: v for k, v in stub.items() if v is not None}
        for fake in ("BestTrainingJob", "OverallBestTrainingJob", "FailureReason", "TuningJobCompletionDetails"):
            described.pop(fake, None)
        described["HyperParameterTuningJobStatus"] = status
        if status not in TERMINAL:
            described.pop("HyperParameterTuningEndTime", None)
        children = job.children
        described["TrainingJobStatusCounters"] = {
            "Completed": sum(c.status == "Completed" for c in children),
            "InProgress": sum(c.status in ("InProgress", "Stopping") for c in children),
            "RetryableError": 0,
            "NonRetryableError": sum(c.status == "Failed" for c in children),
            "Stopped": sum(c.status == "Stopped" for c in children),
        }
        described["ObjectiveStatusCounters"] = {
            "Succeeded": sum(c.objective_value is not None for c in children),
            "Pending": sum(c.status in ("InProgress", "Stopping") for c in children),
            "Failed": sum(c.objective_value is None and c.status not in ("InProgress", "Stopping") for c in children),
        }
        best = job.best()
        if best is not None:
            described["BestTrainingJob"] = best.summary(name)
        if stub.get("WarmStartConfig"):
            candidates = [s for s in (described.get("BestTrainingJob"), job.parent_best) if s]
            if candidates:
                pick = min if job.objective_type == "Minimize" else max
                described["OverallBestTrainingJob"] = pick(
                    candidates, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
                )
        if status == "Failed" and job.failure_reason:
            described["FailureReason"] = job.failure_reason
        return described

    # -- ListTrainingJobsForHyperParameterTuningJob -------------------------------------------------

    def list_children(self, params: dict[str, Any], not_found: type[Exception]) -> dict[str, Any]:
        name = params.get("HyperParameterTuningJobName")
        job = self.jobs.get(name or "")
        if job is None:
            raise not_found(message=f"Amazon SageMaker can't find a tuning job with name {name}")  # type: ignore[call-arg]
        children = list(job.children)
        wanted = params.get("StatusEquals")
        if wanted:
            children = [c for c in children if c.status == wanted]
        sort_by = params.get("SortBy") or "Name"
        descending = params.get("SortOrder") == "Descending"
        if sort_by == "FinalObjectiveMetricValue":
            children = [c for c in children if c.objective_value is not None]
            children.sort(key=lambda c: c.objective_value or 0.0, reverse=descending)
        elif sort_by == "CreationTime":
            children.sort(key=lambda c: (c.created, c.name), reverse=descending)
        elif sort_by == "Status":
            children.sort(key=lambda c: c.status, reverse=descending)
        elif sort_by == "Name":
            children.sort(key=lambda c: c.name, reverse=descending)
        else:
            raise LocalEngineError(f"SortBy {sort_by} is not one AWS accepts (strict mode refuses it first)")
        size = int(params.get("MaxResults") or LIST_DEFAULT)
        if not 1 <= size <= LIST_MAX:
            raise LocalEngineError(f"MaxResults {size} is outside 1-{LIST_MAX} (strict mode refuses it first)")
        start = int(params.get("NextToken") or 0)
        page = children[start : start + size]
        answer: dict[str, Any] = {"TrainingJobSummaries": [c.summary(job.name) for c in page]}
        if start + size < len(children):
            answer["NextToken"] = str(start + size)
        return answer
