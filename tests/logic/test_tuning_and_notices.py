"""A tuning job's candidates, the owners' message, a failed job's notice and the endings an item
records, over in-memory ports."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError

from tests.support.builders import metric, passing_inspection, training_job
from tests.support.fakes import FakeExecutions, FakeJobs, FakeLog, FakeRegistry, FakeStore
from training_gate.dal.sagemaker import parse_tuning_job
from training_gate.dal.stepfunctions import ExecutionDescription
from training_gate.domain.contract import Claim, MetricsSummary, NotifyRequest, TuningCandidate, TuningContext
from training_gate.domain.decision_record import DecisionItem, ItemStatus
from training_gate.domain.inputs import GateInput
from training_gate.domain.models import MetricsResult
from training_gate.domain.policy import Outcome, Policy
from training_gate.logic.alert import AlertPorts, ExecutionStatusChange, alert_operations
from training_gate.logic.evaluate import EvaluatePorts, EvaluateRequest, GateSettings, evaluate
from training_gate.logic.failure import DescribeFailureRequest, FailurePorts, describe_failure
from training_gate.logic.notify import NotificationFailed, NotificationThrottled, NotifyPorts, notify_owners
from training_gate.logic.tuning import describe_tuning_job

POLICY = Policy.model_validate({"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}]})
GATE = GateSettings(default_policy=POLICY, default_group="models", allowed_groups=["models"], reports_bucket="reports")
ME = "arn:aws:states:us-east-1:123456789012:execution:training-gate:me"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:training-gate:other"
TUNING_ARN = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/hpo"


def summary(name: str, value: float | None, status: str = "Completed", definition: str | None = None) -> dict:
    found = {"TrainingJobName": name, "TrainingJobArn": f"arn:x/{name}", "TrainingJobStatus": status}
    if value is not None:
        found["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": "Maximize",
            "MetricName": "validation:accuracy",
            "Value": value,
        }
    if definition:
        found["TrainingJobDefinitionName"] = definition
    return found


def described(best: dict | None = None, **fields) -> dict:
    answer = {
        "HyperParameterTuningJobName": "hpo",
        "HyperParameterTuningJobArn": TUNING_ARN,
        "HyperParameterTuningJobStatus": "Completed",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:accuracy"},
            "ResourceLimits": {"MaxParallelTrainingJobs": 2},
        },
        "TrainingJobStatusCounters": {"Completed": 4, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 1},
    }
    if best is not None:
        answer["BestTrainingJob"] = best
    answer.update(fields)
    return answer


# -- the candidates ------------------------------------------------------------------------------


def test_the_best_job_comes_first_then_the_next_best_without_repeating_it():
    ranked = [summary("b", 0.97), summary("c", 0.95), summary("a", 0.93), summary("d", 0.91)]
    tuning = parse_tuning_job(described(summary("b", 0.97)), ranked, limit=3)
    assert [c.training_job_name for c in tuning.candidates] == ["b", "c", "a"]
    assert tuning.current == tuning.candidates[0]
    assert (tuning.children, tuning.children_completed, tuning.objective_metric) == (5, 4, "validation:accuracy")


def test_a_warm_starts_overall_best_is_named_and_never_a_candidate():
    tuning = parse_tuning_job(
        described(summary("b", 0.9), OverallBestTrainingJob=summary("parent-job", 0.99)), [], limit=1
    )
    assert [c.training_job_name for c in tuning.candidates] == ["b"]
    assert tuning.overall_best_training_job == "parent-job"
    same = parse_tuning_job(described(summary("b", 0.9), OverallBestTrainingJob=summary("b", 0.9)), [], limit=1)
    assert same.overall_best_training_job is None


def test_several_training_definitions_give_the_objective_and_name_each_candidates_definition():
    definitions = [
        {"DefinitionName": "forest", "TuningObjective": {"Type": "Minimize", "MetricName": "validation:loss"}},
        {"DefinitionName": "linear", "TuningObjective": {"Type": "Minimize", "MetricName": "validation:loss"}},
    ]
    answer = described(summary("b", 0.2, definition="linear"), TrainingJobDefinitions=definitions)
    del answer["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    tuning = parse_tuning_job(answer, [], limit=1)
    assert (tuning.objective_metric, tuning.objective_type, tuning.definitions) == (
        "validation:loss",
        "Minimize",
        ["forest", "linear"],
    )
    assert tuning.candidates[0].definition_name == "linear"


def test_no_best_job_means_no_candidate():
    tuning = parse_tuning_job(described(None, HyperParameterTuningJobStatus="Stopped"), [], limit=3)
    assert (tuning.candidates, tuning.current) == ([], None)


@dataclass
class Tunings:
    answer: dict
    asked: list[tuple[str | None, int]] = field(default_factory=list)
    ranked: list[dict] = field(default_factory=list)

    def describe(self, name: str) -> dict:
        return self.answer

    def best_completed(self, name: str, objective_type: str | None, count: int) -> list[dict]:
        self.asked.append((objective_type, count))
        return self.ranked[:count]


def test_the_list_is_read_only_for_more_than_one_candidate_in_the_objectives_order():
    tunings = Tunings(described(summary("b", 0.97)), ranked=[summary("b", 0.97), summary("c", 0.9)])
    assert len(describe_tuning_job("hpo", 1, tunings).candidates) == 1 and tunings.asked == []  # type: ignore[arg-type]
    assert len(describe_tuning_job("hpo", 2, tunings).candidates) == 2  # type: ignore[arg-type]
    assert tunings.asked == [("Maximize", 3)]


# -- judging candidates ------------------------------------------------------------------------------


def context(*names_and_values: tuple[str, float | None], index: int = 0, tried=()) -> TuningContext:
    """Candidates best first; each one's objective is its accuracy, as the tuning job recorded it."""
    candidates = [
        TuningCandidate(
            training_job_name=n, objective_metric="validation:accuracy", objective_value=v, objective_type="Maximize"
        )
        for n, v in names_and_values
    ]
    return TuningContext(
        tuning_job_name="hpo",
        tuning_job_arn=TUNING_ARN,
        status="Completed",
        children=10,
        children_completed=10,
        candidates=candidates,
        index=index,
        current=candidates[index],
        tried=list(tried),
    )


@dataclass
class Jobs(FakeJobs):
    def describe(self, name: str):
        from training_gate.domain.contract import DescribedJob, JobMetricSources

        return DescribedJob(job=training_job(name), sources=JobMetricSources())


@pytest.fixture
def ports() -> EvaluatePorts:
    return EvaluatePorts(
        store=FakeStore(),  # type: ignore[arg-type]
        registry=FakeRegistry(),  # type: ignore[arg-type]
        jobs=Jobs(),  # type: ignore[arg-type]
        load_stored=lambda group: None,
        log=FakeLog(),  # type: ignore[arg-type]
        executions=FakeExecutions(),  # type: ignore[arg-type]
    )


def judge(ports: EvaluatePorts, tuning: TuningContext, accuracy: float | None, job_name: str | None = None):
    job = training_job(job_name or tuning.current.training_job_name)
    details = [metric("accuracy", accuracy)] if accuracy is not None else []
    return evaluate(
        EvaluateRequest(
            job=job,
            inspection=passing_inspection(),
            metrics=MetricsSummary(metrics_uri=None),
            settings=GateInput(tuning_job_name="hpo", poll_interval_seconds=0, max_polls=1, tuning_candidates=3),
            execution_arn=ME,
            tuning=tuning,
        ),
        MetricsResult(metrics={d.name: d for d in details}, details=details),
        GATE,
        ports,
    )


def test_a_candidate_that_fails_while_others_remain_claims_nothing_and_hands_on_the_next(ports):
    evaluation = judge(ports, context(("a", 0.8), ("b", 0.95)), 0.8)
    assert (evaluation.next_candidate, evaluation.claim) == (True, Claim.NOT_RECORDED)
    assert ports.log.items == {}
    following = evaluation.tuning
    assert (following.index, following.current.training_job_name) == (1, "b")
    assert [(r.training_job_name, r.outcome, r.reasons) for r in following.tried] == [
        ("a", Outcome.REJECT, ["accuracy 0.8 not > 0.9"])
    ]


def test_the_objective_the_tuning_job_recorded_is_a_metric_source(ports):
    evaluation = judge(ports, context(("a", 0.95)), None)
    assert evaluation.outcome == Outcome.PASS  # no other source has the accuracy: the objective decides
    report = ports.store.get_json(evaluation.report_uri)
    assert report["metrics"]["metrics"]["accuracy"]["source"] == "tuning_objective"


def test_the_first_passing_candidate_is_the_tuning_jobs_decision_about_it(ports):
    first = judge(ports, context(("a", 0.8), ("b", 0.95)), 0.8)
    evaluation = judge(ports, first.tuning, 0.95)
    assert (evaluation.claim, evaluation.outcome, evaluation.decision_key) == (
        Claim.OWNER,
        Outcome.PASS,
        "hyper-parameter-tuning-job/hpo",
    )
    (item,) = ports.log.items.values()
    assert (item.training_job, item.tuning_job_name) == ("hyper-parameter-tuning-job/hpo", "hpo")
    assert training_job("b").model_dump_json() == item.judged_job
    report = ports.store.get_json(evaluation.report_uri)
    assert [c["training_job_name"] for c in report["tuning"]["candidates"]] == ["a", "b"]


def test_no_candidate_passing_rejects_the_best_with_every_reason_aligned_with_its_code(ports):
    first = judge(ports, context(("a", 0.8), ("b", None)), 0.8)
    evaluation = judge(ports, first.tuning, None)
    assert (evaluation.outcome, evaluation.claim) == (Outcome.REJECT, Claim.OWNER)
    (item,) = ports.log.items.values()
    assert item.judged_job == training_job("a").model_dump_json()
    assert item.reasons == "a: accuracy 0.8 not > 0.9; b: accuracy was not found in any source"
    assert item.reason_codes == "THRESHOLD_NOT_MET,METRIC_MISSING"
    assert evaluation.notification.subject.startswith("Model rejected: tuning job hpo - a: accuracy 0.8 not")
    assert ports.store.get_json(evaluation.report_uri)["training_job"] == "a"


def test_a_job_that_is_not_the_current_candidate_is_refused(ports):
    tuning = context(("a", 0.95), ("b", 0.93))
    with pytest.raises(ValueError, match="not the current candidate"):
        judge(ports, tuning, 0.95, job_name="b")


# -- the owners' message --------------------------------------------------------------------------------


@dataclass
class Topic:
    sent: list[tuple[str, str, dict]] = field(default_factory=list)
    refuse: str | None = None

    def publish(self, subject: str, message: str, attributes: dict | None = None) -> str:
        if self.refuse:
            raise ClientError({"Error": {"Code": self.refuse, "Message": "no"}}, "Publish")
        self.sent.append((subject, message, attributes or {}))
        return f"message-{len(self.sent)}"


def decided(log: FakeLog, owner: str = ME, outcome: str = "reject") -> NotifyRequest:
    skipped = outcome == "skipped"
    log.create(
        DecisionItem(
            training_job="job-1",
            policy_sha256="sha",
            status=ItemStatus.DECIDED,
            owner=owner,
            execution_arn=owner,
            outcome=outcome,
            reason_codes="NOT_A_SKLEARN_MODEL" if skipped else "THRESHOLD_NOT_MET",
            model_package_group="models",
            notification_subject="Model skipped, not scikit-learn: job-1" if skipped else "Model rejected: job-1",
            notification_message="retrain",
        )
    )
    return NotifyRequest(decision_key="job-1", policy_sha256="sha", execution_arn=ME)


def test_the_owner_sends_once_and_a_retry_sends_nothing():
    log, topic = FakeLog(), Topic()
    request = decided(log)
    first = notify_owners(request, NotifyPorts(log=log, topic=topic, operations=Topic()))  # type: ignore[arg-type]
    again = notify_owners(request, NotifyPorts(log=log, topic=topic, operations=Topic()))  # type: ignore[arg-type]
    assert (first.completion, first.sent, again.completion, again.sent) == ("notified", True, "notified", False)
    ((subject, _, attributes),) = topic.sent
    assert subject == "Model rejected: job-1"  # the stored message, not one built again
    assert attributes == {"decision": "reject", "model_package_group": "models", "reason_codes": ["THRESHOLD_NOT_MET"]}
    item = log.get("job-1", "sha")
    assert (item.status, item.completion, item.notified_by, item.notifying) == ("complete", "notified", ME, ME)
    assert log.writes.index("notifying") < log.writes.index("notification_message_id,notified_by")


def test_a_skipped_decision_tells_operations_once_and_completes_only_after_they_were_told():
    log, owners, operations = FakeLog(), Topic(), Topic()
    request = decided(log, outcome="skipped")
    first = notify_owners(request, NotifyPorts(log=log, topic=owners, operations=operations))  # type: ignore[arg-type]
    again = notify_owners(request, NotifyPorts(log=log, topic=owners, operations=operations))  # type: ignore[arg-type]
    assert (first.sent, again.sent) == (True, False)
    assert owners.sent == []  # nothing for the owners to retrain
    ((subject, _, attributes),) = operations.sent
    assert subject == "Model skipped, not scikit-learn: job-1"
    assert (attributes["decision"], attributes["reason_codes"]) == ("skipped", ["NOT_A_SKLEARN_MODEL"])
    item = log.get("job-1", "sha")
    assert (item.status, item.completion, item.notified_by) == ("complete", "skipped", ME)
    assert log.writes.index("notification_message_id,notified_by") < log.writes.index("completion,status")


def test_operations_refusing_the_skip_notice_leave_the_decision_unfinished_for_a_rerun():
    log = FakeLog()
    request = decided(log, outcome="skipped")
    ports = NotifyPorts(log=log, topic=Topic(), operations=Topic(refuse="KMSDisabled"))
    with pytest.raises(NotificationFailed, match="the operations' topic refused"):
        notify_owners(request, ports)  # type: ignore[arg-type]
    item = log.get("job-1", "sha")
    assert (item.status, item.notified_by) == ("decided", None)


def test_an_execution_that_lost_the_decision_sends_nothing_and_says_so_on_the_item():
    log, topic = FakeLog(), Topic()
    request = decided(log, owner=OTHER)
    assert notify_owners(request, NotifyPorts(log=log, topic=topic, operations=Topic())).completion == "superseded"  # type: ignore[arg-type]
    assert topic.sent == []
    ending = log.get("job-1", "sha").endings["me"]
    assert (ending.ending, ending.error) == ("Superseded", "NotOwner") and OTHER in (ending.cause or "")


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("KMSThrottling", NotificationThrottled),
        ("InternalError", NotificationThrottled),
        ("KMSDisabled", NotificationFailed),
        ("NotFound", NotificationFailed),
    ],
)
def test_a_refused_message_is_named_for_whether_a_retry_can_help(code, raised):
    log = FakeLog()
    request = decided(log)
    with pytest.raises(raised, match=code):
        notify_owners(request, NotifyPorts(log=log, topic=Topic(refuse=code), operations=Topic()))  # type: ignore[arg-type]
    item = log.get("job-1", "sha")
    assert (item.status, item.notified_by) == ("decided", None)  # unfinished: a re-run tells them


# -- a failed job's notice ------------------------------------------------------------------------------


def notice_request(execution_arn: str | None = ME, dry_run: bool = False) -> DescribeFailureRequest:
    return DescribeFailureRequest(
        job=training_job("job-1", status="Failed", failure_reason="AlgorithmError: exit code 1"),
        settings=GateInput(training_job_name="job-1", poll_interval_seconds=0, max_polls=1, dry_run=dry_run),
        execution_arn=execution_arn,
    )


def test_a_failed_jobs_notice_is_claimed_once_and_a_second_delivery_is_a_duplicate():
    log, executions = FakeLog(), FakeExecutions()
    ports = FailurePorts(log=log, executions=executions)  # type: ignore[arg-type]
    first = describe_failure(notice_request(), ports)
    assert (first.claim, first.decision_key, first.policy_sha256) == (Claim.OWNER, "job-1", "not-judged")
    executions.running.add(ME)
    second = describe_failure(notice_request(OTHER), ports)
    assert (second.claim, second.owner_execution) == (Claim.IN_PROGRESS, ME)
    log.complete("job-1", "not-judged", ME, "notified")
    third = describe_failure(notice_request(OTHER), ports)
    assert (third.claim, third.decided_by) == (Claim.DUPLICATE, ME)
    item = log.get("job-1", "not-judged")
    assert (item.outcome, item.duplicates) == ("training_failed", 1)
    assert item.endings["other"].ending == "DuplicateInProgress"


def test_a_dry_run_or_a_run_without_an_execution_claims_nothing():
    log = FakeLog()
    ports = FailurePorts(log=log, executions=FakeExecutions())  # type: ignore[arg-type]
    assert describe_failure(notice_request(dry_run=True), ports).claim == Claim.NOT_RECORDED
    assert describe_failure(notice_request(execution_arn=None), ports).claim == Claim.NOT_RECORDED
    assert log.items == {}


def test_a_tuning_job_that_failed_is_told_under_its_own_key():
    log = FakeLog()
    tuning = TuningContext(
        tuning_job_name="hpo", tuning_job_arn=TUNING_ARN, status="Failed", failure_reason="ResourceLimitExceeded: x"
    )
    notice = describe_failure(
        DescribeFailureRequest(tuning=tuning, execution_arn=ME),
        FailurePorts(log=log, executions=FakeExecutions()),  # type: ignore[arg-type]
    )
    assert notice.decision_key == "hyper-parameter-tuning-job/hpo"
    assert notice.subject.startswith("Tuning job failed: hpo")
    assert log.get("hyper-parameter-tuning-job/hpo", "not-judged").tuning_job_name == "hpo"


# -- the endings the alert records -----------------------------------------------------------------------


@dataclass
class Described:
    description: ExecutionDescription

    def describe(self, execution_arn: str) -> ExecutionDescription:
        return self.description


class BrokenLog(FakeLog):
    def decisions(self, job: str):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "Query")


@pytest.mark.parametrize("broken", [False, True], ids=["recorded", "table-refuses"])
def test_a_failed_execution_s_ending_is_recorded_on_the_item_it_owned_and_operations_are_told_anyway(broken):
    log = BrokenLog() if broken else FakeLog()
    decided(log)
    decided_other = DecisionItem(training_job="job-1", policy_sha256="other-policy", status="decided", owner=OTHER)
    log.create(decided_other)
    topic = Topic()
    description = ExecutionDescription(
        execution_arn=ME,
        status="FAILED",
        error="NotificationFailed",
        cause="the owners' topic refused the message (KMSDisabled): no",
        input='{"TrainingJobName": "job-1"}',
    )
    result = alert_operations(
        ExecutionStatusChange(executionArn=ME, status="FAILED"),
        AlertPorts(executions=Described(description), operations=topic, log=log),  # type: ignore[arg-type]
    )
    assert result.alerted and len(topic.sent) == 1
    if broken:
        assert "could not record this ending" in topic.sent[0][1]
        return
    ending = log.get("job-1", "sha").endings["me"]
    assert (ending.ending, ending.error) == ("NotificationFailed", "NotificationFailed")
    assert "KMSDisabled" in (ending.cause or "")
    assert log.get("job-1", "other-policy").endings == {}  # not this execution's decision
