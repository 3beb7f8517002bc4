"""The local engine's Lambda SQS event source mapping (moto runs none), held to Lambda's documentation: batches
of at most BatchSize messages, received and deleted with the function's role, partial batch responses,
messages delivered again until the queue's maxReceiveCount moves them to its dead-letter queue, and a
message delivered more than once. And an execution that passes its timeout ends TIMED_OUT."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import boto3
import pytest

from training_gate_cli.local_engine import Fault, LocalEngineError, LocalGate, resources_of
from training_gate_cli.local_engine.emulated import create_training_job


@pytest.fixture(scope="module")
def account(template: dict, synthesized) -> Iterator[LocalGate]:
    with LocalGate(template, retry_time_scale=0.001, assets=synthesized.parent) as local:
        yield local


@pytest.fixture
def gate(account: LocalGate) -> Iterator[LocalGate]:
    account.reset()
    yield account


def queue_url(gate: LocalGate) -> str:
    return gate._event_source_mapping()[1]


def send(gate: LocalGate, body: str) -> None:
    boto3.client("sqs").send_message(QueueUrl=queue_url(gate), MessageBody=body)


def message(token: str, job: str = "no-such-job") -> str:
    return json.dumps({"token": token, "arguments": {"TrainingJobName": job}})


def bridge_invocations(gate: LocalGate) -> int:
    return sum(1 for name, _ in gate.lambda_responses if name.startswith("GateFunctionsStartCallback"))


def test_the_mapping_is_the_templates_batch_size_and_partial_batch_responses(template: dict, gate: LocalGate):
    (mapping,) = resources_of(template, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert (properties["BatchSize"], properties["FunctionResponseTypes"]) == (10, ["ReportBatchItemFailures"])
    function, url, arn, batch_size, partial = gate._event_source_mapping()
    assert function.startswith("GateFunctionsStartCallback") and (batch_size, partial) == (10, True)
    assert url.endswith("/training-gate-sagemaker-callbacks") and arn.endswith(":training-gate-sagemaker-callbacks")


def test_a_mapping_whose_function_outlives_the_queues_visibility_timeout_is_refused_as_lambda_refuses_it(
    gate: LocalGate, monkeypatch
):
    function, *_ = gate._event_source_mapping()
    template = copy.deepcopy(gate.template)
    template["Resources"][function]["Properties"]["Timeout"] = 900  # the queue's visibility timeout is 360 s
    monkeypatch.setattr(gate, "template", template)
    with pytest.raises(LocalEngineError, match=r"its timeout \(900 s\) exceeds the visibility timeout"):
        gate.deliver_callbacks()


def test_messages_arrive_in_batches_of_at_most_the_batch_size_received_and_deleted_with_the_functions_role(
    gate: LocalGate,
):
    for index in range(12):
        send(gate, message(f"Batch{index:05d}"))
    gate.iam.reset()
    started = gate.deliver_callbacks()
    assert len(started) == 12
    assert bridge_invocations(gate) == 2  # 10, then 2
    calls = {(c.action, c.allowed) for c in gate.iam.calls if c.role.startswith("GateFunctionsStartCallbackRole")}
    assert {("sqs:ReceiveMessage", True), ("sqs:DeleteMessage", True), ("states:StartExecution", True)} <= calls
    assert boto3.client("sqs").receive_message(QueueUrl=queue_url(gate)).get("Messages") is None
    for arn in started:
        gate.watch(arn)


def test_a_message_delivered_twice_starts_one_execution(gate: LocalGate):
    send(gate, message("TwiceTwice"))
    started = gate.deliver_callbacks(duplicates=1)
    assert bridge_invocations(gate) == 2 and len(started) == 1
    assert started[0].rsplit(":", 1)[-1].startswith("pipeline-TwiceTwice-")
    gate.watch(started[0])


def test_a_message_the_function_reports_failed_is_delivered_again_then_kept_in_the_dead_letter_queue(
    gate: LocalGate,
):
    send(gate, "not a callback message")
    send(gate, message("GoodOne123"))
    started = gate.deliver_callbacks()
    assert len(started) == 1  # the good message of the same batch was not delivered again
    assert gate.callback_dead_letters() == ["not a callback message"]
    # Received once with the good one, then alone until maxReceiveCount (5): five invocations in all.
    assert bridge_invocations(gate) == 5
    gate.watch(started[0])


def test_an_execution_past_its_timeout_ends_timed_out_and_its_alert_says_so(gate: LocalGate):
    create_training_job(gate, "timed-out", log_lines=None, statuses=())
    gate.faults.append(Fault(function="DescribeTrainingJob", kind="time_out"))
    result = gate.run({"TrainingJobName": "timed-out"}, name="timed-out")
    assert (result.status, result.error) == ("TIMED_OUT", None)
    assert result.states[-1] == "DescribeTrainingJob" and "TrainingJobStatus" not in result.states
    assert result.alert["alerted"] is True
    (alert,) = gate.operations_notifications()
    assert alert["Subject"] == "training-gate timed_out: States.Timeout - timed-out"
