"""Pipelines waiting on decisions, over in-memory ports: where a CallbackStep's token is left when the
decision is claimed, who answers it and with what, and what is recorded; and the bridge from the queue."""

from __future__ import annotations

import json

import pytest

from tests.support.builders import metric, passing_inspection, training_job
from tests.support.fakes import FakeCallbacks, FakeExecutions, FakeJobs, FakeLog, FakeRegistry, FakeStore
from training_gate.dal.sagemaker import CallbackAnswerFailed
from training_gate.domain.contract import Claim, MetricsSummary
from training_gate.domain.inputs import GateInput
from training_gate.domain.models import MetricsResult
from training_gate.domain.pipeline import AnswerIntent, PipelineCallback, answer_decision, answer_failure
from training_gate.domain.policy import Policy
from training_gate.logic.answer import AnswerPorts, AnswerRequest, DecisionNotComplete, answer_item, answer_pipelines
from training_gate.logic.callback import BridgePorts, batch_response, start_from_batch
from training_gate.logic.evaluate import EvaluatePorts, EvaluateRequest, GateSettings, evaluate

POLICY = Policy.model_validate({"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}]})
SHA = POLICY.sha256()
GATE = GateSettings(default_policy=POLICY, default_group="models", allowed_groups=["models"], reports_bucket="reports")
PREFIX = "arn:aws:states:us-east-1:123456789012:execution:training-gate:"
OWNER, CALLER, LATE = PREFIX + "owner", PREFIX + "caller", PREFIX + "late"
TOKENS = {OWNER: "Owner00001", CALLER: "Caller0001", LATE: "LateLate01"}


def request(execution_arn: str, callback: bool = True, fail_step_on_reject: bool = False) -> EvaluateRequest:
    pipeline = PipelineCallback(token=TOKENS[execution_arn], fail_step_on_reject=fail_step_on_reject)
    return EvaluateRequest(
        job=training_job("job-1"),
        inspection=passing_inspection(),
        metrics=MetricsSummary(metrics_uri=None),
        settings=GateInput(
            training_job_name="job-1",
            poll_interval_seconds=0,
            max_polls=1,
            pipeline_callback=pipeline if callback else None,
        ),
        execution_arn=execution_arn,
    )


def collected(accuracy: float) -> MetricsResult:
    value = metric("accuracy", accuracy)
    return MetricsResult(metrics={"accuracy": value}, details=[value])


@pytest.fixture
def log() -> FakeLog:
    return FakeLog()


@pytest.fixture
def executions() -> FakeExecutions:
    return FakeExecutions()


@pytest.fixture
def callbacks() -> FakeCallbacks:
    return FakeCallbacks()


def claim(log, executions, execution_arn, accuracy=0.95, callback=True, **kwargs):
    ports = EvaluatePorts(
        store=FakeStore(),  # type: ignore[arg-type]
        registry=FakeRegistry(),  # type: ignore[arg-type]
        jobs=FakeJobs(),  # type: ignore[arg-type]
        load_stored=lambda group: None,
        log=log,
        executions=executions,
    )
    return evaluate(request(execution_arn, callback, **kwargs), collected(accuracy), GATE, ports)


def tokens(entries: list[str]) -> list[str]:
    return sorted(json.loads(e)["token"] for e in entries)


def answer(log, callbacks, kind="decision", execution_arn=OWNER, callback=None, **fields):
    ports = AnswerPorts(log=log, callbacks=callbacks)  # type: ignore[arg-type]
    return answer_pipelines(
        AnswerRequest(kind=kind, execution_arn=execution_arn, callback=callback, **fields),
        ports,
    )


# -- where a token goes at the claim ----------------------------------------------------------------------


def test_the_owner_leaves_its_own_token_on_the_item_it_creates(log, executions):
    evaluation = claim(log, executions, OWNER)
    assert evaluation.claim == Claim.OWNER
    assert tokens(log.get("job-1", SHA).waiting) == [TOKENS[OWNER]]


def test_a_caller_finding_the_owner_running_leaves_its_token_with_it(log, executions):
    claim(log, executions, OWNER)
    executions.running.add(OWNER)
    evaluation = claim(log, executions, CALLER)
    assert (evaluation.claim, evaluation.token_left_with_owner) == (Claim.IN_PROGRESS, True)
    assert tokens(log.get("job-1", SHA).waiting) == sorted([TOKENS[OWNER], TOKENS[CALLER]])


def test_a_caller_without_a_pipeline_leaves_nothing(log, executions):
    claim(log, executions, OWNER)
    executions.running.add(OWNER)
    evaluation = claim(log, executions, CALLER, callback=False)
    assert (evaluation.claim, evaluation.token_left_with_owner) == (Claim.IN_PROGRESS, False)
    assert tokens(log.get("job-1", SHA).waiting) == [TOKENS[OWNER]]


def test_a_token_is_never_left_on_a_complete_decision_its_caller_answers_it(log, executions, callbacks):
    claim(log, executions, OWNER)
    log.complete("job-1", SHA, OWNER, "registered")
    evaluation = claim(log, executions, CALLER)
    assert evaluation.claim == Claim.DUPLICATE
    assert tokens(log.get("job-1", SHA).waiting) == [TOKENS[OWNER]]
    own = PipelineCallback(token=TOKENS[CALLER], fail_step_on_reject=False)
    answered = answer(log, callbacks, execution_arn=CALLER, callback=own, decision_key="job-1", policy_sha256=SHA)
    # Its own token, and the owner's it found unanswered (the owner died between completing and answering).
    assert sorted(t.token for t in answered.tokens) == sorted(TOKENS[e] for e in (OWNER, CALLER))


def test_the_owner_completing_between_the_read_and_the_write_makes_the_caller_answer_itself(
    log, executions, monkeypatch
):
    claim(log, executions, OWNER)
    executions.running.add(OWNER)
    real = log.add_waiting

    def completed_first(*args):
        log.complete("job-1", SHA, OWNER, "registered")  # the owner wins the race
        return real(*args)

    monkeypatch.setattr(log, "add_waiting", completed_first)
    evaluation = claim(log, executions, CALLER)
    assert evaluation.claim == Claim.DUPLICATE  # judged again: complete, so answered by the caller
    assert tokens(log.get("job-1", SHA).waiting) == [TOKENS[OWNER]]


def test_an_owner_that_gave_the_decision_up_is_taken_over_even_while_it_runs(log, executions):
    claim(log, executions, OWNER)
    executions.running.add(OWNER)
    log.close("job-1", SHA, OWNER)
    evaluation = claim(log, executions, CALLER)
    assert (evaluation.claim, evaluation.resumed) == (Claim.OWNER, True)
    item = log.get("job-1", SHA)
    assert (item.owner, tokens(item.waiting)) == (CALLER, sorted([TOKENS[OWNER], TOKENS[CALLER]]))
    assert not item.closed  # closed by the previous owner only: tokens may be left with the new one


# -- answering with the decision -----------------------------------------------------------------------------


def test_the_completing_owner_answers_every_token_once_and_records_each(log, executions, callbacks):
    claim(log, executions, OWNER)
    executions.running.add(OWNER)
    claim(log, executions, CALLER)
    log.complete("job-1", SHA, OWNER, "registered")
    first = answer(log, callbacks, decision_key="job-1", policy_sha256=SHA)
    assert (first.answered, first.refused) == (2, 0)
    again = answer(log, callbacks, decision_key="job-1", policy_sha256=SHA)  # a retry, a redrive: nothing left
    assert (again.answered, again.refused) == (0, 0)
    assert len(callbacks.sent) == 2
    assert tokens(log.get("job-1", SHA).answers) == sorted(TOKENS[e] for e in (OWNER, CALLER))


def test_each_token_gets_its_own_choice_of_failing_on_reject(log, executions, callbacks):
    claim(log, executions, OWNER, accuracy=0.5)
    executions.running.add(OWNER)
    claim(log, executions, CALLER, accuracy=0.5, fail_step_on_reject=True)
    log.complete("job-1", SHA, OWNER, "notified")
    answer(log, callbacks, decision_key="job-1", policy_sha256=SHA)
    by_token = {c["CallbackToken"]: c for c in callbacks.sent}
    assert by_token[TOKENS[OWNER]]["success"] is True
    assert by_token[TOKENS[OWNER]]["OutputParameters"][0] == {"Name": "decision", "Value": "reject"}
    assert by_token[TOKENS[CALLER]]["success"] is False
    assert by_token[TOKENS[CALLER]]["FailureReason"].startswith("reject: accuracy 0.5 not > 0.9")


def test_a_token_sagemaker_says_waits_no_more_is_recorded_refused_and_is_no_error(log, executions, callbacks):
    claim(log, executions, OWNER)
    log.complete("job-1", SHA, OWNER, "registered")
    callbacks.answered[TOKENS[OWNER]] = {"success": False, "FailureReason": "stopping"}  # a stop was answered
    result = answer(log, callbacks, decision_key="job-1", policy_sha256=SHA)
    assert (result.answered, result.refused) == (0, 1)
    (entry,) = log.get("job-1", SHA).answers
    assert json.loads(entry)["answer"] == "refused"


def test_an_answer_that_fails_keeps_what_was_sent_and_the_retry_sends_the_rest(log, executions, callbacks):
    claim(log, executions, OWNER)
    executions.running.add(OWNER)
    claim(log, executions, CALLER)
    log.complete("job-1", SHA, OWNER, "registered")
    real = callbacks.send
    calls = []

    def throttled_second(request, success):
        calls.append(request["CallbackToken"])
        if len(calls) == 2:
            raise CallbackAnswerFailed("ThrottlingException")
        return real(request, success)

    callbacks.send = throttled_second  # type: ignore[method-assign]
    with pytest.raises(CallbackAnswerFailed):
        answer(log, callbacks, decision_key="job-1", policy_sha256=SHA)
    assert len(log.get("job-1", SHA).answers) == 1
    callbacks.send = real  # type: ignore[method-assign]
    retry = answer(log, callbacks, decision_key="job-1", policy_sha256=SHA)
    assert retry.answered == 1 and len(log.get("job-1", SHA).answers) == 2


def test_answering_with_a_decision_that_is_not_complete_is_an_error(log, executions, callbacks):
    claim(log, executions, OWNER)
    with pytest.raises(DecisionNotComplete):
        answer(log, callbacks, decision_key="job-1", policy_sha256=SHA)
    assert callbacks.sent == []


# -- answering with a failure --------------------------------------------------------------------------


def test_a_failing_owner_closes_its_decision_and_fails_every_token_it_held(log, executions, callbacks):
    claim(log, executions, OWNER)
    executions.running.add(OWNER)
    claim(log, executions, CALLER)
    execution_input = {"TrainingJobName": "job-1", "pipeline_callback": {"token": TOKENS[OWNER]}}
    result = answer(log, callbacks, kind="failure", execution_input=execution_input, error="GateError", cause="boom")
    assert result.answered == 2 and {c["success"] for c in callbacks.sent} == {False}
    item = log.get("job-1", SHA)
    assert item.closed_by == OWNER and item.status == "decided"
    # No token is left with it any more, and the next caller takes the decision over.
    assert not log.add_waiting("job-1", SHA, OWNER, "x")
    late = claim(log, executions, LATE)
    assert (late.claim, late.resumed) == (Claim.OWNER, True)


def test_a_failing_caller_whose_token_waits_with_a_running_owner_leaves_it_there(log, executions, callbacks):
    claim(log, executions, OWNER)
    executions.running.add(OWNER)
    claim(log, executions, CALLER)
    execution_input = json.dumps({"TrainingJobName": "job-1", "pipeline_callback": {"token": TOKENS[CALLER]}})
    result = answer(
        log, callbacks, kind="failure", execution_arn=CALLER, execution_input=execution_input, error="Aborted"
    )
    assert result.answered == 0 and callbacks.sent == []


def test_a_failure_before_any_claim_fails_its_own_token_the_same_way_every_time(log, callbacks):
    execution_input = {"TrainingJobName": "job-9", "colour": "red", "pipeline_callback": {"token": "Early00001"}}
    first = answer(log, callbacks, kind="failure", execution_input=execution_input, error="GateError", cause="bad")
    again = answer(log, callbacks, kind="failure", execution_input=execution_input, error="GateError", cause="bad")
    assert (first.answered, again.answered) == (1, 1)
    assert callbacks.sent[0] == callbacks.sent[1]  # the same request: SageMaker takes the second as done


def test_a_completed_decision_whose_owner_died_before_answering_is_answered_with_the_decision(
    log, executions, callbacks
):
    claim(log, executions, OWNER)
    log.complete("job-1", SHA, OWNER, "registered")
    execution_input = {"TrainingJobName": "job-1", "pipeline_callback": {"token": TOKENS[OWNER]}}
    result = answer(log, callbacks, kind="failure", execution_input=execution_input, error="States.Timeout")
    (sent,) = callbacks.sent
    assert result.answered == 1 and sent["success"] is True


# -- the bridge ----------------------------------------------------------------------------------------


class FakeStarter:
    def __init__(self, exists: set[str] | None = None, fail: Exception | None = None):
        self.exists = exists or set()
        self.fail = fail
        self.started: list[tuple[str, str]] = []

    def start(self, state_machine_arn: str, name: str, execution_input: str) -> str | None:
        if self.fail is not None:
            raise self.fail
        if name in self.exists:
            return None
        self.started.append((name, execution_input))
        return PREFIX + name


def record(message_id: str, body: dict | str) -> dict:
    return {"messageId": message_id, "body": body if isinstance(body, str) else json.dumps(body)}


def test_the_bridge_starts_one_execution_per_message_and_reports_only_what_sqs_should_deliver_again(callbacks):
    starter = FakeStarter(exists={"pipeline-Again00001-" + "x"})
    ports = BridgePorts(executions=starter, callbacks=callbacks, state_machine_arn="sm")  # type: ignore[arg-type]
    good = {"token": "Good000001", "arguments": {"TrainingJobName": "job-1"}}
    stop = {"token": "Stop000001", "arguments": {}, "status": "Stopping"}
    results = start_from_batch([record("1", good), record("2", "garbage"), record("3", stop)], ports)
    assert [r.outcome for r in results] == ["started", "refused", "stop_answered"]
    assert batch_response(results) == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    (name, document) = starter.started[0]
    assert name.startswith("pipeline-Good000001-")
    assert json.loads(document)["pipeline_callback"] == {"token": "Good000001"}
    (stopped,) = callbacks.sent
    assert (stopped["CallbackToken"], stopped["success"]) == ("Stop000001", False)


def test_a_start_that_fails_is_delivered_again_and_one_already_made_is_not(callbacks):
    body = {"token": "Dup0000001", "arguments": {"TrainingJobName": "job-1"}}
    first = FakeStarter()
    ports = BridgePorts(executions=first, callbacks=callbacks, state_machine_arn="sm")  # type: ignore[arg-type]
    (started,) = start_from_batch([record("1", body)], ports)
    again = FakeStarter(exists={first.started[0][0]})
    (duplicate,) = start_from_batch([record("1", body)], BridgePorts(again, callbacks, "sm"))  # type: ignore[arg-type]
    assert (started.outcome, duplicate.outcome) == ("started", "already_started")
    broken = FakeStarter(fail=RuntimeError("throttled"))
    (failed,) = start_from_batch([record("1", body)], BridgePorts(broken, callbacks, "sm"))  # type: ignore[arg-type]
    assert failed.outcome == "failed" and batch_response([failed])["batchItemFailures"] == [{"itemIdentifier": "1"}]


def test_arguments_too_large_for_an_execution_fail_the_step_instead_of_retrying_forever(callbacks):
    starter = FakeStarter()
    body = {"token": "Huge000001", "arguments": {"TrainingJobName": "job-1", "note": "x" * (256 * 1024)}}
    (result,) = start_from_batch([record("1", body)], BridgePorts(starter, callbacks, "sm"))  # type: ignore[arg-type]
    assert result.outcome == "refused_answered" and starter.started == []
    assert batch_response([result]) == {"batchItemFailures": []}
    (sent,) = callbacks.sent
    assert sent["success"] is False and "over 256 KiB" in sent["FailureReason"]


# -- an answer written before it is sent --------------------------------------------------------------------


def test_an_answer_is_written_on_the_item_before_it_is_sent(log, executions, callbacks):
    claim(log, executions, OWNER)
    log.complete("job-1", SHA, OWNER, "registered")
    writes_before = len(log.writes)
    answer(log, callbacks, decision_key="job-1", policy_sha256=SHA)
    assert log.writes[writes_before:] == ["answering", "answers"]
    written = json.loads(log.get("job-1", SHA).answering[TOKENS[OWNER]])
    assert (written["success"], written["client_request_token"]) == (True, callbacks.sent[0]["ClientRequestToken"])


def test_a_failure_written_but_not_sent_is_sent_as_written_by_whoever_comes_next(log, executions, callbacks):
    claim(log, executions, OWNER)
    executions.running.add(OWNER)
    claim(log, executions, CALLER)
    execution_input = {"TrainingJobName": "job-1", "pipeline_callback": {"token": TOKENS[OWNER]}}
    callbacks.fail_with = CallbackAnswerFailed("the function died between the write and the send")
    with pytest.raises(CallbackAnswerFailed):
        answer(log, callbacks, kind="failure", execution_input=execution_input, error="GateError", cause="boom")
    callbacks.fail_with = None
    item = log.get("job-1", SHA)
    assert sorted(item.answering) == sorted(TOKENS[e] for e in (OWNER, CALLER)) and item.answers == []

    # The alert sees the execution aborted: another error, another cause, but the answers written stand.
    answer(log, callbacks, kind="failure", execution_input=execution_input, error="Aborted")
    assert {c["FailureReason"] for c in callbacks.sent} == {
        f"training-gate GateError: boom (execution {OWNER.rsplit(':', 1)[-1]})"
    }
    assert tokens(log.get("job-1", SHA).answers) == sorted(TOKENS[e] for e in (OWNER, CALLER))


def test_a_taker_over_sends_the_failure_its_predecessor_wrote_and_not_the_decision(log, executions, callbacks):
    claim(log, executions, OWNER)
    execution_input = {"TrainingJobName": "job-1", "pipeline_callback": {"token": TOKENS[OWNER]}}
    callbacks.fail_with = CallbackAnswerFailed("throttled, and the execution ended")
    with pytest.raises(CallbackAnswerFailed):
        answer(log, callbacks, kind="failure", execution_input=execution_input, error="GateError", cause="boom")
    callbacks.fail_with = None
    late = claim(log, executions, LATE)  # takes the given-up decision over, leaving its own token
    assert (late.claim, late.resumed) == (Claim.OWNER, True)
    log.complete("job-1", SHA, LATE, "registered")
    result = answer(log, callbacks, execution_arn=LATE, decision_key="job-1", policy_sha256=SHA)
    by_token = {c["CallbackToken"]: c for c in callbacks.sent}
    assert by_token[TOKENS[OWNER]]["success"] is False  # answered as its holder said when it gave up
    assert by_token[TOKENS[LATE]]["success"] is True
    assert (result.answered, result.refused) == (2, 0)


def test_a_duplicates_own_answer_goes_through_the_item_so_the_alert_sends_it_as_written(log, executions, callbacks):
    claim(log, executions, OWNER)
    log.complete("job-1", SHA, OWNER, "registered")
    answer(log, callbacks, decision_key="job-1", policy_sha256=SHA)
    own = PipelineCallback(token=TOKENS[CALLER], fail_step_on_reject=False)
    callbacks.fail_with = CallbackAnswerFailed("the function died between the write and the send")
    with pytest.raises(CallbackAnswerFailed):
        answer(log, callbacks, execution_arn=CALLER, callback=own, decision_key="job-1", policy_sha256=SHA)
    callbacks.fail_with = None
    assert TOKENS[CALLER] in log.get("job-1", SHA).answering
    # The execution was aborted: the alert owes the token the decision written for it, not a failure.
    execution_input = {"TrainingJobName": "job-1", "pipeline_callback": {"token": TOKENS[CALLER]}}
    result = answer(
        log, callbacks, kind="failure", execution_arn=CALLER, execution_input=execution_input, error="Aborted"
    )
    assert result.answered == 1 and callbacks.sent[-1]["CallbackToken"] == TOKENS[CALLER]
    assert callbacks.sent[-1]["success"] is True


def test_a_success_another_execution_wrote_meanwhile_is_sent_with_the_complete_decision(log, executions, callbacks):
    claim(log, executions, OWNER)
    stale = log.get("job-1", SHA)  # read before the decision completed
    log.complete("job-1", SHA, OWNER, "registered")
    completed = log.get("job-1", SHA)
    first = answer_decision(completed.for_pipeline(), completed.waiting_tokens()[0])
    log.intend_answer("job-1", SHA, TOKENS[OWNER], AnswerIntent.of(first, OWNER).entry())
    ports = AnswerPorts(log=log, callbacks=callbacks)  # type: ignore[arg-type]
    answer_item(stale, LATE, ports, lambda w: answer_failure(w.token, LATE, "Aborted", None))
    (sent,) = callbacks.sent
    assert sent["success"] is True and sent["ClientRequestToken"] == first.client_request_token
    assert sent["OutputParameters"][0] == {"Name": "decision", "Value": "pass"}
