"""EvaluatePolicy's use case over in-memory ports: decide, report, record."""

from __future__ import annotations

import pytest

from tests.support.builders import metric, passing_inspection, training_job
from tests.support.fakes import FakeExecutions, FakeJobs, FakeLog, FakeRegistry, FakeStore
from training_gate.domain.contract import Claim, MetricsSummary
from training_gate.domain.decision_record import DecisionItem
from training_gate.domain.inputs import GateInput
from training_gate.domain.models import MetricsResult
from training_gate.domain.policy import Outcome, Policy
from training_gate.logic.evaluate import EvaluatePorts, EvaluateRequest, GateSettings, PolicyError, evaluate

POLICY = Policy.model_validate({"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}]})
ME = "arn:aws:states:us-east-1:123456789012:execution:training-gate:me"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:training-gate:other"


def collected(accuracy: float) -> MetricsResult:
    value = metric("accuracy", accuracy)
    return MetricsResult(metrics={"accuracy": value}, details=[value])


def request(execution_arn: str = ME, dry_run: bool = False, overrides: dict | None = None) -> EvaluateRequest:
    return EvaluateRequest(
        job=training_job("job-1"),
        inspection=passing_inspection(),
        metrics=MetricsSummary(metrics_uri=None),
        settings=GateInput(
            training_job_name="job-1", poll_interval_seconds=0, max_polls=1, dry_run=dry_run, policy_overrides=overrides
        ),
        execution_arn=execution_arn,
    )


@pytest.fixture
def ports() -> EvaluatePorts:
    return EvaluatePorts(
        store=FakeStore(),  # type: ignore[arg-type]
        registry=FakeRegistry(),  # type: ignore[arg-type]
        jobs=FakeJobs(),  # type: ignore[arg-type]
        load_stored=lambda group: None,
        log=FakeLog(),  # type: ignore[arg-type]
        executions=FakeExecutions(),  # type: ignore[arg-type]
    )


GATE = GateSettings(default_policy=POLICY, default_group="models", allowed_groups=["models"], reports_bucket="reports")


def test_a_first_decision_is_owned_stored_whole_and_reported(ports):
    evaluation = evaluate(request(), collected(0.95), GATE, ports)
    assert (evaluation.claim, evaluation.outcome, evaluation.decided_by) == (Claim.OWNER, Outcome.PASS, ME)
    (item,) = ports.log.items.values()
    assert (item.owner, item.status, item.outcome) == (ME, "decided", "pass")
    assert item.notification_subject == evaluation.notification.subject
    assert evaluation.report_uri == "s3://reports/reports/job-1/me/report.json"
    assert ports.store.get_json(evaluation.report_uri)["decision"]["outcome"] == "pass"
    assert evaluation.observed_values == {"accuracy": 0.95}


def test_the_same_execution_again_finds_its_own_decision_and_writes_nothing_new(ports):
    first = evaluate(request(), collected(0.95), GATE, ports)
    writes = list(ports.log.writes)
    again = evaluate(request(), collected(0.95), GATE, ports)
    assert (again.claim, again.resumed, again.outcome) == (Claim.OWNER, False, first.outcome)
    assert ports.log.writes == writes


def test_a_complete_decision_makes_a_duplicate_naming_it(ports):
    evaluate(request(), collected(0.95), GATE, ports)
    ports.log.complete("job-1", POLICY.sha256(), ME, "registered")
    duplicate = evaluate(request(OTHER), collected(0.95), GATE, ports)
    assert (duplicate.claim, duplicate.decided_by, duplicate.completion) == (Claim.DUPLICATE, ME, "registered")
    assert ports.log.get("job-1", POLICY.sha256()).duplicate_executions == [OTHER]


def test_an_unfinished_decision_whose_owner_runs_is_in_progress(ports):
    evaluate(request(), collected(0.95), GATE, ports)
    ports.executions.running.add(ME)
    in_progress = evaluate(request(OTHER), collected(0.95), GATE, ports)
    assert (in_progress.claim, in_progress.owner_execution) == (Claim.IN_PROGRESS, ME)
    assert ports.log.get("job-1", POLICY.sha256()).owner == ME


def test_an_unfinished_decision_whose_owner_died_is_taken_over_and_its_stored_decision_kept(ports):
    evaluate(request(), collected(0.5), GATE, ports)  # decided reject, then the owner died
    taken = evaluate(request(OTHER), collected(0.95), GATE, ports)  # would pass on its own evidence
    assert (taken.claim, taken.resumed, taken.outcome, taken.decided_by) == (Claim.OWNER, True, Outcome.REJECT, ME)
    item = ports.log.get("job-1", POLICY.sha256())
    assert (item.owner, item.takeovers) == (OTHER, [OTHER])
    assert taken.observed_values == {}  # already counted by the execution that decided


def test_a_legacy_item_without_a_stored_decision_is_decided_anew(ports):
    ports.log.items[("job-1", POLICY.sha256())] = DecisionItem(
        training_job="job-1", policy_sha256=POLICY.sha256(), status="decided", outcome="reject"
    )
    taken = evaluate(request(OTHER), collected(0.95), GATE, ports)
    assert (taken.claim, taken.outcome, taken.decided_by) == (Claim.OWNER, Outcome.PASS, OTHER)
    assert ports.log.get("job-1", POLICY.sha256()).notification_subject == taken.notification.subject


def test_a_dry_run_records_nothing(ports):
    evaluation = evaluate(request(dry_run=True), collected(0.95), GATE, ports)
    assert evaluation.claim == Claim.NOT_RECORDED and ports.log.items == {}
    assert evaluation.notification.message.startswith("DRY RUN")


def test_an_override_naming_a_group_outside_the_allowed_set_is_refused(ports):
    with pytest.raises(PolicyError, match="'elsewhere' is not one the gate may register in"):
        evaluate(request(overrides={"outcome": {"model_package_group": "elsewhere"}}), collected(0.95), GATE, ports)
    assert ports.log.items == {}


def test_every_text_the_state_carries_is_bounded_however_long_the_reasons(ports):
    many = Policy.model_validate(
        {"rules": [{"metric": f"metric_{i:03d}_" + "x" * 80, "operator": ">", "threshold": 0.9} for i in range(200)]}
    )
    gate = GATE.model_copy(update={"default_policy": many})
    evaluation = evaluate(request(), collected(0.95), gate, ports)
    assert evaluation.outcome == Outcome.INCONCLUSIVE
    assert len(evaluation.summary) <= 1000 and len(evaluation.table) <= 4000
    assert len(evaluation.notification.message) <= 8000 and len(evaluation.reasons) <= 20
    assert len(evaluation.model_dump_json()) < 64 * 1024
