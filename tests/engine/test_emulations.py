"""The local engine's emulations of what moto 5.2.5 lacks, each held to AWS's API reference:
hyperparameter tuning jobs (their training jobs, tags, TuningJobArn, best job, the list of their
training jobs) and RedriveExecution. One canary per documented rule."""

from __future__ import annotations

import contextlib
import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from training_gate_cli.local_engine import TRAINING_LOG_GROUP, moto_hooks
from training_gate_cli.local_engine.emulated import (
    GATE_TAGS,
    TuningChild,
    create_tuning_job,
    state_change_event,
    training_job_request,
)
from training_gate_cli.local_engine.strict import strict_requests
from training_gate_cli.local_engine.tuning import TuningEmulation


class Launcher:
    """What create_tuning_job needs of the engine: the emulation, and a child launched as the engine does."""

    def __init__(self) -> None:
        self.tuning = TuningEmulation()

    def launch_tuning_child(self, tuning_job_name, request, child, final_metrics=None):
        from training_gate_cli.local_engine.engine import LocalGate

        return LocalGate.launch_tuning_child(self, tuning_job_name, request, child, final_metrics)  # type: ignore[arg-type]

    def script_training_job(self, name, **kwargs):
        job = moto_hooks.sagemaker_backend().training_jobs[name]
        job.training_job_status = kwargs["final_status"]


@pytest.fixture
def sagemaker():
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock_aws())
        launcher = Launcher()
        stack.enter_context(moto_hooks.tuning_jobs(launcher.tuning))
        boto3.client("logs", region_name="us-east-1").create_log_group(logGroupName=TRAINING_LOG_GROUP)
        stack.enter_context(strict_requests())
        yield launcher, boto3.client("sagemaker", region_name="us-east-1")


CHILDREN = [
    TuningChild(0.91),
    TuningChild(0.97),
    TuningChild(None, status="Failed", failure_reason="AlgorithmError: boom"),
    TuningChild(0.93),
    TuningChild(0.88),
]


def test_the_training_jobs_of_a_tuning_job_carry_its_tags_and_its_arn(sagemaker):
    launcher, client = sagemaker
    tuning = create_tuning_job(launcher, "hpo-tags", CHILDREN, tags={**GATE_TAGS, "team": "ml"})
    for child in tuning["Children"]:
        described = client.describe_training_job(TrainingJobName=child["TrainingJobName"])
        assert described["TuningJobArn"] == tuning["HyperParameterTuningJobArn"]
        tags = {t["Key"]: t["Value"] for t in client.list_tags(ResourceArn=described["TrainingJobArn"])["Tags"]}
        assert tags == {"training-gate": "enabled", "team": "ml"}
        assert state_change_event(child, "Completed")["detail"]["Tags"] == tags
    assert tuning["Children"][0]["TrainingJobName"].startswith("hpo-tags-001-")
    client.create_training_job(**training_job_request("standalone"))
    assert "TuningJobArn" not in client.describe_training_job(TrainingJobName="standalone")


def test_describe_names_the_best_completed_job_for_the_objective_and_counts_what_it_launched(sagemaker):
    launcher, client = sagemaker
    tuning = create_tuning_job(launcher, "hpo-best", CHILDREN, statuses=("InProgress",))
    names = [c["TrainingJobName"] for c in tuning["Children"]]
    first = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="hpo-best")
    assert first["HyperParameterTuningJobStatus"] == "InProgress" and "HyperParameterTuningEndTime" not in first
    described = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="hpo-best")
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    best = described["BestTrainingJob"]
    assert best["TrainingJobName"] == names[1]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Maximize",
        "MetricName": "validation:accuracy",
        "Value": 0.97,
    }
    assert described["TrainingJobStatusCounters"] == {
        "Completed": 4,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": 1,
        "Stopped": 0,
    }
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 1}
    # Not a warm start, not failed: no overall best, no failure reason (moto's stub had both).
    assert "OverallBestTrainingJob" not in described and "FailureReason" not in described


def test_a_tuning_job_with_no_completed_training_job_has_no_best_and_a_failed_one_says_why(sagemaker):
    launcher, client = sagemaker
    create_tuning_job(
        launcher,
        "hpo-none",
        [TuningChild(None, status="Failed", failure_reason="ClientError: no data")] * 2,
        final_status="Failed",
        failure_reason="All training jobs failed",
    )
    described = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="hpo-none")
    assert "BestTrainingJob" not in described
    assert (described["HyperParameterTuningJobStatus"], described["FailureReason"]) == (
        "Failed",
        "All training jobs failed",
    )


def test_a_warm_start_names_the_best_across_its_parents(sagemaker):
    launcher, client = sagemaker
    parent = create_tuning_job(launcher, "hpo-parent", [TuningChild(0.99)])
    parent_best = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="hpo-parent")[
        "BestTrainingJob"
    ]
    create_tuning_job(launcher, "hpo-warm", [TuningChild(0.95)], parent="hpo-parent", parent_best=parent_best)
    described = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="hpo-warm")
    assert described["BestTrainingJob"]["TrainingJobName"].startswith("hpo-warm-001-")
    assert described["OverallBestTrainingJob"]["TrainingJobName"] == parent["Children"][0]["TrainingJobName"]


def test_the_list_sorts_filters_and_pages_as_the_api_reference_says(sagemaker):
    launcher, client = sagemaker
    tuning = create_tuning_job(launcher, "hpo-list", CHILDREN)
    names = [c["TrainingJobName"] for c in tuning["Children"]]

    def listed(**kwargs):
        page = client.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="hpo-list", **kwargs
        )
        return [s["TrainingJobName"] for s in page["TrainingJobSummaries"]], page.get("NextToken")

    assert listed() == (sorted(names), None)  # SortBy Name, Ascending, by default
    by_objective, _ = listed(SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    assert by_objective == [names[1], names[3], names[0], names[4]]  # the failed job reported no objective
    assert listed(SortBy="FinalObjectiveMetricValue")[0] == list(reversed(by_objective))
    assert listed(StatusEquals="Failed") == ([names[2]], None)
    first, token = listed(MaxResults=2)
    second, token2 = listed(MaxResults=2, NextToken=token)
    third, end = listed(MaxResults=2, NextToken=token2)
    assert first + second + third == sorted(names) and end is None
    with pytest.raises(ClientError) as too_many:
        listed(MaxResults=101)
    assert too_many.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as unknown:
        client.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="nope")
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFound"


# -- RedriveExecution ------------------------------------------------------------------------------

DEFINITION = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Pass", "Result": "first ran", "ResultPath": "$.first", "Next": "Slow"},
        "Slow": {"Type": "Wait", "Seconds": 3, "Next": "Last"},
        "Last": {"Type": "Pass", "Parameters": {"first.$": "$.first", "job.$": "$.job"}, "End": True},
    },
}


@pytest.fixture
def stepfunctions():
    config = {"stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config), moto_hooks.redrive_executions():
        client = boto3.client("stepfunctions", region_name="us-east-1")
        role = boto3.client("iam", region_name="us-east-1").create_role(RoleName="r", AssumeRolePolicyDocument="{}")[
            "Role"
        ]["Arn"]
        machine = client.create_state_machine(name="m", definition=json.dumps(DEFINITION), roleArn=role)
        yield client, machine["stateMachineArn"]


def wait(client, arn, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = client.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"{arn} still running")


def entered(client, arn):
    events = client.get_execution_history(executionArn=arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")], events


def test_a_stopped_execution_is_redriven_from_the_step_it_stopped_in_with_that_steps_input(stepfunctions):
    client, machine = stepfunctions
    arn = client.start_execution(stateMachineArn=machine, name="x", input=json.dumps({"job": "j"}))["executionArn"]
    for _ in range(100):
        if "Slow" in entered(client, arn)[0]:
            break
        time.sleep(0.02)
    client.stop_execution(executionArn=arn, error="Aborted", cause="a person")
    assert wait(client, arn)["status"] == "ABORTED"

    client.redrive_execution(executionArn=arn)
    described = wait(client, arn)
    assert (described["status"], described["redriveCount"]) == ("SUCCEEDED", 1)
    assert json.loads(described["output"]) == {"first": "first ran", "job": "j"}
    states, events = entered(client, arn)
    assert states == ["First", "Slow", "Slow", "Last"]  # the successful step is not run again
    assert [e["type"] for e in events].count("ExecutionRedriven") == 1
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))


@pytest.mark.parametrize("stop", [False, True], ids=["succeeded", "running"])
def test_a_succeeded_or_running_execution_is_not_redrivable(stepfunctions, stop):
    client, machine = stepfunctions
    arn = client.start_execution(stateMachineArn=machine, name=f"y{stop}", input='{"job": "j"}')["executionArn"]
    if not stop:
        wait(client, arn)
    with pytest.raises(ClientError) as refused:
        client.redrive_execution(executionArn=arn)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert client.describe_execution(executionArn=arn)["redriveCount"] == 0
    wait(client, arn)
