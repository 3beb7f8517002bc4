"""The typed contract between the states: what each step hands the next.

    ValidateInput       -> GateInput      ($.settings)
    DescribeTuningJob   -> TuningContext  ($.tuning: a tuning job, its candidates best first)
    DescribeTrainingJob -> TrainingJob    ($.job: the job, or the tuning job's current candidate)
    InspectArtifact     -> InspectionResult ($.inspection)
    CollectMetrics      -> MetricsSummary ($.metrics; the full MetricsResult is in S3)
    EvaluatePolicy      -> Evaluation     ($.evaluation; with the next TuningContext while candidates remain)
    RegisterModel       -> Registration   ($.registration)
    RecordOutcome       -> Completion     ($.completion)
    DescribeFailure     -> FailureNotice  ($.failure: a failed or stopped job, its notice claimed)
    NotifyOwners        -> Notified       ($.notified)

Each is parsed once where it enters a function and dumped where it leaves. Each stays small (the
state payload budget in `constants`): bulky data lives in S3 and the state carries its URI.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from training_gate.domain.policy import Outcome, ReasonCode

# SageMaker's FailureReason is at most 1,024 characters (DescribeTrainingJob).
FAILURE_REASON_MAX = 1024
WARNINGS_IN_STATE = 10
SUMMARY_MAX = 1000
NOTIFICATION_MESSAGE_MAX = 8000  # the whole report is one link away, in S3
TABLE_MAX = 4000
ANSWERS_DUE = "pipeline tokens left on the completed decision that nobody answered yet"


class MetricDefinition(BaseModel):
    Name: str
    Regex: str


class FinalMetric(BaseModel):
    MetricName: str
    Value: float | None = None


class TrainingJob(BaseModel):
    """DescribeTrainingJob, parsed once, reduced to what the gate uses. The raw response can pass
    256 KiB (100 hyperparameters of 2,500 characters), so it never enters the state."""

    model_config = ConfigDict(extra="forbid")

    training_job_name: str
    training_job_arn: str
    status: str
    secondary_status: str | None = None
    failure_reason: Annotated[str | None, Field(max_length=FAILURE_REASON_MAX)] = None
    model_artifact: str | None = None
    compression_type: Literal["GZIP", "NONE"] = "GZIP"
    output_path: str | None = Field(default=None, description="OutputDataConfig.S3OutputPath")
    training_image: str | None = None
    output_model_package_arn: str | None = None
    tuning_job_arn: str | None = None
    judged_with_tuning_job: bool = Field(
        default=False, description="its tuning job's execution judges it (domain/scope.py); it ends quietly"
    )
    creation_time: str | None = None
    training_start_time: str | None = None
    training_end_time: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in ("Completed", "Failed", "Stopped")


class JobMetricSources(BaseModel):
    """What CollectMetrics reads from the job besides its logs: kept out of the state (up to 40
    definitions of 500-character regexes)."""

    metric_definitions: list[MetricDefinition] = []
    final_metrics: list[FinalMetric] = []


class DescribedJob(BaseModel):
    job: TrainingJob
    sources: JobMetricSources


class MetricsSummary(BaseModel):
    """CollectMetrics' hand-off: where the full result is, and a bounded view of it."""

    metrics_uri: str | None = Field(description="the full MetricsResult (per-host details, warnings) in S3")
    fidelity_uri: str | None = Field(default=None, description="how each metric was read, host by host, in S3")
    metric_names: Annotated[list[str], Field(description="canonical names found, at most 100")] = []
    metrics_total: int = 0
    warnings: list[str] = Field(default=[], description=f"the first {WARNINGS_IN_STATE} distinct warnings")
    warnings_total: int = 0
    log_streams: int = 0


class Claim(StrEnum):
    """What the decision table said about this execution's decision."""

    OWNER = "owner"  # this execution carries the decision to completion
    DUPLICATE = "duplicate"  # an earlier execution completed it
    IN_PROGRESS = "in_progress"  # another execution, still running, owns it
    NOT_RECORDED = "not_recorded"  # dry run: nothing is recorded, registered or notified


class Notification(BaseModel):
    subject: Annotated[str, Field(max_length=100, pattern=r"^[\x20-\x7e]+$")]
    message: Annotated[str, Field(max_length=NOTIFICATION_MESSAGE_MAX)]


class Evaluation(BaseModel):
    """EvaluatePolicy's hand-off: the decision, where its report is, and who carries it out."""

    outcome: Outcome
    summary: Annotated[str, Field(max_length=SUMMARY_MAX)]
    reasons: Annotated[list[str], Field(max_length=20)] = []
    reason_codes: list[ReasonCode]
    table: Annotated[str, Field(max_length=TABLE_MAX)]
    policy_sha256: str
    model_package_group: str
    report_uri: str | None
    notification: Notification
    dry_run: bool
    claim: Claim
    decided_by: str = Field(description="the execution that made the decision (this one unless resumed)")
    resumed: bool = Field(default=False, description="this execution took over an unfinished decision")
    # Set for DUPLICATE / IN_PROGRESS: what the earlier execution did or is doing.
    owner_execution: str | None = None
    model_package_arn: str | None = None
    completion: str | None = None
    observed_values: dict[str, float] = Field(default={}, description="judged metric values, for dashboards")
    decision_key: str | None = Field(
        default=None, description="the decision table's key: the training job, or hyper-parameter-tuning-job/<name>"
    )
    tuning_job_name: str | None = None
    tuning_job_arn: str | None = None
    model: dict[str, str | int | bool | None] | None = Field(
        default=None,
        description="the judged model: framework, format, reader, reader_version, writer_version; a checkpoint's "
        "parameters, dtypes and tensor_bytes",
    )
    # A tuning job's candidate that did not pass while others remain: nothing is claimed, the next is judged.
    next_candidate: bool = False
    tuning: TuningContext | None = None
    # IN_PROGRESS: this execution's pipeline token was left with the owner, which answers it.
    token_left_with_owner: bool = False

    def key(self, job: TrainingJob) -> str:
        return self.decision_key or job.training_job_name


class TuningCandidate(BaseModel):
    """One completed training job of a tuning job, as ListTrainingJobsForHyperParameterTuningJob or
    BestTrainingJob describes it (HyperParameterTrainingJobSummary)."""

    training_job_name: str
    definition_name: str | None = Field(default=None, description="TrainingJobDefinitionName, with several")
    objective_metric: str | None = None
    objective_value: float | None = None
    objective_type: Literal["Maximize", "Minimize"] | None = None


CANDIDATE_SUMMARY_MAX = 600


class CandidateResult(BaseModel):
    """What the policy said about one candidate: what the tuning job's decision lists."""

    training_job_name: str
    outcome: Outcome
    reasons: Annotated[list[Annotated[str, Field(max_length=300)]], Field(max_length=5)] = []
    reason_codes: list[ReasonCode] = []
    report_uri: str | None = None
    objective_value: float | None = None


class TuningContext(BaseModel):
    """A tuning job reduced to what the gate uses: who it is, how it ended, its candidates (best
    first, at most the configured number) and the ones already judged. Bounded: at most
    TUNING_CANDIDATES_MAX candidates and results of a few hundred characters each."""

    model_config = ConfigDict(extra="forbid")

    tuning_job_name: str
    tuning_job_arn: str
    status: str
    failure_reason: Annotated[str | None, Field(max_length=FAILURE_REASON_MAX)] = None
    objective_metric: str | None = None
    objective_type: Literal["Maximize", "Minimize"] | None = None
    children: int = Field(default=0, description="training jobs the tuning job launched")
    children_completed: int = 0
    definitions: list[str] = Field(default=[], description="TrainingJobDefinitionName of each definition")
    best_training_job: str | None = None
    overall_best_training_job: str | None = Field(
        default=None, description="a warm start's best across its parents, when it is not this tuning job's own"
    )
    candidates: list[TuningCandidate] = []
    index: int = 0
    current: TuningCandidate | None = Field(default=None, description="the candidate judged now")
    tried: list[CandidateResult] = []

    @property
    def is_last(self) -> bool:
        return self.index + 1 >= len(self.candidates)

    def advanced(self, result: CandidateResult) -> TuningContext:
        """The context for the next candidate, with this one's result kept."""
        following = self.index + 1
        return self.model_copy(
            update={
                "index": following,
                "current": self.candidates[following] if following < len(self.candidates) else None,
                "tried": [*self.tried, result],
            }
        )


class Registration(BaseModel):
    training_job_name: str | None = Field(default=None, description="the job whose model the package holds")
    model_package_arn: str
    model_package_version: str
    adopted: bool
    created: bool = Field(description="False when an earlier attempt had already created the package")
    answers_due: int = Field(default=0, description=ANSWERS_DUE)


class FailureNotice(BaseModel):
    """DescribeFailure's hand-off: what the owners are told about a job that did not complete, and
    whether this execution tells them (its claim on the notice's decision item)."""

    action: str
    advice: str
    subject: Annotated[str, Field(max_length=100)]
    message: Annotated[str, Field(max_length=NOTIFICATION_MESSAGE_MAX)]
    claim: Claim
    decision_key: str
    policy_sha256: str
    owner_execution: str | None = None
    decided_by: str | None = None
    resumed: bool = False
    token_left_with_owner: bool = False


class NotifyRequest(BaseModel):
    """NotifyOwners' input: which decision item's stored notice to send, and who asks."""

    decision_key: str
    policy_sha256: str
    execution_arn: str


class Notified(BaseModel):
    completion: Literal["notified", "superseded"]
    message_id: str | None = None
    sent: bool = Field(default=False, description="this invocation published the message")
    answers_due: int = Field(default=0, description=ANSWERS_DUE)


class Completion(BaseModel):
    completion: Literal["registered", "event_published", "notified", "superseded"]
    model_package_arn: str | None = None
    answers_due: int = Field(default=0, description=ANSWERS_DUE)


class ReportRegistration(BaseModel):
    """The typed update a registration makes to report.json."""

    model_package_arn: str
    model_package_version: str
    adopted: bool


def bounded_warnings(warnings: list[str], limit: int = WARNINGS_IN_STATE) -> tuple[list[str], int]:
    """Distinct warnings in first-seen order, the first `limit` of them, and how many there were."""
    distinct = list(dict.fromkeys(warnings))
    return [w[:500] for w in distinct[:limit]], len(distinct)


def trim(text: str, limit: int, where: str = "the report in S3") -> str:
    if len(text) <= limit:
        return text
    note = f"\n\n[trimmed: the whole text is in {where}]"
    return text[: limit - len(note)] + note
