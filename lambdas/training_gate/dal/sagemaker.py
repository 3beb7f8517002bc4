"""SageMaker: training jobs the gate judges, and the Model Registry it writes to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from training_gate.dal.clients import ClientError, client, error_code, error_message
from training_gate.domain.contract import (
    FAILURE_REASON_MAX,
    DescribedJob,
    FinalMetric,
    JobMetricSources,
    MetricDefinition,
    TrainingJob,
    TuningCandidate,
    TuningContext,
)


class TrainingJobNotFound(Exception):
    """DescribeTrainingJob does not know the job (a typo in a console execution, or another account)."""


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value is not None else None


def parse_training_job(described: dict[str, Any]) -> DescribedJob:
    """DescribeTrainingJob's response, parsed once into what the gate uses."""
    spec = described.get("AlgorithmSpecification") or {}
    output = described.get("OutputDataConfig") or {}
    job = TrainingJob(
        training_job_name=described["TrainingJobName"],
        training_job_arn=described["TrainingJobArn"],
        status=described["TrainingJobStatus"],
        secondary_status=described.get("SecondaryStatus"),
        failure_reason=(described.get("FailureReason") or None) and described["FailureReason"][:FAILURE_REASON_MAX],
        model_artifact=(described.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        compression_type="NONE" if output.get("CompressionType") == "NONE" else "GZIP",
        output_path=output.get("S3OutputPath"),
        training_image=spec.get("TrainingImage"),
        output_model_package_arn=described.get("OutputModelPackageArn"),
        # Set "if the training job was launched by a hyperparameter tuning job"; the job's state-change
        # event does not say so (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html).
        tuning_job_arn=described.get("TuningJobArn"),
        creation_time=_iso(described.get("CreationTime")),
        training_start_time=_iso(described.get("TrainingStartTime")),
        training_end_time=_iso(described.get("TrainingEndTime")),
    )
    sources = JobMetricSources(
        metric_definitions=[
            MetricDefinition(Name=d.get("Name", ""), Regex=d.get("Regex", ""))
            for d in spec.get("MetricDefinitions") or []
        ],
        final_metrics=[
            FinalMetric(MetricName=m["MetricName"], Value=m.get("Value"))
            for m in described.get("FinalMetricDataList") or []
            if "MetricName" in m
        ],
    )
    return DescribedJob(job=job, sources=sources)


class TuningJobNotFound(Exception):
    """DescribeHyperParameterTuningJob does not know the tuning job."""


def _candidate(summary: dict[str, Any]) -> TuningCandidate:
    """A HyperParameterTrainingJobSummary (BestTrainingJob, or an entry of
    ListTrainingJobsForHyperParameterTuningJob's TrainingJobSummaries)."""
    objective = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    kind = objective.get("Type")
    return TuningCandidate(
        training_job_name=summary["TrainingJobName"],
        definition_name=summary.get("TrainingJobDefinitionName"),
        objective_metric=objective.get("MetricName"),
        objective_value=objective.get("Value"),
        objective_type=kind if kind in ("Maximize", "Minimize") else None,
    )


def objective_of(described: dict[str, Any]) -> tuple[str | None, str | None]:
    """(MetricName, Type) of the tuning objective: the job's HyperParameterTuningJobObjective, or, for
    a tuning job of several training definitions that each carry their own TuningObjective, the
    first definition's (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
    API_HyperParameterTrainingJobDefinition.html, TuningObjective)."""
    config = described.get("HyperParameterTuningJobConfig") or {}
    objective = config.get("HyperParameterTuningJobObjective") or {}
    if not objective:
        for definition in described.get("TrainingJobDefinitions") or []:
            if definition.get("TuningObjective"):
                objective = definition["TuningObjective"]
                break
    kind = objective.get("Type")
    return objective.get("MetricName"), kind if kind in ("Maximize", "Minimize") else None


def parse_tuning_job(described: dict[str, Any], ranked: list[dict[str, Any]], limit: int) -> TuningContext:
    """DescribeHyperParameterTuningJob's answer and its completed training jobs in objective order,
    reduced to the tuning job's candidates: BestTrainingJob first, then the next best, at most `limit`.

    OverallBestTrainingJob (a warm start's best across its parent tuning jobs) is never a candidate:
    when it is not this tuning job's own best it belongs to a parent, whose own decision judged it;
    it is named in the report only."""
    metric, kind = objective_of(described)
    best = described.get("BestTrainingJob") or None
    candidates: list[TuningCandidate] = []
    if best and best.get("TrainingJobStatus", "Completed") == "Completed":
        candidates.append(_candidate(best))
    for summary in ranked:
        if len(candidates) >= limit:
            break
        if summary.get("TrainingJobStatus") != "Completed":
            continue
        if any(c.training_job_name == summary["TrainingJobName"] for c in candidates):
            continue
        candidates.append(_candidate(summary))
    counters = described.get("TrainingJobStatusCounters") or {}
    overall = (described.get("OverallBestTrainingJob") or {}).get("TrainingJobName")
    best_name = best.get("TrainingJobName") if best else None
    reason = described.get("FailureReason") or None
    return TuningContext(
        tuning_job_name=described["HyperParameterTuningJobName"],
        tuning_job_arn=described["HyperParameterTuningJobArn"],
        status=described["HyperParameterTuningJobStatus"],
        failure_reason=reason[:FAILURE_REASON_MAX] if reason else None,
        objective_metric=metric,
        objective_type=kind,  # type: ignore[arg-type]
        children=sum(int(v) for v in counters.values() if isinstance(v, int)),
        children_completed=int(counters.get("Completed", 0) or 0),
        definitions=[
            d["DefinitionName"] for d in described.get("TrainingJobDefinitions") or [] if d.get("DefinitionName")
        ],
        best_training_job=best_name,
        overall_best_training_job=overall if overall and overall != best_name else None,
        candidates=candidates[:limit],
        current=candidates[0] if candidates else None,
    )


class TuningJobs:
    """Hyperparameter tuning jobs and the training jobs they launched."""

    # ListTrainingJobsForHyperParameterTuningJob: MaxResults 1-100
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListTrainingJobsForHyperParameterTuningJob.html).
    PAGE_MAX = 100

    def __init__(self, sagemaker: Any | None = None):
        self._sagemaker = sagemaker or client("sagemaker")

    def describe(self, tuning_job_name: str) -> dict[str, Any]:
        try:
            return dict(
                self._sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job_name)
            )
        except ClientError as exc:
            if error_code(exc) in ("ResourceNotFound", "ValidationException") and (
                "not found" in error_message(exc).lower() or "could not find" in error_message(exc).lower()
            ):
                raise TuningJobNotFound(f"tuning job {tuning_job_name!r} not found") from exc
            raise

    def best_completed(self, tuning_job_name: str, objective_type: str | None, count: int) -> list[dict[str, Any]]:
        """The tuning job's completed training jobs, best objective first, at most `count`.

        SortBy FinalObjectiveMetricValue lists only jobs that reported the objective; SortOrder is
        Ascending unless asked, so a maximised objective is read Descending."""
        kwargs: dict[str, Any] = {
            "HyperParameterTuningJobName": tuning_job_name,
            "StatusEquals": "Completed",
            "SortBy": "FinalObjectiveMetricValue",
            "SortOrder": "Ascending" if objective_type == "Minimize" else "Descending",
            "MaxResults": max(1, min(count, self.PAGE_MAX)),
        }
        found: list[dict[str, Any]] = []
        while len(found) < count:
            page = self._sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(**kwargs)
            found += page.get("TrainingJobSummaries", [])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        return found[:count]


class TrainingJobs:
    def __init__(self, sagemaker: Any | None = None):
        self._sagemaker = sagemaker or client("sagemaker")

    def describe(self, training_job_name: str) -> DescribedJob:
        try:
            described = self._sagemaker.describe_training_job(TrainingJobName=training_job_name)
        except ClientError as exc:
            # SageMaker answers an unknown job with ValidationException ("Requested resource not found.").
            message = error_message(exc).lower()
            if error_code(exc) in ("ValidationException", "ResourceNotFound") and (
                "not found" in message or "could not find" in message
            ):
                raise TrainingJobNotFound(f"training job {training_job_name!r} not found") from exc
            raise
        return parse_training_job(described)

    def tags(self, training_job_arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for page in self._sagemaker.get_paginator("list_tags").paginate(ResourceArn=training_job_arn):
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        return tags


class ModelRegistry:
    """The champion of a group, package creation (idempotent by ClientToken) and approval updates."""

    def __init__(self, sagemaker: Any | None = None):
        self._sagemaker = sagemaker or client("sagemaker")

    def latest_approved(self, group: str) -> tuple[str, dict[str, str]] | None:
        """ARN and CustomerMetadataProperties of the group's newest Approved package, or None."""
        try:
            page = self._sagemaker.list_model_packages(
                ModelPackageGroupName=group,
                ModelApprovalStatus="Approved",
                SortBy="CreationTime",
                SortOrder="Descending",
                MaxResults=1,
            )
        except ClientError as exc:
            if error_code(exc) in ("ValidationException", "ResourceNotFound"):
                return None  # no group yet: the first run
            raise
        summaries = page.get("ModelPackageSummaryList", [])
        if not summaries:
            return None
        arn = summaries[0]["ModelPackageArn"]
        described = self._sagemaker.describe_model_package(ModelPackageName=arn)
        return arn, described.get("CustomerMetadataProperties", {})

    def ensure_group(self, group: str, description: str, tags: list[dict[str, str]]) -> bool:
        """Create the group unless it exists; True when this call created it."""
        try:
            self._sagemaker.describe_model_package_group(ModelPackageGroupName=group)
            return False
        except ClientError as exc:
            if error_code(exc) not in ("ValidationException", "ResourceNotFound"):
                raise
        try:
            self._sagemaker.create_model_package_group(
                ModelPackageGroupName=group, ModelPackageGroupDescription=description, Tags=tags
            )
        except ClientError as exc:
            # Another execution created it between our describe and create: that is the goal reached.
            if "already exists" not in error_message(exc):
                raise
            return False
        return True

    def create_package(self, request: dict[str, Any]) -> str:
        return str(self._sagemaker.create_model_package(**request)["ModelPackageArn"])

    def find_package(self, group: str, identity: dict[str, str], newest: int = 100) -> str | None:
        """The package of `group` whose CustomerMetadataProperties hold every entry of `identity`,
        among its newest packages; None when there is none."""
        kwargs: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 100,
        }
        seen = 0
        while seen < newest:
            try:
                page = self._sagemaker.list_model_packages(**kwargs)
            except ClientError as exc:
                if error_code(exc) in ("ValidationException", "ResourceNotFound"):
                    return None
                raise
            for summary in page.get("ModelPackageSummaryList", []):
                seen += 1
                arn = summary["ModelPackageArn"]
                described = self._sagemaker.describe_model_package(ModelPackageName=arn)
                metadata = described.get("CustomerMetadataProperties", {})
                if all(metadata.get(k) == v for k, v in identity.items()):
                    return str(arn)
            if not page.get("NextToken"):
                return None
            kwargs["NextToken"] = page["NextToken"]
        return None

    def describe_package(self, model_package_arn: str) -> dict[str, Any]:
        return dict(self._sagemaker.describe_model_package(ModelPackageName=model_package_arn))

    def set_approval(self, model_package_arn: str, status: str, description: str) -> None:
        self._sagemaker.update_model_package(
            ModelPackageArn=model_package_arn, ModelApprovalStatus=status, ApprovalDescription=description[:1024]
        )


class CallbackNotWaiting(Exception):
    """SageMaker refused an answer because the token waits no more (answered already, or unknown)."""


class CallbackAnswerFailed(Exception):
    """SageMaker refused an answer for a reason a retry may get past (throttled, a limit, its own error),
    or that a person must look at."""


# The two errors SendPipelineExecutionStep* documents besides ResourceLimitExceeded: ConflictException ("a
# conflict when you attempted to modify a SageMaker entity") and ResourceNotFound. The reference does not say
# which one a token answered already (or never issued) gets; either means the step waits for this token no
# more, and nothing the gate sends again changes that
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_SendPipelineExecutionStepSuccess.html, Errors).
NOT_WAITING = {"ConflictException", "ResourceNotFound"}


class PipelineCallbacks:
    """SendPipelineExecutionStepSuccess and SendPipelineExecutionStepFailure: the answers a CallbackStep waits for."""

    def __init__(self, sagemaker: Any | None = None):
        self._sagemaker = sagemaker or client("sagemaker")

    def send(self, request: dict[str, Any], success: bool) -> str:
        """Send one answer (its ClientRequestToken makes a repeat of it harmless); the pipeline execution's ARN."""
        try:
            if success:
                answered = self._sagemaker.send_pipeline_execution_step_success(**request)
            else:
                answered = self._sagemaker.send_pipeline_execution_step_failure(**request)
        except ClientError as exc:
            code = error_code(exc)
            text = f"SageMaker refused the answer to callback token {request.get('CallbackToken')} ({code}): "
            text += error_message(exc)
            if code in NOT_WAITING:
                raise CallbackNotWaiting(text) from exc
            raise CallbackAnswerFailed(text) from exc
        return str(answered.get("PipelineExecutionArn", ""))
