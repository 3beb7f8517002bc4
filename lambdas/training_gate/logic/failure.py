"""DescribeFailure's use case: what to tell the owners about a job that did not complete, claimed
once in the decision table like any decision.

SageMaker may send a state change more than once ("SageMaker AI may send multiple events to EventBridge
for each state change", https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html),
and people re-run executions: the notice has its
own decision item (sort key `not-judged`, no policy judged the job), so any number of deliveries and
re-runs tell the owners at most once per claim; an unfinished notice is taken over like a decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, model_validator

from training_gate.constants import NOT_JUDGED
from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.stepfunctions import Executions
from training_gate.domain.contract import Claim, FailureNotice, TrainingJob, TuningContext
from training_gate.domain.decision_record import DecisionItem, ItemStatus
from training_gate.domain.failure import FailureSummary, classify_failure, classify_tuning_failure
from training_gate.domain.inputs import GateInput, tuning_decision_key
from training_gate.domain.pipeline import WaitingToken
from training_gate.logic.evaluate import record_decision

# What the decision item and the owners' `decision` message attribute call a job that produced no model.
TRAINING_FAILED = "training_failed"


class DescribeFailureRequest(BaseModel):
    job: TrainingJob | None = None
    tuning: TuningContext | None = None
    settings: GateInput | None = None
    execution_arn: str | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> DescribeFailureRequest:
        if (self.job is None) == (self.tuning is None):
            raise ValueError("describe exactly one job: a training job or a tuning job")
        return self


@dataclass
class FailurePorts:
    log: DecisionLog | None = None
    executions: Executions | None = None


def summarize(request: DescribeFailureRequest) -> tuple[str, FailureSummary]:
    """(decision key, the notice)."""
    if request.tuning is not None:
        tuning = request.tuning
        summary = classify_tuning_failure(
            tuning.tuning_job_name, tuning.status, tuning.failure_reason, tuning.children, tuning.children_completed
        )
        return tuning_decision_key(tuning.tuning_job_name), summary
    job = request.job
    assert job is not None
    return job.training_job_name, classify_failure(
        job.training_job_name, job.status, job.secondary_status, job.failure_reason
    )


def describe_failure(request: DescribeFailureRequest, ports: FailurePorts) -> FailureNotice:
    key, summary = summarize(request)
    dry_run = request.settings is not None and request.settings.dry_run
    me = request.execution_arn
    if dry_run or ports.log is None or ports.executions is None or not me:
        return FailureNotice(
            **summary.model_dump(), claim=Claim.NOT_RECORDED, decision_key=key, policy_sha256=NOT_JUDGED
        )
    tuning = request.tuning
    callback = request.settings.pipeline_callback if request.settings else None
    status = tuning.status if tuning else (request.job.status if request.job else "")
    item = DecisionItem(
        training_job=key,
        policy_sha256=NOT_JUDGED,
        status=ItemStatus.DECIDED,
        owner=me,
        execution_arn=me,
        outcome=TRAINING_FAILED,
        reasons=f"{status}: {summary.action} - {summary.advice}",
        report_uri="",
        decided_at=datetime.now(UTC).isoformat(),
        notification_subject=summary.subject,
        notification_message=summary.message,
        judged_job=request.job.model_dump_json() if request.job else None,
        tuning_job_name=tuning.tuning_job_name if tuning else None,
        tuning_job_arn=tuning.tuning_job_arn if tuning else None,
        waiting=[WaitingToken.of(callback, me).entry()] if callback else [],
    )
    claim, holding, resumed = record_decision(item, ports.log, ports.executions)
    return FailureNotice(
        action=summary.action,
        advice=summary.advice,
        # A taker-over tells what the first claimant stored.
        subject=holding.notification_subject or summary.subject,
        message=holding.notification_message or summary.message,
        claim=claim,
        decision_key=key,
        policy_sha256=NOT_JUDGED,
        owner_execution=holding.owner,
        decided_by=holding.execution_arn,
        resumed=resumed,
        token_left_with_owner=claim == Claim.IN_PROGRESS and callback is not None,
    )
