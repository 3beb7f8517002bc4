"""What a SageMaker pipeline's CallbackStep gives the gate and gets back: pure rules, no AWS."""

from __future__ import annotations

import json

import pytest

from training_gate.domain.pipeline import (
    FAILURE_REASON_MAX,
    OUTPUT_NAMES,
    OUTPUT_VALUE_MAX,
    CallbackMessageError,
    DecisionForPipeline,
    PipelineCallback,
    WaitingToken,
    answer_decision,
    answer_failure,
    answer_stopping,
    callback_of,
    execution_input,
    execution_name,
    fit,
    parse_entries,
    parse_message,
    utf16_length,
)

TOKEN = "AbCdE12345"
PIPELINE = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn/execution/abc123def456"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:training-gate:run-1"


def decision(outcome: str, **fields) -> DecisionForPipeline:
    return DecisionForPipeline(decision_id="job-1|sha", outcome=outcome, **fields)


def waiting(fail_step_on_reject: bool = False) -> WaitingToken:
    return WaitingToken(token=TOKEN, fail_step_on_reject=fail_step_on_reject)


@pytest.mark.parametrize(
    ("body", "stopping"),
    [
        ({"token": TOKEN, "pipelineExecutionArn": PIPELINE, "arguments": {"TrainingJobName": "j"}}, False),
        ({"token": TOKEN, "pipelineExecutionArn": PIPELINE, "arguments": {}, "status": "Executing"}, False),
        ({"token": TOKEN, "pipelineExecutionArn": PIPELINE, "arguments": {}, "status": "Stopping"}, True),
        ({"token": TOKEN, "arguments": None, "Status": "Stopping"}, True),
    ],
    ids=["plain", "executing", "stopping", "capitalised-status"],
)
def test_a_callback_message_is_read_with_its_token_and_whether_it_stops(body, stopping):
    message = parse_message(json.dumps(body))
    assert (message.token, message.stopping) == (TOKEN, stopping)
    assert isinstance(message.arguments, dict)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        (json.dumps({"arguments": {}}), "token: Field required"),
        (json.dumps({"token": "short"}), "token: String should match pattern"),
        (json.dumps({"token": "AbCdE-2345"}), "token: String should match pattern"),
    ],
    ids=["not-json", "array", "no-token", "short-token", "token-alphabet"],
)
def test_a_message_without_a_token_the_gate_could_answer_is_refused_naming_why(body, problem):
    with pytest.raises(CallbackMessageError, match=problem):
        parse_message(body)


def test_the_execution_input_carries_the_arguments_as_the_gate_reads_them_and_the_callback():
    message = parse_message(
        json.dumps(
            {
                "token": TOKEN,
                "pipelineExecutionArn": PIPELINE,
                "arguments": {
                    "HyperParameterTuningJobName": "hpo-1",
                    "tuning_candidates": "3",
                    "gate_tuning_children": "True",
                    "fail_step_on_reject": "false",
                    "colour": "red",
                },
            }
        )
    )
    assert execution_input(message) == {
        "HyperParameterTuningJobName": "hpo-1",
        "tuning_candidates": 3,
        "gate_tuning_children": True,
        "colour": "red",  # the workflow's validation refuses it, by name, and the step fails saying so
        "pipeline_callback": {"token": TOKEN, "pipeline_execution_arn": PIPELINE, "fail_step_on_reject": False},
    }


def test_the_execution_name_is_the_messages_own_so_a_second_delivery_finds_the_first_execution():
    body = json.dumps({"token": TOKEN, "arguments": {"TrainingJobName": "j"}})
    other = json.dumps({"token": TOKEN, "arguments": {"TrainingJobName": "j"}, "status": "Stopping"})
    name = execution_name(body, parse_message(body))
    assert name == execution_name(body, parse_message(body))
    assert name != execution_name(other, parse_message(other))
    assert name.startswith(f"pipeline-{TOKEN}-") and len(name) <= 80 and name.replace("-", "").isalnum()


def test_a_pass_answers_success_with_the_four_outputs_a_condition_step_reads():
    answer = answer_decision(
        decision("pass", model_package_arn="arn:pkg/1", report_uri="s3://b/r.json", reason_codes=""), waiting()
    )
    assert answer.success and list(answer.outputs) == list(OUTPUT_NAMES)
    assert answer.request() == {
        "CallbackToken": TOKEN,
        "OutputParameters": [
            {"Name": "decision", "Value": "pass"},
            {"Name": "model_package_arn", "Value": "arn:pkg/1"},
            {"Name": "report_uri", "Value": "s3://b/r.json"},
            {"Name": "reason_codes", "Value": ""},
        ],
        "ClientRequestToken": answer.client_request_token,
    }


@pytest.mark.parametrize("outcome", ["reject", "inconclusive", "skipped"])
def test_a_decision_that_is_not_a_pass_succeeds_for_branching_unless_the_step_asked_to_fail(outcome):
    branching = answer_decision(decision(outcome, reasons="accuracy 0.71 not > 0.9"), waiting())
    assert branching.success and branching.outputs["decision"] == outcome
    failing = answer_decision(decision(outcome, reasons="accuracy 0.71 not > 0.9"), waiting(True))
    assert not failing.success
    assert failing.request()["FailureReason"] == f"{outcome}: accuracy 0.71 not > 0.9"
    assert failing.client_request_token == branching.client_request_token  # one decision, one token


@pytest.mark.parametrize("outcome", ["training_failed", "unknown"])
def test_a_job_that_failed_or_an_unknown_outcome_fails_the_step(outcome):
    answer = answer_decision(decision(outcome, reasons="Failed: fix-code - see the logs"), waiting())
    assert not answer.success
    label = "training job failed" if outcome == "training_failed" else outcome
    assert answer.failure_reason == f"{label}: Failed: fix-code - see the logs"


def test_answers_fit_the_api_limits_whatever_the_decision_holds():
    long_reasons = "é" * 300 + "𝔸" * 300  # UTF-16 counts the second as two
    failing = answer_decision(decision("reject", reasons=long_reasons), waiting(True))
    assert utf16_length(failing.failure_reason or "") <= FAILURE_REASON_MAX
    assert failing.failure_reason.endswith("...")
    passing = answer_decision(decision("pass", reason_codes="X" * 5000, report_uri="s3://" + "r" * 2000), waiting())
    assert all(utf16_length(v) <= OUTPUT_VALUE_MAX for v in passing.outputs.values())
    assert utf16_length(fit("𝔸" * 200, 256)) <= 256


def test_the_client_request_token_is_derived_from_what_is_answered():
    one = answer_decision(decision("pass"), waiting())
    again = answer_decision(decision("pass"), waiting())
    other_token = answer_decision(decision("pass"), WaitingToken(token="ZzZzZ99999"))
    other_decision = answer_decision(DecisionForPipeline(decision_id="job-1|other", outcome="pass"), waiting())
    assert one.client_request_token == again.client_request_token
    assert len({one.client_request_token, other_token.client_request_token, other_decision.client_request_token}) == 3
    assert 32 <= len(one.client_request_token) <= 128


def test_a_failure_answer_depends_only_on_the_execution_its_error_and_its_cause():
    first = answer_failure(TOKEN, EXECUTION, "GateError", "ArtifactAccessDenied: access denied")
    again = answer_failure(TOKEN, EXECUTION, "GateError", "ArtifactAccessDenied:  access\ndenied")
    assert first.request() == again.request()
    assert first.failure_reason == "training-gate GateError: ArtifactAccessDenied: access denied (execution run-1)"
    aborted = answer_failure(TOKEN, EXECUTION, "Aborted", None)
    assert aborted.failure_reason == (
        "training-gate Aborted: the gate's execution was stopped before it decided (execution run-1)"
    )
    assert aborted.client_request_token != first.client_request_token
    long = answer_failure(TOKEN, EXECUTION, "GateError", "x" * 1000)
    assert len(long.failure_reason or "") == FAILURE_REASON_MAX


def test_a_stop_is_answered_with_a_failure_its_own_token_derived_from_the_pipeline_execution():
    answer = answer_stopping(TOKEN, PIPELINE)
    assert not answer.success and "stopping" in (answer.failure_reason or "")
    assert answer.client_request_token == answer_stopping(TOKEN, PIPELINE).client_request_token


def test_the_callback_of_a_raw_input_is_read_leniently():
    assert callback_of({"pipeline_callback": {"token": TOKEN, "extra": 1}}) == PipelineCallback(
        token=TOKEN, fail_step_on_reject=False
    )
    for raw in (None, "text", {"pipeline_callback": "x"}, {"pipeline_callback": {"token": "bad"}}, {}):
        assert callback_of(raw) is None


def test_a_token_left_twice_is_answered_once():
    entries = [WaitingToken(token=TOKEN, by="a").entry(), WaitingToken(token=TOKEN, by="b").entry(), "not json"]
    (entry,) = parse_entries(entries, WaitingToken)
    assert entry.token == TOKEN
