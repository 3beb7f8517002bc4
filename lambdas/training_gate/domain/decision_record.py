"""The decision item's lifecycle: who owns a decision and when it is done. Pure.

One item per (training job, effective policy). Its owner is the execution carrying the decision
out; its status moves `decided` -> (`registered`) -> `complete`. Every side effect (registration,
owners' notification, decision event) happens after the item names its owner and before it is
complete, so an execution that dies between any two of them leaves an item the next execution can
resume. Items written before owners existed are read the same way: a legacy `decided` or `failed`
item is unfinished; a legacy `registered` item (no owner) finished its registration.

A tuning job's decision is keyed `hyper-parameter-tuning-job/<name>`, and a failed or stopped job's
notice has its own item (sort key `not-judged`): each is told once, like a model decision. `endings`
holds how each execution that touched the item ended when that was not its completion (a
notification that failed, a gate error after the claim, a take-over that superseded it), with the
error, so the table alone says what happened to a job.

Pipelines wait on decisions too: a CallbackStep's token is left on the item (`waiting`) by the execution
that owns it or finds it in progress, only while the item is not complete and its owner has not given it
up (`closed_by`). The completion is the last write that can see a token, so whoever completes the item
answers every token it holds; an owner that fails closes the item first and answers them with its failure.
Each answer is written before it is sent (`answering`, one per token, first writer wins), so whoever
sends it again after a crash sends the very same request, and recorded once SageMaker took it (`answers`),
so nobody answers a token twice.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from training_gate.domain.pipeline import (
    AnsweredToken,
    AnswerIntent,
    DecisionForPipeline,
    WaitingToken,
    parse_entries,
)


class ItemStatus(StrEnum):
    DECIDED = "decided"
    REGISTERED = "registered"
    COMPLETE = "complete"
    FAILED = "failed"  # legacy: written by the workflow before owners existed


class Ending(BaseModel):
    """How one execution ended, as the item records it (map entry `endings.<execution name>`)."""

    model_config = ConfigDict(extra="ignore")

    execution_arn: str
    ending: str = Field(description="NotificationFailed, GateError, Superseded, DuplicateInProgress, ...")
    error: str | None = None
    cause: str | None = None
    at: str | None = None


ENDING_CAUSE_MAX = 2000


class DecisionItem(BaseModel):
    """The decision table's item, attribute names as they are stored (a public contract)."""

    model_config = ConfigDict(extra="ignore")

    training_job: str
    policy_sha256: str
    status: str
    owner: str | None = None
    execution_arn: str | None = None
    outcome: str | None = None
    reasons: str | None = None
    reason_codes: str | None = None
    report_uri: str | None = None
    model_package_group: str | None = None
    decided_at: str | None = None
    registration_request: str | None = None
    notification_subject: str | None = None
    notification_message: str | None = None
    decision_table: str | None = None
    model_package_arn: str | None = None
    completion: str | None = None
    event_published: str | None = None
    completed_at: str | None = None
    duplicates: int = 0
    duplicate_executions: list[str] = []
    takeovers: list[str] = []
    # The TrainingJob the decision is about (JSON): a taker-over registers or rejects exactly this job,
    # which for a tuning job is one of its candidates, whatever candidate it judged itself.
    judged_job: str | None = None
    tuning_job_name: str | None = None
    tuning_job_arn: str | None = None
    # The judged model's framework, format, reader and writer (JSON), for the decision event a taker-over sends.
    judged_model: str | None = None
    # The owners' message: `notifying` is written (by the owner only) right before it is sent,
    # `notified_by` right after SNS accepted it.
    notifying: str | None = None
    notified_by: str | None = None
    notification_message_id: str | None = None
    endings: dict[str, Ending] = {}
    # Pipelines waiting on this decision: JSON entries of a string set (WaitingToken, AnsweredToken).
    waiting: list[str] = []
    answers: list[str] = []
    # token -> AnswerIntent (JSON): the answer each token gets, written before it is sent.
    answering: dict[str, str] = {}
    # The owner that gave the decision up (it failed): no token may be left with it any more.
    closed_by: str | None = None

    @property
    def closed(self) -> bool:
        return self.closed_by is not None and self.closed_by == self.owner

    def waiting_tokens(self) -> list[WaitingToken]:
        return parse_entries(self.waiting, WaitingToken)

    def answered_tokens(self) -> list[AnsweredToken]:
        return parse_entries(self.answers, AnsweredToken)

    def intents(self) -> dict[str, AnswerIntent]:
        found = {}
        for token, entry in self.answering.items():
            try:
                found[token] = AnswerIntent.model_validate_json(entry)
            except ValueError:
                continue
        return found

    def pending_tokens(self) -> list[WaitingToken]:
        """The tokens left here that nobody answered yet."""
        answered = {a.token for a in self.answered_tokens()}
        return [w for w in self.waiting_tokens() if w.token not in answered]

    def unanswered(self) -> list[str]:
        """Every token this item owes an answer: left here, or with an answer written and not yet taken."""
        answered = {a.token for a in self.answered_tokens()}
        return sorted(({w.token for w in self.waiting_tokens()} | set(self.intents())) - answered)

    def holds_token(self, token: str) -> bool:
        return (
            any(w.token == token for w in self.waiting_tokens())
            or any(a.token == token for a in self.answered_tokens())
            or token in self.intents()
        )

    def for_pipeline(self) -> DecisionForPipeline:
        return DecisionForPipeline(
            decision_id=f"{self.training_job}|{self.policy_sha256}",
            outcome=self.outcome or "unknown",
            reasons=self.reasons or "",
            reason_codes=self.reason_codes or "",
            report_uri=self.report_uri or "",
            model_package_arn=self.model_package_arn or "",
        )

    @property
    def complete(self) -> bool:
        if self.status == ItemStatus.COMPLETE:
            return True
        # Before owners existed, RegisterModel marked `registered` as its last write of the item.
        return self.status == ItemStatus.REGISTERED and self.owner is None

    @property
    def resumable(self) -> bool:
        """It stores the whole decision (outcome, notification, registration request): a taker-over
        carries out exactly that decision. A legacy item does not, so the taker-over decides anew."""
        return self.owner is not None and self.notification_subject is not None


class ClaimVerdict(StrEnum):
    OWN = "own"  # this execution already owns it (a retry, or a lost response)
    COMPLETE = "complete"  # done by an earlier execution: a duplicate
    OWNER_RUNNING = "owner_running"  # another execution is carrying it out right now
    TAKE_OVER = "take_over"  # unfinished and its owner is gone: this execution resumes it


def judge_existing(item: DecisionItem, execution_arn: str, owner_running: bool) -> ClaimVerdict:
    """What an execution does on finding an item for its (job, policy)."""
    if item.owner == execution_arn:
        return ClaimVerdict.OWN
    if item.complete:
        return ClaimVerdict.COMPLETE
    if item.owner and owner_running:
        return ClaimVerdict.OWNER_RUNNING
    return ClaimVerdict.TAKE_OVER
