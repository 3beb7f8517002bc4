"""RegisterModel and RecordOutcome over in-memory ports: never a second package, never a lost one."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.support.builders import metric, passing_inspection, training_job
from tests.support.fakes import FakeEvents, FakeExecutions, FakeJobs, FakeLog, FakeRegistry, FakeStore
from training_gate.dal.dynamodb import NotOwner
from training_gate.domain.contract import MetricsSummary
from training_gate.domain.inputs import GateInput
from training_gate.domain.models import (
    ArtifactInfo,
    CheckResult,
    CheckStatus,
    InspectionResult,
    MetricsResult,
    ModelInfo,
)
from training_gate.domain.policy import Policy
from training_gate.domain.settings import InferenceConfig
from training_gate.logic.evaluate import EvaluatePorts, EvaluateRequest, GateSettings, evaluate, evaluation_from_item
from training_gate.logic.finish import FinishPorts, RecordOutcomeRequest, record_outcome
from training_gate.logic.register import RegisterPorts, RegisterRequest, register

POLICY = Policy.model_validate({"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}]})
ME = "arn:aws:states:us-east-1:123456789012:execution:training-gate:me"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:training-gate:other"
GATE = GateSettings(default_policy=POLICY, default_group="models", allowed_groups=["models"], reports_bucket="reports")


@pytest.fixture
def world():
    store, log, registry, events = FakeStore(), FakeLog(), FakeRegistry(), FakeEvents()
    return store, log, registry, events


def decide(world, accuracy: float, job=None, inspection=None):
    store, log, registry, _ = world
    job = job or training_job("job-1")
    value = metric("accuracy", accuracy)
    evaluation = evaluate(
        EvaluateRequest(
            job=job,
            inspection=inspection or passing_inspection(),
            metrics=MetricsSummary(metrics_uri=None),
            settings=GateInput(training_job_name=job.training_job_name, poll_interval_seconds=0, max_polls=1),
            execution_arn=ME,
        ),
        MetricsResult(metrics={"accuracy": value}, details=[value]),
        GATE,
        EvaluatePorts(
            store=store,
            registry=registry,
            jobs=FakeJobs(),
            load_stored=lambda g: None,
            log=log,
            executions=FakeExecutions(),
        ),
    )
    return job, evaluation


def do_register(world, job, evaluation, me: str = ME):
    store, log, registry, events = world
    return register(
        RegisterRequest(job=job, evaluation=evaluation, execution_arn=me),
        RegisterPorts(registry=registry, log=log, store=store, events=events),
        InferenceConfig(),
    )


def test_the_request_is_stored_before_it_is_sent_and_carries_no_tags(world):
    _, log, registry, events = world
    job, evaluation = decide(world, 0.95)
    registration = do_register(world, job, evaluation)
    (sent,) = registry.packages.values()
    item = log.get("job-1", POLICY.sha256())
    assert json.loads(item.registration_request) == sent
    assert log.writes.index("registration_request") < log.writes.index("model_package_arn,status")
    assert "Tags" not in sent and sent["CustomerMetadataProperties"]["managed_by"] == "training-gate"
    assert (item.status, item.completion, item.model_package_arn) == (
        "complete",
        "registered",
        registration.model_package_arn,
    )
    assert [e["outcome"] for e in events.published] == ["pass"]


CHECKPOINT = ModelInfo.model_validate(
    {
        "framework": "pytorch",
        "format": "torch-zip",
        "reader": "training-gate",
        "bytes_validated": True,
        "tensors": 4,
        "parameters": 67,
        "dtypes": "float32=67",
        "tensor_bytes": 268,
    }
)


def test_a_checkpoints_size_goes_to_the_package_metadata_and_the_decision_event(world):
    _, log, registry, events = world
    inspection = passing_inspection().model_copy(update={"model": CHECKPOINT})
    job, evaluation = decide(world, 0.95, inspection=inspection)
    assert evaluation.model is not None and evaluation.model["parameters"] == 67
    do_register(world, job, evaluation)
    (sent,) = registry.packages.values()
    metadata = sent["CustomerMetadataProperties"]
    assert {k: v for k, v in metadata.items() if k.startswith("model_")} == {
        "model_framework": "pytorch",
        "model_format": "torch-zip",
        "model_reader": "training-gate",
        "model_bytes_validated": "true",
        "model_parameters": "67",
        "model_dtypes": "float32=67",
        "model_bytes": "268",
    }
    (event,) = events.published
    assert (event["model"]["parameters"], event["model"]["dtypes"], event["model"]["tensor_bytes"]) == (
        67,
        "float32=67",
        268,
    )
    # A taker-over reads the decision back from the table: the model travels with it.
    item = log.get("job-1", POLICY.sha256())
    assert evaluation_from_item(item, evaluation.claim, dry_run=False).model == evaluation.model


def test_a_retry_after_the_package_was_recorded_creates_nothing_and_sends_nothing_twice(world):
    _, _, registry, events = world
    job, evaluation = decide(world, 0.95)
    first = do_register(world, job, evaluation)
    again = do_register(world, job, evaluation)
    assert (again.model_package_arn, again.created, len(registry.packages)) == (first.model_package_arn, False, 1)
    assert len(events.published) == 1


def test_a_taker_over_finds_the_package_the_first_attempt_made_even_when_the_token_is_forgotten(world):
    _, log, registry, _ = world
    job, evaluation = decide(world, 0.95)
    registry.fail_create = RuntimeError("the function died right after CreateModelPackage")
    with pytest.raises(RuntimeError):
        do_register(world, job, evaluation)
    registry.fail_create = None
    # The first attempt's package exists (made before the crash) but was never recorded.
    made = registry.create_package(json.loads(log.get("job-1", POLICY.sha256()).registration_request))
    registry.tokens.clear()
    log.take_over(log.get("job-1", POLICY.sha256()), OTHER)
    registration = do_register(world, job, evaluation, me=OTHER)
    assert (registration.model_package_arn, registration.created, len(registry.packages)) == (made, False, 1)


def test_a_client_token_refusal_falls_back_to_the_package_found_by_its_metadata(world):
    _, log, registry, _ = world
    job, evaluation = decide(world, 0.95)
    do_register(world, job, evaluation)
    arn = log.get("job-1", POLICY.sha256()).model_package_arn
    log.items[("job-1", POLICY.sha256())] = log.get("job-1", POLICY.sha256()).model_copy(
        update={"model_package_arn": None, "registration_request": None, "status": "decided"}
    )
    registry.fail_create = ClientError({"Error": {"Code": "ValidationException", "Message": "token"}}, "Create")
    assert do_register(world, job, evaluation).model_package_arn == arn


def test_an_execution_that_lost_the_decision_registers_nothing(world):
    _, log, registry, events = world
    job, evaluation = decide(world, 0.95)
    log.take_over(log.get("job-1", POLICY.sha256()), OTHER)
    with pytest.raises(NotOwner):
        do_register(world, job, evaluation)
    assert registry.packages == {} and events.published == []


def test_record_outcome_publishes_the_event_once_and_rejects_the_jobs_own_package(world):
    _, log, registry, events = world
    own = "arn:aws:sagemaker:us-east-1:123456789012:model-package/models/7"
    job, evaluation = decide(world, 0.5, job=training_job("job-1", output_model_package_arn=own))
    ports = FinishPorts(log=log, events=events, registry=registry)  # type: ignore[arg-type]
    request = RecordOutcomeRequest(job=job, evaluation=evaluation, execution_arn=ME)
    assert record_outcome(request, ports).completion == "event_published"
    assert record_outcome(request, ports).completion == "event_published"
    assert [e["outcome"] for e in events.published] == ["reject"] and registry.approvals == {own: "Rejected"}
    assert log.get("job-1", POLICY.sha256()).status == "decided"  # complete once the owners are told
    other = RecordOutcomeRequest(job=job, evaluation=evaluation, execution_arn=OTHER)
    assert record_outcome(other, ports).completion == "superseded" and len(events.published) == 1


def test_a_refused_event_leaves_the_decision_unpublished_for_the_next_attempt(world):
    _, log, registry, events = world
    job, evaluation = decide(world, 0.5)
    events.refuse = True
    ports = FinishPorts(log=log, events=events, registry=registry)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="refused"):
        record_outcome(RecordOutcomeRequest(job=job, evaluation=evaluation, execution_arn=ME), ports)
    assert log.get("job-1", POLICY.sha256()).event_published is None


def test_record_outcome_after_the_owners_were_told_says_so_and_sends_nothing(world):
    _, log, registry, events = world
    job, evaluation = decide(world, 0.5)
    ports = FinishPorts(log=log, events=events, registry=registry)  # type: ignore[arg-type]
    request = RecordOutcomeRequest(job=job, evaluation=evaluation, execution_arn=ME)
    record_outcome(request, ports)
    log.complete("job-1", POLICY.sha256(), ME, "notified")  # what NotifyOwners writes once SNS accepted it
    assert record_outcome(request, ports).completion == "notified"
    assert len(events.published) == 1


def test_a_skipped_decision_publishes_its_event_and_never_touches_the_jobs_own_package_nor_completes(world):
    _, log, registry, events = world
    own = "arn:aws:sagemaker:us-east-1:123456789012:model-package/models/7"
    skip = InspectionResult(
        verdict="skip",
        checks=[CheckResult(name="find_model", status=CheckStatus.SKIPPED, detail="no scikit-learn model: none")],
        artifact=ArtifactInfo(uri="s3://bucket/job/output/model.tar.gz"),
    )
    job, evaluation = decide(world, 0.5, job=training_job("job-1", output_model_package_arn=own), inspection=skip)
    assert (evaluation.outcome, evaluation.reason_codes) == ("skipped", ["NOT_A_SKLEARN_MODEL"])
    ports = FinishPorts(log=log, events=events, registry=registry)  # type: ignore[arg-type]
    request = RecordOutcomeRequest(job=job, evaluation=evaluation, execution_arn=ME)
    assert record_outcome(request, ports).completion == "event_published"
    assert record_outcome(request, ports).completion == "event_published"  # a retry: the event once
    assert [e["outcome"] for e in events.published] == ["skipped"] and registry.approvals == {}
    # Operations' notice completes it (NotifyOwners): an execution stopped before it leaves it for a re-run.
    item = log.get("job-1", POLICY.sha256())
    assert (item.status, item.completion, item.event_published) == ("decided", None, "now")
    log.complete("job-1", POLICY.sha256(), ME, "skipped")
    assert record_outcome(request, ports).completion == "notified" and len(events.published) == 1


@pytest.mark.parametrize(
    ("own", "touched"),
    [
        ("arn:aws:sagemaker:us-east-1:123456789012:model-package/models/7", True),
        ("arn:aws:sagemaker:us-east-1:123456789012:model-package/team-private/7", False),  # not the decision's group
        ("arn:aws:sagemaker:eu-west-1:123456789012:model-package/models/7", False),  # another region
        ("arn:aws:sagemaker:us-east-1:210987654321:model-package/models/7", False),  # another account
        ("arn:aws:sagemaker:us-east-1:123456789012:model-package/models", False),  # not a versioned package
    ],
)
def test_a_jobs_own_package_is_the_gates_to_decide_only_in_the_decisions_group_here(world, own: str, touched: bool):
    _, log, registry, events = world
    job, evaluation = decide(world, 0.5, job=training_job("job-1", output_model_package_arn=own))
    ports = FinishPorts(log=log, events=events, registry=registry)  # type: ignore[arg-type]
    record_outcome(RecordOutcomeRequest(job=job, evaluation=evaluation, execution_arn=ME), ports)
    assert registry.approvals == ({own: "Rejected"} if touched else {})
    assert [e["outcome"] for e in events.published] == ["reject"]  # decided and published either way
