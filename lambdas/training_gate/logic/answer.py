"""AnswerPipelines' use case: every SageMaker pipeline waiting on the gate gets its answer, once.

A pipeline's token is held by exactly one party at a time: the execution its message started, until that
execution leaves it on a decision item (it owns the decision, or finds another execution carrying it out);
from then on, the decision item. Whoever completes the item answers every token it holds with the recorded
decision (the completion is atomic with the condition under which tokens are left, so it sees them all); an
owner that fails closes the item first (no token can be left with it after that) and answers its tokens
with its failure. Each answer is written on the item before it is sent (`answering`, the first writer's
stands) and recorded once SageMaker took it (`answers`): a retry, a redrive or the operations alert skips
what was answered and sends what was written but not taken as it was written, so a crash between any two
of these steps never makes a second, different answer; sending the same request again is harmless (its
ClientRequestToken, derived from what it answers, makes it idempotent).

Two uses:
- `decision`: after this execution completed a decision (or found it complete): its tokens, and this
  execution's own token if no item holds it (a duplicate), get the recorded decision.
- `failure`: the execution ends without a decision it completed: a gate error, owners who could not be told,
  a training job judged with its tuning job; AlertOperations uses it for what no Catch sees (a timeout, an
  abort, States.DataLimitExceeded).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from training_gate.dal.dynamodb import DecisionLog
from training_gate.dal.sagemaker import CallbackAnswerFailed, CallbackNotWaiting, PipelineCallbacks
from training_gate.domain.alerts import decision_key_of
from training_gate.domain.decision_record import DecisionItem
from training_gate.domain.pipeline import (
    AnsweredToken,
    AnswerIntent,
    PipelineAnswer,
    PipelineCallback,
    WaitingToken,
    answer_decision,
    answer_failure,
    callback_of,
    now,
)


class DecisionNotComplete(Exception):
    """Asked to answer with a decision that is not complete: the workflow went where it should not."""


class AnswerRequest(BaseModel):
    kind: Literal["decision", "failure"]
    execution_arn: str
    callback: PipelineCallback | None = Field(default=None, description="this execution's own, when validated")
    decision_key: str | None = None
    policy_sha256: str | None = None
    execution_input: Any = Field(default=None, description="the raw input, for a failure before validation")
    error: str | None = None
    cause: str | None = None


class Answered(BaseModel):
    """What this invocation sent: answers SageMaker accepted, and tokens it said wait no more."""

    answered: int = 0
    refused: int = 0
    tokens: list[AnsweredToken] = []

    def add(self, results: list[AnsweredToken]) -> None:
        self.tokens += results
        self.answered += sum(r.answer != "refused" for r in results)
        self.refused += sum(r.answer == "refused" for r in results)


@dataclass
class AnswerPorts:
    log: DecisionLog
    callbacks: PipelineCallbacks


def _send(answers: list[PipelineAnswer], me: str, callbacks: PipelineCallbacks) -> tuple[list[AnsweredToken], Any]:
    """Send each answer; (what happened to each sent, the error that stopped the rest or None)."""
    results: list[AnsweredToken] = []
    for answer in answers:
        try:
            callbacks.send(answer.request(), answer.success)
        except CallbackNotWaiting as exc:
            results.append(AnsweredToken(token=answer.token, answer="refused", by=me, at=now(), detail=str(exc)[:500]))
            continue
        except CallbackAnswerFailed as exc:
            return results, exc
        results.append(
            AnsweredToken(token=answer.token, answer="success" if answer.success else "failure", by=me, at=now())
        )
    return results, None


def _intended(item: DecisionItem, answer: PipelineAnswer, me: str, ports: AnswerPorts) -> PipelineAnswer:
    """The answer a token gets: `answer`, written on the item first, or the one another execution wrote
    there before (then its request, whatever this execution would have sent)."""
    stood = ports.log.intend_answer(
        item.training_job, item.policy_sha256, answer.token, AnswerIntent.of(answer, me).entry()
    )
    if stood is None:  # the item vanished (deleted by hand): nothing holds the token but this answer
        return answer
    written = AnswerIntent.model_validate_json(stood)
    current = item if item.complete or not written.success else ports.log.get(item.training_job, item.policy_sha256)
    # A success is written only for a complete decision, which never changes again.
    return written.answer(current.for_pipeline() if current is not None and current.complete else None)


def answer_item(
    item: DecisionItem,
    me: str,
    ports: AnswerPorts,
    make: Callable[[WaitingToken], PipelineAnswer],
    own: WaitingToken | None = None,
) -> list[AnsweredToken]:
    """Answer every token the item owes an answer (and `own`, this execution's token no item holds): each
    with the answer written on the item, or the one `make` gives it, written first. Record what was sent,
    even when a later send failed (the rest is sent by the retry)."""
    waiting = {w.token: w for w in item.pending_tokens()}
    if own is not None:
        waiting.setdefault(own.token, own)
    intents = item.intents()
    decision = item.for_pipeline() if item.complete else None
    answers = [
        intents[token].answer(decision) if token in intents else _intended(item, make(waiting[token]), me, ports)
        for token in sorted(set(item.unanswered()) | set(waiting))
    ]
    results, error = _send(answers, me, ports.callbacks)
    ports.log.record_answers(item.training_job, item.policy_sha256, [r.entry() for r in results])
    if error is not None:
        raise error
    return results


def _answer_alone(answer: PipelineAnswer, me: str, ports: AnswerPorts) -> list[AnsweredToken]:
    """A token no decision item holds (the execution failed before any claim): its answer depends only on the
    execution, its error and its cause."""
    results, error = _send([answer], me, ports.callbacks)
    if error is not None:
        raise error
    return results


def answer_with_decision(request: AnswerRequest, ports: AnswerPorts) -> Answered:
    key, sha, me = request.decision_key, request.policy_sha256, request.execution_arn
    item = ports.log.get(key, sha) if key and sha else None
    if item is None or not item.complete:
        raise DecisionNotComplete(f"the decision on {key} ({sha}) is not complete: there is nothing to answer with")
    decision = item.for_pipeline()
    answered = Answered()
    own = request.callback
    # A duplicate (it found the decision complete): its own token gets the recorded decision, through the item.
    mine = WaitingToken.of(own, me) if own is not None and not item.holds_token(own.token) else None
    answered.add(answer_item(item, me, ports, lambda waiting: answer_decision(decision, waiting), own=mine))
    return answered


def _parsed(execution_input: Any) -> Any:
    if isinstance(execution_input, str):
        try:
            return json.loads(execution_input)
        except ValueError:
            return None
    return execution_input


def answer_with_failure(request: AnswerRequest, ports: AnswerPorts) -> Answered:
    me, error, cause = request.execution_arn, request.error or "GateError", request.cause
    raw = _parsed(request.execution_input)
    own = request.callback or callback_of(raw)
    key = request.decision_key or decision_key_of(json.dumps(raw) if raw is not None else None)
    answered = Answered()
    own_held = False
    for item in ports.log.decisions(key) if key else []:
        own_held = own_held or (own is not None and item.holds_token(own.token))
        current: DecisionItem | None = item
        if not item.complete and item.owner == me:
            closed = ports.log.close(item.training_job, item.policy_sha256, me)
            if closed is not None:
                answered.add(answer_item(closed, me, ports, lambda w: answer_failure(w.token, me, error, cause)))
                continue
            current = ports.log.get(item.training_job, item.policy_sha256)  # completed or taken over meanwhile
        if current is not None and current.complete:
            # A decision completed by an execution that did not live to answer: its tokens are owed it.
            decision = current.for_pipeline()
            answered.add(answer_item(current, me, ports, lambda w, d=decision: answer_decision(d, w)))
        # Otherwise another execution, still running or to be taken over, holds the decision and its tokens.
    if own is not None and not own_held:
        answered.add(_answer_alone(answer_failure(own.token, me, error, cause), me, ports))
    return answered


def answer_pipelines(request: AnswerRequest, ports: AnswerPorts) -> Answered:
    if request.kind == "decision":
        return answer_with_decision(request, ports)
    return answer_with_failure(request, ports)
