"""Tuning jobs through the whole gate: judged once, by their best training jobs.

A tuning job's tags reach every training job it launches, so a tagged tuning job starts one
execution per child and one for itself. The children end quietly (no decision item, no message);
the tuning job's own execution judges its candidates, best first, and makes one decision keyed by
the tuning job."""

from __future__ import annotations

import json

import boto3
import pytest

from training_gate.dal.dynamodb import DecisionLog
from training_gate.domain.inputs import tuning_decision_key
from training_gate_cli.artifacts import pack_model_tar_gz
from training_gate_cli.local_engine import Fault, LocalGate
from training_gate_cli.local_engine.emulated import (
    TuningChild,
    create_tuning_job,
    state_change_event,
    training_log,
    tuning_state_change_event,
    write_log_stream,
)

GROUP = "training-gate-models"
CHILD_STATES = [
    "ReceiveInput",
    "ValidateInput",
    "JobKind",
    "DescribeTrainingJob",
    "TrainingJobStatus",
    "ChildOfTuningJob",
]


def packages() -> list[dict]:
    sagemaker = boto3.client("sagemaker")
    try:
        return sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    except sagemaker.exceptions.ClientError:
        return []


def items(gate: LocalGate) -> list[dict]:
    return DecisionLog(gate.decision_table)._dynamodb.scan(TableName=gate.decision_table)["Items"]


def decision(gate: LocalGate, tuning_job_name: str) -> dict:
    (found,) = DecisionLog(gate.decision_table).history(tuning_decision_key(tuning_job_name))
    return found


def s3_json(uri: str) -> dict:
    bucket, key = uri[5:].split("/", 1)
    return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def deliver_everything(gate: LocalGate, tuning: dict, status: str = "Completed") -> tuple[list, object]:
    """Every event a tagged tuning job makes EventBridge deliver: one per child, one for the tuning job."""
    children = []
    for child in tuning["Children"]:
        execution_input = gate.route_event(state_change_event(child, child["TrainingJobStatus"]))
        assert execution_input is not None, "the child carries the tuning job's tag: the training rule matches it"
        children.append(gate.run(execution_input, name=child["TrainingJobName"]))
    execution_input = gate.route_event(tuning_state_change_event(tuning, status))
    assert execution_input == {
        "HyperParameterTuningJobName": tuning["HyperParameterTuningJobName"],
        "source_account": "123456789012",
        "source_region": "us-east-1",
    }
    return children, gate.run(execution_input, name=f"{tuning['HyperParameterTuningJobName']}-tuning")


def weak(accuracy: float) -> TuningChild:
    """A child whose objective (accuracy) is high but whose precision fails the policy."""
    return TuningChild(accuracy, precision=0.5)


def test_a_tagged_tuning_job_of_20_children_makes_one_decision_and_one_package(gate: LocalGate, iris_artifact: bytes):
    accuracies = [0.91 + i / 1000 for i in range(20)]
    tuning = create_tuning_job(gate, "hpo-20", [TuningChild(a) for a in accuracies], artifact=iris_artifact)
    children, result = deliver_everything(gate, tuning)

    assert [c.states for c in children] == [CHILD_STATES] * 20
    assert {c.status for c in children} == {"SUCCEEDED"}
    assert result.states[-1] == "Registered", (result.error, result.cause)
    best = tuning["Children"][19]["TrainingJobName"]
    assert (result.output["training_job_name"], result.output["tuning_job_name"]) == (best, "hpo-20")
    (package,) = packages()
    metadata = boto3.client("sagemaker").describe_model_package(ModelPackageName=package["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert (metadata["training_job_name"], metadata["tuning_job_name"]) == (best, "hpo-20")
    (item,) = items(gate)  # no child made a decision
    assert item["training_job"]["S"] == "hyper-parameter-tuning-job/hpo-20"
    assert (item["status"]["S"], item["completion"]["S"]) == ("complete", "registered")
    assert list(gate.notifications()) == [] and list(gate.operations_notifications()) == []
    (event,) = gate.decision_events()
    assert (event["detail"]["tuning_job_name"], event["detail"]["training_job_name"]) == ("hpo-20", best)
    report = s3_json(result.output["report_uri"])
    assert report["schema_version"] == 4
    assert report["tuning"]["tuning_job_name"] == "hpo-20"
    assert (report["tuning"]["children"], report["tuning"]["children_completed"]) == (20, 20)
    assert report["tuning"]["objective_metric"] == "validation:accuracy"
    assert [c["training_job_name"] for c in report["tuning"]["candidates"]] == [best]
    # The objective the tuning job recorded is one of the candidate's metric sources.
    assert "tuning_objective" in {d["source"] for d in report["metrics"]["details"]}
    # A second delivery of the tuning job's event is a duplicate of the one decision.
    again = gate.run({"HyperParameterTuningJobName": "hpo-20"}, name="hpo-20-again")
    assert again.states[-1] == "DuplicateDecision"
    assert again.output["training_job_name"] == "hyper-parameter-tuning-job/hpo-20"
    assert len(packages()) == 1


def test_the_best_job_rejected_with_one_candidate_rejects_the_tuning_job_naming_it(
    gate: LocalGate, iris_artifact: bytes
):
    tuning = create_tuning_job(
        gate, "hpo-k1", [TuningChild(0.92), weak(0.97), TuningChild(0.93)], artifact=iris_artifact
    )
    _, result = deliver_everything(gate, tuning)
    best = tuning["Children"][1]["TrainingJobName"]

    assert result.error == "ModelRejected", result.cause
    assert result.states.count("InspectArtifact") == 1  # K=1: the best only
    assert packages() == []
    (note,) = gate.notifications()
    assert note["Subject"].startswith(f"Model rejected: tuning job hpo-k1 - {best}: precision 0.500 not > 0.85")
    assert "Candidates judged, best first (1 of at most 1):" in note["Message"]
    assert note["MessageAttributes"]["tuning_job_name"]["Value"] == "hpo-k1"
    record = decision(gate, "hpo-k1")
    assert (record["status"], record["completion"], record["outcome"]) == ("complete", "notified", "reject")
    assert json.loads(record["judged_job"])["training_job_name"] == best


def test_with_three_candidates_the_first_that_passes_is_registered(gate: LocalGate, iris_artifact: bytes):
    tuning = create_tuning_job(
        gate, "hpo-k3", [weak(0.99), TuningChild(0.95), TuningChild(0.97)], artifact=iris_artifact
    )
    names = [c["TrainingJobName"] for c in tuning["Children"]]
    result = gate.run({"HyperParameterTuningJobName": "hpo-k3", "tuning_candidates": 3}, name="hpo-k3")

    assert result.states[-1] == "Registered", (result.error, result.cause)
    assert result.states.count("NextCandidate") == 1 and result.states.count("InspectArtifact") == 2
    assert result.output["training_job_name"] == names[2]  # objective 0.97, second best, passed
    assert len(packages()) == 1
    report = s3_json(result.output["report_uri"])
    tried = report["tuning"]["candidates"]
    assert [(c["training_job_name"], c["outcome"]) for c in tried] == [(names[0], "reject"), (names[2], "pass")]
    assert tried[0]["reasons"] == ["precision 0.500 not > 0.85"]
    assert s3_json(tried[0]["report_uri"])["training_job"] == names[0]  # each candidate's own report
    assert list(gate.notifications()) == []


def test_with_three_candidates_none_passing_the_tuning_job_is_rejected_with_every_reason(
    gate: LocalGate, iris_artifact: bytes
):
    tuning = create_tuning_job(
        gate, "hpo-k3-all", [weak(0.99), weak(0.97), weak(0.95), TuningChild(0.6)], artifact=iris_artifact
    )
    names = [c["TrainingJobName"] for c in tuning["Children"]]
    result = gate.run({"HyperParameterTuningJobName": "hpo-k3-all", "tuning_candidates": 3}, name="hpo-k3-all")

    assert result.error == "ModelRejected"
    assert result.states.count("InspectArtifact") == 3  # never the fourth
    (note,) = gate.notifications()
    for name in names[:3]:
        assert f"{name}: precision 0.500 not > 0.85" in note["Message"]
    assert names[3] not in note["Message"]
    record = decision(gate, "hpo-k3-all")
    assert json.loads(record["judged_job"])["training_job_name"] == names[0]  # the decision is about the best
    report = s3_json(record["report_uri"])
    assert report["training_job"] == names[0] and report["decision"]["outcome"] == "reject"
    assert [c["training_job_name"] for c in report["tuning"]["candidates"]] == names[:3]
    assert packages() == []


def test_a_stopped_tuning_job_with_a_best_job_is_judged(gate: LocalGate, iris_artifact: bytes):
    tuning = create_tuning_job(
        gate,
        "hpo-stopped",
        [TuningChild(0.95), TuningChild(None, status="Stopped")],
        final_status="Stopped",
        artifact=iris_artifact,
    )
    _, result = deliver_everything(gate, tuning, status="Stopped")
    assert result.states[-1] == "Registered", (result.error, result.cause)
    assert len(packages()) == 1


@pytest.mark.parametrize(
    ("status", "children", "reason", "said"),
    [
        ("Failed", [TuningChild(0.95)], "ResourceLimitExceeded: account limit", "ResourceLimitExceeded"),
        ("Stopped", [TuningChild(None, status="Stopped")], None, "stopped before any training job completed"),
        ("Completed", [TuningChild(None, status="Failed")] * 2, None, "none of its 2 training jobs completed"),
    ],
    ids=["failed", "stopped-without-best", "completed-without-any"],
)
def test_a_tuning_job_with_nothing_to_judge_tells_the_owners_once(
    gate: LocalGate, iris_artifact: bytes, status, children, reason, said
):
    name = f"hpo-{status.lower()}-x"
    tuning = create_tuning_job(gate, name, children, final_status=status, failure_reason=reason, artifact=iris_artifact)
    execution_input = gate.route_event(tuning_state_change_event(tuning, status))
    first = gate.run(execution_input, name=f"{name}-1")
    second = gate.run(execution_input, name=f"{name}-2")  # SageMaker may deliver the event twice

    assert first.error == "TuningJobFailed" and said in first.cause
    assert second.states[-1] == "FailureAlreadyTold" and second.status == "SUCCEEDED"
    (note,) = gate.notifications()
    assert note["Subject"].startswith(f"Tuning job {status.lower()}: {name}")
    assert note["MessageAttributes"]["decision"]["Value"] == "training_failed"
    (record,) = DecisionLog(gate.decision_table).history(tuning_decision_key(name))
    assert (record["policy_sha256"], record["status"], record["completion"]) == ("not-judged", "complete", "notified")
    assert record["duplicate_executions"] == [second.arn]
    assert packages() == [] and list(gate.operations_notifications()) == []


def test_a_tuning_job_of_several_training_definitions_is_judged_across_them(gate: LocalGate, iris_artifact: bytes):
    tuning = create_tuning_job(
        gate,
        "hpo-defs",
        [weak(0.99), TuningChild(0.96), TuningChild(0.9)],
        definitions=["random-forest", "logistic"],
        artifact=iris_artifact,
    )
    names = [c["TrainingJobName"] for c in tuning["Children"]]
    result = gate.run({"HyperParameterTuningJobName": "hpo-defs", "tuning_candidates": 2}, name="hpo-defs")

    assert result.states[-1] == "Registered", (result.error, result.cause)
    assert result.output["training_job_name"] == names[1]
    report = s3_json(result.output["report_uri"])["tuning"]
    assert report["definitions"] == ["random-forest", "logistic"]
    assert [(c["training_job_name"], c["definition_name"]) for c in report["candidates"]] == [
        (names[0], "random-forest"),
        (names[1], "logistic"),
    ]
    assert report["objective_metric"] == "validation:accuracy"  # from the definitions' TuningObjective


def test_a_warm_start_is_judged_by_its_own_best_not_by_a_parents(gate: LocalGate, iris_artifact: bytes):
    parent = create_tuning_job(gate, "hpo-parent", [TuningChild(0.99)], artifact=iris_artifact)
    parent_best = boto3.client("sagemaker").describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="hpo-parent"
    )["BestTrainingJob"]
    warm = create_tuning_job(
        gate, "hpo-warm", [TuningChild(0.93)], parent="hpo-parent", parent_best=parent_best, artifact=iris_artifact
    )
    result = gate.run({"HyperParameterTuningJobName": "hpo-warm"}, name="hpo-warm")
    assert result.output["training_job_name"] == warm["Children"][0]["TrainingJobName"]
    report = s3_json(result.output["report_uri"])["tuning"]
    assert report["overall_best_training_job"] == parent["Children"][0]["TrainingJobName"]


def test_a_child_is_judged_on_its_own_only_when_asked(gate: LocalGate, iris_artifact: bytes):
    tuning = create_tuning_job(gate, "hpo-each", [TuningChild(0.95)], artifact=iris_artifact)
    child = tuning["Children"][0]["TrainingJobName"]
    quiet = gate.run({"TrainingJobName": child}, name="hpo-each-quiet")
    assert quiet.states[-1] == "ChildOfTuningJob" and items(gate) == []
    judged = gate.run({"TrainingJobName": child, "gate_tuning_children": True}, name="hpo-each-judged")
    assert judged.states[-1] == "Registered", (judged.error, judged.cause)
    (item,) = items(gate)
    assert item["training_job"]["S"] == child


def test_a_dry_run_of_a_tuning_job_judges_its_candidates_and_records_nothing(gate: LocalGate, iris_artifact: bytes):
    create_tuning_job(gate, "hpo-dry", [weak(0.99), TuningChild(0.95)], artifact=iris_artifact)
    result = gate.run(
        {"HyperParameterTuningJobName": "hpo-dry", "tuning_candidates": 2, "dry_run": True}, name="hpo-dry"
    )
    assert result.states[-1] == "DryRunDone" and result.output["outcome"] == "pass"
    assert items(gate) == [] and packages() == [] and list(gate.notifications()) == []


def test_a_50_child_tuning_job_with_ten_candidates_stays_bounded(gate: LocalGate, iris_artifact: bytes):
    # Every candidate fails the policy: all ten are judged, and their reasons travel in the state.
    children = [weak(0.9 + i / 1000) for i in range(50)]
    create_tuning_job(gate, "hpo-50", children, artifact=iris_artifact)
    result = gate.run({"HyperParameterTuningJobName": "hpo-50", "tuning_candidates": 10}, name="hpo-50")

    assert result.error == "ModelRejected"
    assert result.states.count("InspectArtifact") == 10
    assert result.largest_state_payload < 64 * 1024, result.largest_state_payload
    assert len(result.history) < 1000
    record = decision(gate, "hpo-50")
    assert len(s3_json(record["report_uri"])["tuning"]["candidates"]) == 10


def test_a_taker_over_carries_out_the_stored_decision_about_its_candidate(gate: LocalGate, iris_artifact: bytes):
    tuning = create_tuning_job(gate, "hpo-take", [weak(0.99), TuningChild(0.95)], artifact=iris_artifact)
    names = [c["TrainingJobName"] for c in tuning["Children"]]
    # The second evaluation (the second candidate, which passes) claims the decision, then fails.
    gate.faults.append(Fault(function="EvaluatePolicy", kind="error", attempt=1, error="RuntimeError"))
    execution_input = {"HyperParameterTuningJobName": "hpo-take", "tuning_candidates": 2}
    first = gate.run(execution_input, name="hpo-take-1")
    assert first.error == "GateError"
    assert json.loads(decision(gate, "hpo-take")["judged_job"])["training_job_name"] == names[1]
    record = decision(gate, "hpo-take")
    assert record["endings"]["hpo-take-1"]["ending"] == "GateError"  # the item tells how its owner ended

    # By the re-run the best candidate passes too (its last lines say so); the stored decision stands.
    write_log_stream(names[0], training_log(0.99, 0.99, 0.99, 0.99, 0.99), host="algo-1")
    rerun = gate.run(execution_input, name="hpo-take-2")
    assert rerun.states[-1] == "Registered", (rerun.error, rerun.cause)
    assert rerun.states.count("InspectArtifact") == 1
    assert rerun.output["training_job_name"] == names[1]
    (package,) = packages()
    metadata = boto3.client("sagemaker").describe_model_package(ModelPackageName=package["ModelPackageArn"])
    assert metadata["CustomerMetadataProperties"]["training_job_name"] == names[1]
    assert decision(gate, "hpo-take")["takeovers"] == [rerun.arn]


def test_a_candidate_with_no_judged_model_is_skipped_and_the_next_is_judged(gate: LocalGate):
    from training_gate_cli.artifacts import iris_model_joblib

    pmml = pack_model_tar_gz({"model.pmml": b'<?xml version="1.0"?>\n<PMML version="4.4">'})
    sklearn = pack_model_tar_gz({"model.joblib": iris_model_joblib()})
    create_tuning_job(gate, "hpo-mixed", [TuningChild(0.99, artifact=pmml), TuningChild(0.95, artifact=sklearn)])
    result = gate.run({"HyperParameterTuningJobName": "hpo-mixed", "tuning_candidates": 2}, name="hpo-mixed")
    assert result.states[-1] == "Registered", (result.error, result.cause)
    report = s3_json(result.output["report_uri"])["tuning"]
    assert [c["outcome"] for c in report["candidates"]] == ["skipped", "pass"]


def test_a_tuning_job_still_running_is_polled_until_it_ends(gate: LocalGate, iris_artifact: bytes):
    create_tuning_job(
        gate,
        "hpo-poll",
        [TuningChild(0.95)],
        statuses=("InProgress", "Stopping"),
        final_status="Stopped",
        artifact=iris_artifact,
    )
    result = gate.run({"HyperParameterTuningJobName": "hpo-poll"}, name="hpo-poll")
    assert result.states.count("WaitForTuningJob") == 2 and result.states[-1] == "Registered"
    stuck = create_tuning_job(
        gate, "hpo-stuck", [TuningChild(0.95)], statuses=("InProgress",) * 10, final_status="InProgress"
    )
    timed_out = gate.run(
        {"HyperParameterTuningJobName": stuck["HyperParameterTuningJobName"], "max_polls": 2}, name="hpo-stuck"
    )
    assert timed_out.error == "GateError" and "tuning job hpo-stuck was still InProgress after 2 polls" in (
        timed_out.cause or ""
    )


def test_the_tuning_jobs_event_delivered_twice_at_once_makes_one_package(gate: LocalGate, iris_artifact: bytes):
    tuning = create_tuning_job(gate, "hpo-twice", [TuningChild(0.95), TuningChild(0.93)], artifact=iris_artifact)
    execution_input = gate.route_event(tuning_state_change_event(tuning, "Completed"))
    results = [gate.watch(arn) for arn in [gate.start(execution_input, name=f"hpo-twice-{i}") for i in range(2)]]
    ends = sorted(r.states[-1] for r in results)
    assert ends[1] == "Registered" and ends[0] in ("DuplicateDecision", "DuplicateInProgress"), ends
    assert len(packages()) == 1 and len(items(gate)) == 1
    assert len(list(gate.decision_events())) == 1
