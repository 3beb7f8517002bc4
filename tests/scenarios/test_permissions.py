"""Every optional permission, proved by running the calls that need it as the synthesized roles.

This module's gate is synthesized with every setting that adds a grant (a second group chosen by a job
tag, CloudWatch metrics, a holdout set in a bucket of its own, a scope by job-name prefix); every call its
handlers and tasks make is checked against the roles of that template (training_gate_cli/local_engine/
iam.py), and the module fails if one was refused. It also holds what the gate may touch of a job that
registered itself in a group the gate does not manage: nothing, and it still decides and tells the owners;
and, scoped by a prefix, which training jobs of a tuning job are judged on their own."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.scenarios import iam_totals
from training_gate_cli.local_engine import LocalGate, load_template
from training_gate_cli.local_engine.emulated import (
    TuningChild,
    create_training_job,
    create_tuning_job,
    state_change_event,
    training_log,
    tuning_state_change_event,
)

GOOD_LOG = training_log(0.95, 0.95, 0.95, 0.95, 0.95)
WEAK_LOG = training_log(0.7, 0.7, 0.7, 0.7, 0.7)
HOLDOUT_BUCKET = "ml-holdout-data"
OVERRIDES = {
    "poll_interval_seconds": 0,
    "additional_model_package_groups": ["fraud-models"],
    "read_cloudwatch_metrics": True,
    # The team's jobs are churn-weekly-<date>; the SDK names a tuning job from the same base, cut to 32 characters.
    "job_name_prefixes": ["churn-weekly-"],
    "required_job_tag": None,
    "holdout": {"uri": f"s3://{HOLDOUT_BUCKET}/iris/holdout.csv", "label_column": "label"},
    "policy": {
        "version": 1,
        "rules": [
            {"metric": "accuracy", "operator": ">", "threshold": 0.9},
            {"metric": "f1", "operator": ">", "threshold": 0.85, "source": "holdout"},
        ],
        "outcome": {"group_from_tag": "model-group"},
    },
}


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training_gate_cli.synth import synthesize

    return synthesize(outdir=tmp_path_factory.mktemp("cdk.out.wide"), overrides=OVERRIDES, force=True)


@pytest.fixture(scope="module")
def account(wide: Path) -> Iterator[LocalGate]:
    with LocalGate(load_template(wide), retry_time_scale=0.001, assets=wide.parent) as local:
        _upload_holdout()
        yield local
    assert local.iam is not None
    summary = local.iam.summary()
    iam_totals.add(summary)
    assert not summary["denied_calls"], f"calls the synthesized roles do not allow: {summary['denied_calls']}"


def _upload_holdout() -> None:
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    rows = ["f0,f1,f2,f3,label"]
    rows += [",".join([*map(str, row), str(label)]) for row, label in zip(features, labels, strict=True)]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=HOLDOUT_BUCKET)
    s3.upload_fileobj(io.BytesIO("\n".join(rows).encode()), HOLDOUT_BUCKET, "iris/holdout.csv")


def _own_package(group: str) -> str:
    sagemaker = boto3.client("sagemaker")
    try:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    except sagemaker.exceptions.ClientError:
        pass  # made by an earlier test of this module
    return sagemaker.create_model_package(ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval")[
        "ModelPackageArn"
    ]


def _status(arn: str) -> str:
    return boto3.client("sagemaker").describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"]


def test_a_job_tagged_for_the_second_group_is_scored_on_the_holdout_and_registered_there(
    gate: LocalGate, iris_artifact: bytes
):
    create_training_job(
        gate,
        "fraud-1",
        log_lines=GOOD_LOG,
        artifact=iris_artifact,
        tags={"training-gate": "enabled", "model-group": "fraud-models"},
    )
    result = gate.run({"TrainingJobName": "fraud-1"}, name="fraud-1")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert ":model-package/fraud-models/" in result.output["model_package_arn"]
    assert gate.iam is not None
    called = {c.action for c in gate.iam.calls if c.allowed}
    # Each optional grant was needed by a call, and the call was allowed.
    assert {"sagemaker:ListTags", "cloudwatch:GetMetricStatistics", "sagemaker:CreateModelPackageGroup"} <= called
    assert any(c.resource.endswith(f":::{HOLDOUT_BUCKET}/iris/holdout.csv") for c in gate.iam.calls)


def test_a_passing_job_that_registered_itself_in_a_group_the_gate_does_not_manage_is_registered_in_the_gates(
    gate: LocalGate, iris_artifact: bytes
):
    own = _own_package("team-private")
    create_training_job(
        gate, "self-registered", log_lines=GOOD_LOG, artifact=iris_artifact, output_model_package_arn=own
    )
    result = gate.run({"TrainingJobName": "self-registered"}, name="self-registered")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["adopted"] is False
    assert ":model-package/training-gate-models/" in result.output["model_package_arn"]
    assert _status(own) == "PendingManualApproval"  # not the gate's to change


def test_a_rejected_job_that_registered_itself_elsewhere_still_tells_the_owners_and_leaves_its_package(
    gate: LocalGate, iris_artifact: bytes
):
    own = _own_package("team-private")
    create_training_job(gate, "self-weak", log_lines=WEAK_LOG, artifact=iris_artifact, output_model_package_arn=own)
    result = gate.run({"TrainingJobName": "self-weak"}, name="self-weak")
    assert result.error == "ModelRejected", (result.error, result.cause)
    (note,) = gate.notifications()
    assert note["Subject"].startswith("Model rejected: self-weak")
    assert _status(own) == "PendingManualApproval"
    assert [e["detail"]["outcome"] for e in gate.decision_events()] == ["reject"]


def _judge_children(gate: LocalGate, tuning: dict) -> list[str]:
    ends = []
    for child in tuning["Children"]:
        execution_input = gate.route_event(state_change_event(child, "Completed"))
        assert execution_input is not None, f"{child['TrainingJobName']} is in the prefix's scope"
        ends.append(gate.run(execution_input, name=child["TrainingJobName"]).states[-1])
    return ends


def test_scoped_by_a_prefix_no_tuning_job_matches_each_training_job_it_launched_is_judged(
    gate: LocalGate, iris_artifact: bytes
):
    # "churn-weekly-" matches the children (churn-weekly-001-...) and never the tuning job "churn-weekly".
    tuning = create_tuning_job(
        gate, "churn-weekly", [TuningChild(0.95), TuningChild(0.93)], artifact=iris_artifact, tags={}
    )
    assert gate.route_event(tuning_state_change_event(tuning, "Completed")) is None
    assert _judge_children(gate, tuning) == ["Registered", "Registered"]
    assert [e["detail"]["outcome"] for e in gate.decision_events()] == ["pass", "pass"]


def test_scoped_by_a_prefix_its_tuning_job_matches_the_children_end_quietly_and_the_tuning_job_is_judged(
    gate: LocalGate, iris_artifact: bytes
):
    tuning = create_tuning_job(
        gate, "churn-weekly-hpo", [TuningChild(0.95), TuningChild(0.93)], artifact=iris_artifact, tags={}
    )
    assert _judge_children(gate, tuning) == ["ChildOfTuningJob", "ChildOfTuningJob"]
    execution_input = gate.route_event(tuning_state_change_event(tuning, "Completed"))
    assert execution_input is not None
    result = gate.run(execution_input, name="churn-weekly-hpo")
    assert result.states[-1] == "Registered", (result.error, result.cause)
    assert [e["detail"]["outcome"] for e in gate.decision_events()] == ["pass"]
