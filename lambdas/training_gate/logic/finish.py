"""RecordOutcome's use case: the decision's side effects before its message, or its last ones.

Runs after the registration (a pass: the item is complete afterwards) or before the message that
completes the decision (the owners' for a reject or an inconclusive decision, operations' for a skipped
one). A job's own package gets a rejection as its approval status; the decision event goes out. Only the
owner may do this: a redriven execution whose decision was taken over makes no side effect at all, and
says so on the item (its ending, Superseded)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from training_gate.dal.dynamodb import DecisionLog, NotOwner
from training_gate.dal.events import DecisionEvents
from training_gate.dal.sagemaker import ModelRegistry
from training_gate.domain.contract import Completion, Evaluation, TrainingJob
from training_gate.domain.decision_record import DecisionItem
from training_gate.domain.policy import Outcome
from training_gate.domain.report import decision_event


class RecordOutcomeRequest(BaseModel):
    job: TrainingJob
    evaluation: Evaluation
    execution_arn: str


@dataclass
class FinishPorts:
    log: DecisionLog
    events: DecisionEvents
    registry: ModelRegistry


def judged_job(item: DecisionItem, fallback: TrainingJob) -> TrainingJob:
    """The job the stored decision is about: a taker-over carries out exactly that decision, even when
    it judged another candidate of the same tuning job itself."""
    return TrainingJob.model_validate_json(item.judged_job) if item.judged_job else fallback


def record_superseded(log: DecisionLog, key: str, policy_sha256: str, me: str, item: DecisionItem | None) -> None:
    """An execution that lost its decision records that it made no side effect, and to whom it lost."""
    owner = item.owner if item is not None else None
    log.record_ending(
        key,
        policy_sha256,
        me,
        "Superseded",
        error="NotOwner",
        cause=f"execution {owner or '(none)'} owns the decision; this execution made no side effect",
    )


def own_package(job: TrainingJob, group: str) -> str | None:
    """The package the job registered itself, if the gate may decide its approval: one in the group the
    decision is for, in the job's own account and region (the gate's roles may update packages of the
    configured groups only). A package elsewhere belongs to someone else's process and is left alone."""
    arn = job.output_model_package_arn
    if not arn:
        return None
    package, training_job = arn.split(":"), job.training_job_arn.split(":")
    if len(package) < 6 or package[:5] != training_job[:5]:
        return None
    # arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>; SageMaker lowercases the group.
    parts = package[5].split("/")
    if len(parts) != 3 or parts[0] != "model-package" or parts[1] != group.lower():
        return None
    return arn


def record_outcome(request: RecordOutcomeRequest, ports: FinishPorts) -> Completion:
    """Publish the decision event once, before anyone is told (so that a failure here never leaves a
    message that a re-run would repeat). A pass is complete afterwards; any other decision is complete
    once its message was sent (NotifyOwners): completing a skipped decision here would let an
    execution stopped before operations heard of it leave a decision no re-run tells."""
    evaluation, me = request.evaluation, request.execution_arn
    key = evaluation.key(request.job)
    item = ports.log.get(key, evaluation.policy_sha256)
    if item is None or item.owner != me:
        record_superseded(ports.log, key, evaluation.policy_sha256, me, item)
        return Completion(completion="superseded")
    job = judged_job(item, request.job)
    package = item.model_package_arn
    passed = evaluation.outcome == Outcome.PASS
    if item.complete and not passed:
        # Its message was sent already (this is a retry after the decision completed): never twice.
        return Completion(completion="notified", answers_due=len(item.unanswered()))
    due = len(item.unanswered()) if item.complete else 0
    try:
        if not item.event_published:
            own = own_package(job, evaluation.model_package_group)
            if evaluation.outcome == Outcome.REJECT and own:
                ports.registry.set_approval(own, "Rejected", f"training-gate: {evaluation.summary}")
            ports.events.publish(
                decision_event(job, evaluation, me, model_package_arn=package),
                [r for r in (package, job.training_job_arn) if r],
            )
            ports.log.mark_event_published(key, evaluation.policy_sha256, me)
        if passed and not item.complete:
            # The completed item holds every pipeline token that will ever wait on this decision.
            due = len(ports.log.complete(key, evaluation.policy_sha256, me, "registered").unanswered())
    except NotOwner:
        record_superseded(ports.log, key, evaluation.policy_sha256, me, ports.log.get(key, evaluation.policy_sha256))
        return Completion(completion="superseded", model_package_arn=package)
    return Completion(
        completion="registered" if passed else "event_published", model_package_arn=package, answers_due=due
    )
