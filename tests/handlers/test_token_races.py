"""The decision table's writes that keep every pipeline token: on emulated DynamoDB, whose conditional writes
are atomic (as DynamoDB makes them). Whatever the order of leaving a token and completing (or giving up) the
decision, every token is either in what the completion returned or refused to its caller, never both and
never neither. And the callback as the workflow's first step validates it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from training_gate.dal.dynamodb import DecisionLog
from training_gate.domain.decision_record import DecisionItem, ItemStatus
from training_gate.domain.pipeline import WaitingToken
from training_gate_cli.local_engine import moto_hooks

TABLE = "decisions"
OWNER = "arn:aws:states:us-east-1:123456789012:execution:training-gate:owner"


@pytest.fixture
def log() -> Iterator[DecisionLog]:
    with mock_aws(), moto_hooks.atomic_dynamodb_writes():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "training_job", "KeyType": "HASH"},
                {"AttributeName": "policy_sha256", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "training_job", "AttributeType": "S"},
                {"AttributeName": "policy_sha256", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        log = DecisionLog(TABLE, dynamodb)
        log.create(
            DecisionItem(
                training_job="job-1",
                policy_sha256="sha",
                status=ItemStatus.DECIDED,
                owner=OWNER,
                outcome="pass",
                notification_subject="s",
                waiting=[WaitingToken(token="Owner00001", by=OWNER).entry()],
            )
        )
        yield log


def entry(index: int) -> str:
    return WaitingToken(token=f"Token{index:05d}").entry()


def test_a_token_left_before_the_completion_is_in_what_the_completion_returns(log: DecisionLog):
    assert log.add_waiting("job-1", "sha", OWNER, entry(1))
    completed = log.complete("job-1", "sha", OWNER, "registered")
    assert sorted(w.token for w in completed.pending_tokens()) == ["Owner00001", "Token00001"]


def test_a_token_left_after_the_completion_is_refused_to_its_caller(log: DecisionLog):
    log.complete("job-1", "sha", OWNER, "registered")
    assert not log.add_waiting("job-1", "sha", OWNER, entry(2))
    assert [w.token for w in log.get("job-1", "sha").waiting_tokens()] == ["Owner00001"]


def test_no_token_is_left_with_an_owner_that_gave_the_decision_up_nor_with_another_owner(log: DecisionLog):
    closed = log.close("job-1", "sha", OWNER)
    assert closed is not None and [w.token for w in closed.pending_tokens()] == ["Owner00001"]
    assert not log.add_waiting("job-1", "sha", OWNER, entry(3))
    assert not log.add_waiting("job-1", "sha", "someone-else", entry(3))
    assert log.close("job-1", "sha", "someone-else") is None
    # A taker-over is a new owner: tokens may be left with it, and its own goes in with the take-over.
    assert log.take_over(log.get("job-1", "sha"), "taker", waiting=entry(4))
    assert log.add_waiting("job-1", "sha", "taker", entry(5))
    assert sorted(w.token for w in log.get("job-1", "sha").pending_tokens()) == [
        "Owner00001",
        "Token00004",
        "Token00005",
    ]


@pytest.mark.parametrize("ending", ["complete", "close"])
def test_tokens_left_while_the_decision_ends_are_each_either_returned_or_refused(log: DecisionLog, ending: str):
    callers = 24
    start = threading.Barrier(callers + 1)
    refused: list[str] = []
    lock = threading.Lock()

    def leave(index: int) -> None:
        start.wait()
        if not log.add_waiting("job-1", "sha", OWNER, entry(index)):
            with lock:
                refused.append(f"Token{index:05d}")

    threads = [threading.Thread(target=leave, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    start.wait()
    ended = (
        log.complete("job-1", "sha", OWNER, "registered") if ending == "complete" else log.close("job-1", "sha", OWNER)
    )
    for thread in threads:
        thread.join()
    assert ended is not None
    returned = {w.token for w in ended.pending_tokens()} - {"Owner00001"}
    assert returned.isdisjoint(refused)
    assert returned | set(refused) == {f"Token{i:05d}" for i in range(callers)}
    # Nothing arrived after the end: the item holds exactly what the ending write returned.
    assert {w.token for w in log.get("job-1", "sha").waiting_tokens()} == returned | {"Owner00001"}


def test_answers_are_recorded_once_per_entry_and_never_make_a_stub_item(log: DecisionLog):
    from training_gate.domain.pipeline import AnsweredToken

    answered = AnsweredToken(token="Owner00001", answer="success", by=OWNER).entry()
    log.record_answers("job-1", "sha", [answered, answered])
    log.record_answers("job-1", "sha", [answered])
    assert log.get("job-1", "sha").answers == [answered]
    log.record_answers("no-such-job", "sha", [answered])
    assert log.get("no-such-job", "sha") is None


def test_the_first_answer_written_for_a_token_stands_whoever_writes_at_the_same_time(log: DecisionLog):
    writers = 12
    start = threading.Barrier(writers)
    stood: list[str | None] = []
    lock = threading.Lock()

    def write(index: int) -> None:
        start.wait()
        result = log.intend_answer("job-1", "sha", "Owner00001", f'{{"by": "writer-{index}"}}')
        with lock:
            stood.append(result)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The map did not exist: one writer created it, every other one got its entry back.
    (winner,) = set(stood)
    assert log.get("job-1", "sha").answering == {"Owner00001": winner}
    assert log.intend_answer("job-1", "sha", "Token00001", "second") == "second"
    assert log.get("job-1", "sha").answering == {"Owner00001": winner, "Token00001": "second"}
    assert log.intend_answer("no-such-job", "sha", "Owner00001", "x") is None
    assert log.get("no-such-job", "sha") is None


def test_the_callbacks_choice_of_failing_on_reject_is_fixed_by_the_first_step_and_a_dry_run_refused():
    from training_gate.domain.policy import Policy
    from training_gate.logic.validate import InputDefaults, InvalidInput, validate_input

    policy = Policy.model_validate({"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}]})
    defaults = InputDefaults(
        poll_interval_seconds=0, max_polls=1, policy=policy, allowed_groups=["g"], fail_step_on_reject=True
    )
    given = {"TrainingJobName": "job-1", "pipeline_callback": {"token": "AbCdE12345"}}
    assert validate_input(given, defaults).pipeline_callback.fail_step_on_reject is True
    own = {"TrainingJobName": "job-1", "pipeline_callback": {"token": "AbCdE12345", "fail_step_on_reject": False}}
    assert validate_input(own, defaults).pipeline_callback.fail_step_on_reject is False
    with pytest.raises(InvalidInput, match="dry_run: a dry run records no decision"):
        validate_input({**given, "dry_run": True}, defaults)
    with pytest.raises(InvalidInput, match=r"pipeline_callback\.token: String should match pattern"):
        validate_input({"TrainingJobName": "job-1", "pipeline_callback": {"token": "short"}}, defaults)
