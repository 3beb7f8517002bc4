"""The local engine's SageMaker Pipelines, held to AWS's API reference: a CallbackStep's message and its
wait, SendPipelineExecutionStepSuccess / Failure (the request's limits, a token answered twice, an unknown
token), StopPipelineExecution's second message, and ConditionSteps branching on the answer. One canary per
documented rule (local_engine/pipelines.py cites each)."""

from __future__ import annotations

import contextlib
import json

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from moto import mock_aws

from training_gate_cli.local_engine import moto_hooks
from training_gate_cli.local_engine.pipelines import PipelineEmulation
from training_gate_cli.local_engine.strict import strict_requests

REGION = "us-east-1"
QUEUE = "demo-sagemaker-callbacks"


def definition(queue_url: str, outputs: tuple[str, ...] = ("decision",)) -> dict:
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Threshold", "Type": "String", "DefaultValue": "pass"}],
        "Steps": [
            {"Name": "Train", "Type": "Training", "Arguments": {}},
            {
                "Name": "Gate",
                "Type": "Callback",
                "Arguments": {"TrainingJobName": {"Get": "Steps.Train.TrainingJobName"}, "n": 3},
                "SqsQueueUrl": queue_url,
                "OutputParameters": [{"OutputName": name, "OutputType": "String"} for name in outputs],
            },
            {
                "Name": "Passed",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [
                        {
                            "Type": "Equals",
                            "LeftValue": {"Get": "Steps.Gate.OutputParameters['decision']"},
                            "RightValue": {"Get": "Parameters.Threshold"},
                        }
                    ],
                    "IfSteps": [{"Name": "Deploy", "Type": "Lambda", "Arguments": {}}],
                    "ElseSteps": [
                        {
                            "Name": "Stop",
                            "Type": "Fail",
                            "Arguments": {
                                "ErrorMessage": {
                                    "Std:Join": {
                                        "On": " ",
                                        "Values": ["gate said", {"Get": "Steps.Gate.OutputParameters['decision']"}],
                                    }
                                }
                            },
                        }
                    ],
                },
            },
        ],
    }


class Pipelines:
    def __init__(self) -> None:
        self.emulation = PipelineEmulation(seed=7)
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.queue_url = self.sqs.create_queue(QueueName=QUEUE)["QueueUrl"]

    def start(self, name: str = "demo", job: str = "job-1", **kwargs) -> str:
        if name not in moto_hooks.sagemaker_backend().pipelines:
            self.sagemaker.create_pipeline(
                PipelineName=name,
                PipelineDefinition=json.dumps(definition(self.queue_url, **kwargs)),
                RoleArn="arn:aws:iam::123456789012:role/SageMakerPipelines",
            )
        self.emulation.pending_properties[name] = {"Train": {"TrainingJobName": job}}
        return self.sagemaker.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]

    def messages(self) -> list[dict]:
        found = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in found:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in found]

    def status(self, arn: str) -> str:
        return self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]


@pytest.fixture
def pipelines():
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock_aws())
        emulated = Pipelines()
        stack.enter_context(moto_hooks.pipeline_executions(emulated.emulation))
        stack.enter_context(strict_requests())
        yield emulated


def success(token: str, value: str = "pass", crt: str = "a" * 32, **extra) -> dict:
    return {
        "CallbackToken": token,
        "OutputParameters": [{"Name": "decision", "Value": value}],
        "ClientRequestToken": crt,
        **extra,
    }


def test_a_callback_step_sends_its_token_and_arguments_and_waits(pipelines: Pipelines):
    arn = pipelines.start(job="churn-7")
    (message,) = pipelines.messages()
    assert set(message) == {"token", "pipelineExecutionArn", "arguments"}
    assert message["pipelineExecutionArn"] == arn
    assert message["arguments"] == {"TrainingJobName": "churn-7", "n": 3}
    assert len(message["token"]) == 10 and message["token"].isalnum()
    assert pipelines.status(arn) == "Executing"
    steps = pipelines.sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    gate = next(s for s in steps if s["StepName"] == "Gate")
    assert gate["StepStatus"] == "Executing"
    assert gate["Metadata"]["Callback"]["CallbackToken"] == message["token"]
    assert gate["Metadata"]["Callback"]["SqsQueueUrl"] == pipelines.queue_url


def test_a_success_answer_continues_the_pipeline_and_a_condition_branches_on_its_outputs(pipelines: Pipelines):
    passing = pipelines.start()
    (first,) = pipelines.messages()
    answered = pipelines.sagemaker.send_pipeline_execution_step_success(**success(first["token"]))
    assert answered["PipelineExecutionArn"] == passing
    assert pipelines.status(passing) == "Succeeded"
    assert pipelines.emulation.runs[passing].steps["Deploy"] == "Succeeded"

    rejected = pipelines.start()
    (second,) = pipelines.messages()
    pipelines.sagemaker.send_pipeline_execution_step_success(**success(second["token"], "reject"))
    run = pipelines.emulation.runs[rejected]
    assert (pipelines.status(rejected), run.failure_reason) == ("Failed", "gate said reject")
    assert "Deploy" not in run.steps and run.steps["Stop"] == "Failed"


def test_a_failure_answer_fails_the_step_and_the_execution_with_its_reason(pipelines: Pipelines):
    arn = pipelines.start()
    (message,) = pipelines.messages()
    pipelines.sagemaker.send_pipeline_execution_step_failure(
        CallbackToken=message["token"], FailureReason="training job failed", ClientRequestToken="b" * 32
    )
    assert pipelines.status(arn) == "Failed"
    steps = pipelines.sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    gate = next(s for s in steps if s["StepName"] == "Gate")
    assert (gate["StepStatus"], gate["FailureReason"]) == ("Failed", "training job failed")


def test_an_output_the_condition_reads_but_the_answer_lacks_fails_the_execution(pipelines: Pipelines):
    arn = pipelines.start()
    (message,) = pipelines.messages()
    pipelines.sagemaker.send_pipeline_execution_step_success(
        CallbackToken=message["token"], OutputParameters=[], ClientRequestToken="c" * 32
    )
    assert pipelines.status(arn) == "Failed"
    assert "OutputParameters['decision'] was not given" in pipelines.emulation.runs[arn].failure_reason


def test_the_same_answer_again_is_idempotent_and_any_other_answer_to_an_answered_token_is_a_conflict(
    pipelines: Pipelines,
):
    arn = pipelines.start()
    (message,) = pipelines.messages()
    token = message["token"]
    sagemaker = pipelines.sagemaker
    assert sagemaker.send_pipeline_execution_step_success(**success(token))["PipelineExecutionArn"] == arn
    # "An idempotent operation completes no more than one time": the same token and request, the same result.
    assert sagemaker.send_pipeline_execution_step_success(**success(token))["PipelineExecutionArn"] == arn
    for other in (
        success(token, crt="d" * 32),  # another ClientRequestToken
        success(token, value="reject"),  # the same ClientRequestToken, another request
    ):
        with pytest.raises(ClientError) as refused:
            sagemaker.send_pipeline_execution_step_success(**other)
        assert refused.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(ClientError) as failure:
        sagemaker.send_pipeline_execution_step_failure(CallbackToken=token, ClientRequestToken="e" * 32)
    assert failure.value.response["Error"]["Code"] == "ConflictException"
    callback = pipelines.emulation.callback(token)
    assert (len(callback.accepted), len(callback.replays), len(callback.refused)) == (1, 1, 3)
    assert pipelines.status(arn) == "Succeeded"


def test_a_token_no_pipeline_issued_is_not_found(pipelines: Pipelines):
    with pytest.raises(ClientError) as unknown:
        pipelines.sagemaker.send_pipeline_execution_step_success(**success("Zz9Zz9Zz9Z"))
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFound"


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        ({"CallbackToken": "a" * 11}, "CallbackToken: length 11 > max 10"),
        ({"CallbackToken": "abcde-ghij"}, "does not match pattern [a-zA-Z0-9]+"),
        ({"OutputParameters": [{"Name": f"o{i}", "Value": "v"} for i in range(51)]}, "entries 51 > max 50"),
        ({"OutputParameters": [{"Name": "n" * 257, "Value": "v"}]}, "Name: length 257 > max 256"),
        ({"OutputParameters": [{"Name": "n", "Value": "v" * 1025}]}, "Value: length 1025 > max 1024"),
        ({"ClientRequestToken": "f" * 129}, "ClientRequestToken: length 129 > max 128"),
    ],
    ids=["token-11", "token-pattern", "51-outputs", "name-257", "value-1025", "crt-129"],
)
def test_the_success_request_is_held_to_the_api_references_limits(pipelines: Pipelines, request_, problem):
    pipelines.start()
    (message,) = pipelines.messages()
    with pytest.raises(ClientError) as refused:
        pipelines.sagemaker.send_pipeline_execution_step_success(**{**success(message["token"]), **request_})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert problem in refused.value.response["Error"]["Message"]
    assert pipelines.emulation.callback(message["token"]).status == "Executing"


def test_a_failure_reason_over_256_characters_and_short_tokens_are_refused(pipelines: Pipelines):
    pipelines.start()
    (message,) = pipelines.messages()
    with pytest.raises(ClientError, match="FailureReason: length 257 > max 256"):
        pipelines.sagemaker.send_pipeline_execution_step_failure(
            CallbackToken=message["token"], FailureReason="r" * 257, ClientRequestToken="a" * 32
        )
    # Lengths under a minimum are refused by botocore itself, before a request is sent.
    with pytest.raises(ParamValidationError):
        pipelines.sagemaker.send_pipeline_execution_step_failure(CallbackToken="a" * 9, ClientRequestToken="a" * 32)
    with pytest.raises(ParamValidationError):
        pipelines.sagemaker.send_pipeline_execution_step_failure(CallbackToken=message["token"], ClientRequestToken="a")


def test_a_stopped_pipeline_sends_the_token_again_and_stops_once_it_is_answered(pipelines: Pipelines):
    arn = pipelines.start()
    (message,) = pipelines.messages()
    pipelines.sagemaker.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken="s" * 32)
    (stopping,) = pipelines.messages()
    assert stopping == {**message, "status": "Stopping"}
    assert pipelines.status(arn) == "Stopping"
    pipelines.sagemaker.send_pipeline_execution_step_failure(
        CallbackToken=message["token"], FailureReason="stopping", ClientRequestToken="a" * 32
    )
    assert pipelines.status(arn) == "Stopped"
