"""The local engine fails where AWS would: one canary per rule moto does not enforce by itself."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from training_gate_cli.local_engine import LocalEngineError, LocalGate, engine

LARGE = "x" * (300 * 1024)  # over Step Functions' 256 KiB


@pytest.fixture(scope="module")
def account(template: dict, synthesized) -> Iterator[LocalGate]:
    with LocalGate(template, retry_time_scale=0.001, assets=synthesized.parent) as local:
        yield local


def test_data_limit_exceeded_is_not_caught_by_states_all_and_still_reaches_operations(account: LocalGate, monkeypatch):
    from training_gate.handlers import validate_input

    # ValidateInput's Catch on States.ALL would see it on moto alone; on AWS the execution just fails.
    monkeypatch.setattr(validate_input, "handler", lambda event, context: {"training_job_name": LARGE})
    account._handlers.clear()
    result = account.run({"TrainingJobName": "any"}, name="too-large")
    account._handlers.clear()
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")
    assert "DescribeGateError" not in result.states
    (alert,) = account.operations_notifications()
    assert alert["Subject"] == "training-gate failed: States.DataLimitExceeded - any"


def test_a_lambda_response_over_6_mb_is_lambdas_error_not_a_payload(account: LocalGate, monkeypatch):
    from training_gate.handlers import validate_input

    monkeypatch.setattr(validate_input, "handler", lambda event, context: {"blob": "x" * (7 * 1024 * 1024)})
    account._handlers.clear()
    result = account.run({"TrainingJobName": "any"}, name="huge-response")
    account._handlers.clear()
    assert result.error == "GateError"
    assert "Function.ResponseSizeTooLarge" in result.cause


def test_an_execution_past_the_history_limit_is_refused(account: LocalGate, monkeypatch):
    from training_gate_cli.local_engine.emulated import create_training_job

    create_training_job(account, "many-polls", log_lines=None, statuses=("InProgress",) * 40, final_status="InProgress")
    monkeypatch.setattr(engine, "HISTORY_EVENTS_MAX", 60)  # AWS: 25,000; the rule, at a size a test can reach
    with pytest.raises(LocalEngineError, match="history events: AWS fails an execution at 60"):
        account.run({"TrainingJobName": "many-polls", "max_polls": 30}, name="many-polls")


def test_requests_aws_refuses_fail_inside_the_engine(account: LocalGate):
    sagemaker = boto3.client("sagemaker")
    with pytest.raises(sagemaker.exceptions.ClientError, match="Tags"):
        sagemaker.create_model_package(
            ModelPackageGroupName="training-gate-models",
            Tags=[{"Key": "a", "Value": "b"}],
            ModelApprovalStatus="PendingManualApproval",
        )
    sns = boto3.client("sns")
    with pytest.raises(sns.exceptions.ClientError, match="Subject"):
        sns.publish(TopicArn=account.account.owners_topic_arn, Subject="s" * 101, Message="m")
