"""SageMaker pipelines waiting on the gate: a CallbackStep's message on the gate's queue, the bridge, the
workflow, and the answer. In every scenario each waiting pipeline is answered exactly once (one answer
SageMaker accepted; a replay of the very same request is harmless, a refused second answer is not made),
and the decision is made once (one decision item, one package or one owners' notification), whoever asks
and whatever dies on the way.

The pipeline is the README's, as its definition JSON (examples/pipeline-definition.json): train, the gate's
CallbackStep, and a ConditionStep that deploys the package on `decision == "pass"` and fails otherwise."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from training_gate.dal.dynamodb import DecisionLog
from training_gate.domain.pipeline import OUTPUT_NAMES, execution_input, parse_message
from training_gate_cli.artifacts import pack_model_tar_gz
from training_gate_cli.local_engine import Fault, LocalGate, moto_hooks
from training_gate_cli.local_engine.emulated import (
    TuningChild,
    create_training_job,
    create_tuning_job,
    state_change_event,
    training_log,
)
from training_gate_cli.local_engine.pipelines import CallbackRun

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEFINITION = json.loads((EXAMPLES / "pipeline-definition.json").read_text())
GOOD_LOG = training_log(0.912, 0.905, 0.908, 0.901, 0.905)
WEAK_LOG = training_log(0.75, 0.71, 0.86, 0.86, 0.86)
GROUP = "training-gate-models"


# -- reading what happened ----------------------------------------------------------------------------


def packages() -> list[dict]:
    sagemaker = boto3.client("sagemaker")
    try:
        return sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    except sagemaker.exceptions.ClientError:
        return []


def decision_items(gate: LocalGate, key: str) -> list[dict]:
    return DecisionLog(gate.decision_table).history(key)


def the_callback(gate: LocalGate, pipeline_execution_arn: str) -> CallbackRun:
    (callback,) = gate.pipelines.callbacks_of(pipeline_execution_arn)
    return callback


def answered_once(gate: LocalGate, pipeline_execution_arn: str) -> dict[str, Any]:
    """The one answer SageMaker accepted for the pipeline's callback; nothing was refused."""
    callback = the_callback(gate, pipeline_execution_arn)
    assert len(callback.accepted) == 1, callback.accepted
    assert callback.refused == [], callback.refused
    return callback.accepted[0]


def outputs(answer: dict[str, Any]) -> dict[str, str]:
    assert answer["success"] is True, answer
    return {p["Name"]: p["Value"] for p in answer["OutputParameters"]}


def pipeline_status(gate: LocalGate, arn: str) -> str:
    return boto3.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]


# -- making it happen ---------------------------------------------------------------------------------


def start_pipeline(gate: LocalGate, job: str, name: str = "churn", definition: dict | None = None) -> str:
    return gate.start_pipeline(name, definition or DEFINITION, properties={"TrainModel": {"TrainingJobName": job}})


def with_arguments(**arguments: Any) -> dict:
    definition = copy.deepcopy(DEFINITION)
    gate_step = next(s for s in definition["Steps"] if s["Type"] == "Callback")
    gate_step["Arguments"].update(arguments)
    return definition


def run_callbacks(gate: LocalGate, duplicates: int = 0) -> list:
    return [gate.watch(arn) for arn in gate.deliver_callbacks(duplicates=duplicates)]


class Hold:
    """One execution waits in a step, before the step's use case runs, until the test releases it; then
    `then` runs in its place, or the use case."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        module: Any,
        attribute: str,
        holds: Callable[[Any], bool],
        then: Callable[..., Any] | None = None,
    ):
        self.entered = threading.Event()
        self.release = threading.Event()
        original = getattr(module, attribute)

        def held(request: Any, *args: Any, **kwargs: Any) -> Any:
            if holds(request):
                self.entered.set()
                assert self.release.wait(60), "the test never released the held execution"
                if then is not None:
                    return then(request, *args, **kwargs)
            return original(request, *args, **kwargs)

        monkeypatch.setattr(module, attribute, held)

    def wait(self) -> None:
        assert self.entered.wait(60), "the execution never reached the held step"


def hold_registration(monkeypatch: pytest.MonkeyPatch, execution_name: str, then=None) -> Hold:
    from training_gate.handlers import register_model

    return Hold(monkeypatch, register_model, "register", lambda r: f":{execution_name}" in r.execution_arn, then)


# -- every outcome answers -----------------------------------------------------------------------------


def test_a_passing_job_answers_its_pipeline_once_with_the_package_and_the_pipeline_deploys_it(
    gate: LocalGate, iris_artifact: bytes
):
    create_training_job(gate, "pipe-pass", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    arn = start_pipeline(gate, "pipe-pass")
    (result,) = run_callbacks(gate)

    assert result.states[-4:] == ["AfterRegistration", "AnswerDecision", "DecisionAnswered", "Registered"]
    (package,) = packages()
    answer = answered_once(gate, arn)
    assert list(outputs(answer)) == list(OUTPUT_NAMES)
    assert outputs(answer)["decision"] == "pass"
    assert outputs(answer)["model_package_arn"] == package["ModelPackageArn"] == result.output["model_package_arn"]
    assert outputs(answer)["report_uri"] == result.output["report_uri"]
    run = gate.pipelines.runs[arn]
    assert pipeline_status(gate, arn) == "Succeeded"
    assert run.arguments["DeployApproved"] == {"model_package_arn": package["ModelPackageArn"]}
    (item,) = decision_items(gate, "pipe-pass")
    token = the_callback(gate, arn).token
    assert [json.loads(a)["token"] for a in item["answers"]] == [token]
    assert json.loads(item["answers"][0])["answer"] == "success"
    # Each call was made as the role the template gives it, and allowed by it (the module fails on a denial).
    assert gate.iam is not None
    made = {(c.role, c.action) for c in gate.iam.calls if c.allowed}
    for role, action in [
        ("GateFunctionsAnswerPipelines", "sagemaker:SendPipelineExecutionStepSuccess"),
        ("GateFunctionsStartCallback", "sqs:ReceiveMessage"),
        ("GateFunctionsStartCallback", "sqs:DeleteMessage"),
        ("GateFunctionsStartCallback", "states:StartExecution"),
    ]:
        assert any(r.startswith(role) and a == action for r, a in made), (role, action)


def test_a_rejected_job_answers_reject_for_a_condition_step_to_branch_on(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "pipe-reject", log_lines=WEAK_LOG, artifact=iris_artifact, statuses=())
    arn = start_pipeline(gate, "pipe-reject")
    (result,) = run_callbacks(gate)

    assert result.error == "ModelRejected"
    answer = outputs(answered_once(gate, arn))
    assert (answer["decision"], answer["model_package_arn"], answer["reason_codes"]) == (
        "reject",
        "",
        "THRESHOLD_NOT_MET",
    )
    run = gate.pipelines.runs[arn]
    assert (pipeline_status(gate, arn), run.steps["GateSaidNo"]) == ("Failed", "Failed")
    assert run.failure_reason == f"training-gate: reject THRESHOLD_NOT_MET {answer['report_uri']}"
    assert packages() == [] and len(list(gate.notifications())) == 1
    assert len(decision_items(gate, "pipe-reject")) == 1


def test_fail_step_on_reject_fails_the_step_with_the_reasons(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "pipe-strict", log_lines=WEAK_LOG, artifact=iris_artifact, statuses=())
    arn = start_pipeline(gate, "pipe-strict", name="strict", definition=with_arguments(fail_step_on_reject="true"))
    (result,) = run_callbacks(gate)

    assert result.error == "ModelRejected"
    answer = answered_once(gate, arn)
    assert answer["success"] is False
    assert answer["FailureReason"].startswith("reject: accuracy 0.710 not > 0.9")
    assert len(answer["FailureReason"]) <= 256
    assert pipeline_status(gate, arn) == "Failed" and "GatePassed" not in gate.pipelines.runs[arn].steps


def test_a_failed_training_job_fails_the_step_once_and_tells_the_owners_once(gate: LocalGate):
    reason = "AlgorithmError: ExecuteUserScriptError: exit code 1"
    create_training_job(gate, "pipe-failed", log_lines=None, final_status="Failed", statuses=(), failure_reason=reason)
    arn = start_pipeline(gate, "pipe-failed")
    (result,) = run_callbacks(gate)

    assert result.error == "TrainingJobFailed"
    assert result.states[-3:] == ["AnswerNotice", "NoticeAnswered", "JobFailedOutcome"] or result.states[-4:-1] == [
        "AnswerNotice",
        "NoticeAnswered",
        "JobFailedOutcome",
    ]
    answer = answered_once(gate, arn)
    assert answer["success"] is False and answer["FailureReason"].startswith("training job failed: Failed:")
    assert pipeline_status(gate, arn) == "Failed"
    assert len(list(gate.notifications())) == 1
    (item,) = decision_items(gate, "pipe-failed")
    assert item["policy_sha256"] == "not-judged"


def test_a_job_already_judged_by_its_event_answers_with_the_recorded_decision(gate: LocalGate, iris_artifact: bytes):
    job = create_training_job(gate, "pipe-judged", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    by_event = gate.run(gate.route_event(state_change_event(job, "Completed")), name="pipe-judged-event")
    assert by_event.states[-1] == "Registered"

    arn = start_pipeline(gate, "pipe-judged")
    (result,) = run_callbacks(gate)
    assert result.states[-3:] == ["AnswerDecision", "DecisionAnswered", "DuplicateDecision"]
    answer = outputs(answered_once(gate, arn))
    assert answer["model_package_arn"] == by_event.output["model_package_arn"]
    assert answer["report_uri"] == by_event.output["report_uri"]  # the recorded decision's, not a new one
    assert len(packages()) == 1
    (item,) = decision_items(gate, "pipe-judged")
    assert (item["owner"], item["duplicates"]) == (by_event.arn, 1)


def test_a_message_delivered_twice_starts_one_execution_and_answers_once(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "pipe-twice", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    arn = start_pipeline(gate, "pipe-twice")
    results = run_callbacks(gate, duplicates=1)
    assert len(results) == 1
    assert outputs(answered_once(gate, arn))["decision"] == "pass"
    assert the_callback(gate, arn).replays == [] and len(packages()) == 1


# -- racing -----------------------------------------------------------------------------------------------


def test_two_callbacks_racing_make_one_decision_and_each_pipeline_is_answered_once(
    gate: LocalGate, iris_artifact: bytes
):
    create_training_job(gate, "pipe-race", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    first = start_pipeline(gate, "pipe-race", name="race-a")
    second = start_pipeline(gate, "pipe-race", name="race-b")
    results = run_callbacks(gate)  # one batch: both executions run at once

    assert sorted(r.status for r in results) == ["SUCCEEDED", "SUCCEEDED"]
    (package,) = packages()
    for arn in (first, second):
        assert outputs(answered_once(gate, arn))["model_package_arn"] == package["ModelPackageArn"]
        assert pipeline_status(gate, arn) == "Succeeded"
    assert len(decision_items(gate, "pipe-race")) == 1


def test_callbacks_arriving_while_the_event_started_execution_decides_are_answered_by_it(
    gate: LocalGate, iris_artifact: bytes, monkeypatch
):
    job = create_training_job(gate, "pipe-behind", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    hold = hold_registration(monkeypatch, "pipe-behind-event")
    owner = gate.start(gate.route_event(state_change_event(job, "Completed")), name="pipe-behind-event")
    hold.wait()  # the decision is claimed, nothing registered yet

    first = start_pipeline(gate, "pipe-behind", name="behind-a")
    second = start_pipeline(gate, "pipe-behind", name="behind-b")
    waiting = run_callbacks(gate)
    for result in waiting:
        assert result.states[-1] == "DuplicateInProgress"
        assert result.output["pipeline_token_left_with_owner"] is True
    assert [len(the_callback(gate, a).accepted) for a in (first, second)] == [0, 0]
    assert {pipeline_status(gate, a) for a in (first, second)} == {"Executing"}

    hold.release.set()
    result = gate.watch(owner)
    assert result.states[-3:] == ["AnswerDecision", "DecisionAnswered", "Registered"]
    (package,) = packages()
    for arn in (first, second):
        assert outputs(answered_once(gate, arn))["model_package_arn"] == package["ModelPackageArn"]
    (item,) = decision_items(gate, "pipe-behind")
    assert len(item["waiting"]) == 2 and len(item["answers"]) == 2


# -- deaths no Catch sees ---------------------------------------------------------------------------------


def _abort(gate: LocalGate, execution_name: str) -> Callable[..., Any]:
    def die(request: Any, *args: Any, **kwargs: Any) -> Any:
        with gate.acting_as_person():
            boto3.client("stepfunctions").stop_execution(
                executionArn=request.execution_arn, error="Aborted", cause="stopped by a person"
            )
        raise RuntimeError("the function was stopped with its execution")

    return die


def test_an_owner_aborted_after_a_token_was_left_with_it_fails_that_pipeline_once_and_a_rerun_answers_none_again(
    gate: LocalGate, iris_artifact: bytes, monkeypatch
):
    job = create_training_job(gate, "pipe-abort", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    hold = hold_registration(monkeypatch, "pipe-abort-event", then=_abort(gate, "pipe-abort-event"))
    execution_input = gate.route_event(state_change_event(job, "Completed"))
    owner = gate.start(execution_input, name="pipe-abort-event")
    hold.wait()
    arn = start_pipeline(gate, "pipe-abort")
    (waiting,) = run_callbacks(gate)
    assert waiting.states[-1] == "DuplicateInProgress"

    hold.release.set()
    aborted = gate.watch(owner)  # no Catch runs on an abort: the end-of-execution alert answers
    assert aborted.status == "ABORTED" and aborted.alert["pipelines_answered"] == 1
    answer = answered_once(gate, arn)
    assert answer["success"] is False
    assert answer["FailureReason"] == (
        "training-gate Aborted: the gate's execution was stopped before it decided (execution pipe-abort-event)"
    )
    assert pipeline_status(gate, arn) == "Failed" and packages() == []
    (alert,) = gate.operations_notifications()
    assert f"{the_callback(gate, arn).token} (failure)" in alert["Message"]

    monkeypatch.undo()
    rerun = gate.run(execution_input, name="pipe-abort-rerun")  # operations re-run it: it takes over
    assert rerun.states[-1] == "Registered" and "AnswerDecision" not in rerun.states
    assert len(packages()) == 1 and len(the_callback(gate, arn).accepted) == 1
    (item,) = decision_items(gate, "pipe-abort")
    assert (item["closed_by"], item["takeovers"]) == (owner, [rerun.arn])

    late = start_pipeline(gate, "pipe-abort", name="late")  # asks after: the recorded decision
    run_callbacks(gate)
    assert outputs(answered_once(gate, late))["decision"] == "pass"


def _dies_unfinished(request: Any, *args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the function did not finish before its execution ended")


@pytest.mark.parametrize("finishes", [True, False], ids=["completed-before-the-end", "unfinished"])
def test_an_owner_that_times_out_while_a_pipeline_waits_answers_it_through_the_alert(
    gate: LocalGate, iris_artifact: bytes, monkeypatch, finishes: bool
):
    job_name = f"pipe-timeout-{finishes}".lower()
    job = create_training_job(gate, job_name, log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    hold = hold_registration(monkeypatch, f"{job_name}-event", then=None if finishes else _dies_unfinished)
    owner = gate.start(gate.route_event(state_change_event(job, "Completed")), name=f"{job_name}-event")
    hold.wait()
    arn = start_pipeline(gate, job_name)
    run_callbacks(gate)

    moto_hooks.time_out_execution(owner)  # past its TimeoutSeconds; its function runs on to its own end
    hold.release.set()
    timed_out = gate.watch(owner)
    assert timed_out.status == "TIMED_OUT" and "AnswerDecision" not in timed_out.states
    assert timed_out.alert["pipelines_answered"] == 1
    if finishes:
        # The decision completed (the package exists): the waiting pipeline gets it, not a failure.
        (package,) = packages()
        assert outputs(answered_once(gate, arn))["model_package_arn"] == package["ModelPackageArn"]
        return
    answer = answered_once(gate, arn)
    assert answer["FailureReason"] == (
        f"training-gate States.Timeout: the gate's execution timed out before it decided (execution {job_name}-event)"
    )
    assert packages() == []
    monkeypatch.undo()
    rerun = gate.run(gate.route_event(state_change_event(job, "Completed")), name=f"{job_name}-rerun")
    assert rerun.states[-1] == "Registered" and len(the_callback(gate, arn).accepted) == 1


def test_a_data_limit_after_the_claim_fails_the_pipeline_once_and_the_next_caller_takes_the_decision_over(
    gate: LocalGate, iris_artifact: bytes, monkeypatch
):
    from training_gate.handlers import evaluate_policy

    create_training_job(gate, "pipe-limit", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    real = evaluate_policy.handler

    def too_large(event, context):
        answer = real(event, context)  # the decision is claimed, with this execution's token on it
        return {**answer, "padding": "x" * (300 * 1024)}

    monkeypatch.setattr(evaluate_policy, "handler", too_large)
    gate._handlers.clear()
    first = start_pipeline(gate, "pipe-limit", name="limit-a")
    (died,) = run_callbacks(gate)
    monkeypatch.undo()
    gate._handlers.clear()

    assert (died.status, died.error) == ("FAILED", "States.DataLimitExceeded")
    assert "DescribeGateError" not in died.states and died.alert["pipelines_answered"] == 1
    answer = answered_once(gate, first)
    assert answer["FailureReason"].startswith("training-gate States.DataLimitExceeded")

    second = start_pipeline(gate, "pipe-limit", name="limit-b")
    (result,) = run_callbacks(gate)
    assert result.states[-1] == "Registered" and result.output["resumed"] is True
    assert outputs(answered_once(gate, second))["decision"] == "pass"
    assert len(the_callback(gate, first).accepted) == 1 and the_callback(gate, first).refused == []
    (item,) = decision_items(gate, "pipe-limit")
    assert item["closed_by"] == died.arn and item["takeovers"] == [result.arn]
    assert len(packages()) == 1


# -- gate errors, stops and what a pipeline gets wrong --------------------------------------------------


def test_arguments_the_gate_refuses_fail_the_step_naming_them(gate: LocalGate):
    arn = start_pipeline(gate, "pipe-args", name="bad-args", definition=with_arguments(dry_run=True, colour="red"))
    (result,) = run_callbacks(gate)
    assert result.error == "GateError" and result.states[-2:] == ["AnswerGateError", "GateError"]
    answer = answered_once(gate, arn)
    assert answer["success"] is False and "colour: Extra inputs are not permitted" in answer["FailureReason"]
    # The operations alert sends the very same answer again: a replay SageMaker answers as before.
    assert [r["ClientRequestToken"] for r in the_callback(gate, arn).replays] == [answer["ClientRequestToken"]]
    assert len(list(gate.operations_notifications())) == 1


def test_owners_who_cannot_be_told_fail_the_step_and_keep_the_decision(gate: LocalGate, iris_artifact: bytes):
    create_training_job(gate, "pipe-sns", log_lines=WEAK_LOG, artifact=iris_artifact, statuses=())
    arn = start_pipeline(gate, "pipe-sns")
    callback = the_callback(gate, arn)
    body = boto3.client("sqs").receive_message(QueueUrl=callback.queue_url)["Messages"][0]["Body"]
    # Started by hand with the bridge's input, to select the fault-injection case.
    result = gate.run(execution_input(parse_message(body)), name="pipe-sns", test_case="OwnersNotificationFails")
    assert result.error == "NotificationFailed" and result.states[-2:] == [
        "AnswerNotificationFailed",
        "NotificationFailed",
    ]
    answer = answered_once(gate, arn)
    assert answer["FailureReason"].startswith("training-gate NotificationFailed: the owners' topic refused")
    assert answer["FailureReason"].endswith("(execution pipe-sns)")
    (item,) = decision_items(gate, "pipe-sns")
    assert (item["status"], item["closed_by"]) == ("decided", result.arn)


def test_a_stopped_pipeline_is_answered_at_once_and_the_decision_goes_on(
    gate: LocalGate, iris_artifact: bytes, monkeypatch
):
    create_training_job(gate, "pipe-stop", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    arn = start_pipeline(gate, "pipe-stop")
    token = the_callback(gate, arn).token
    hold = hold_registration(monkeypatch, f"pipeline-{token}-", then=None)
    hold_started = gate.deliver_callbacks()
    hold.wait()

    gate.stop_pipeline(arn)
    assert gate.deliver_callbacks() == []  # the stop message is answered by the bridge, no execution
    assert pipeline_status(gate, arn) == "Stopped"
    stop_answer = answered_once(gate, arn)
    assert stop_answer["success"] is False and "stopping" in stop_answer["FailureReason"]

    hold.release.set()
    (result,) = [gate.watch(a) for a in hold_started]
    assert result.status == "SUCCEEDED" and result.states[-1] == "Registered"  # the refusal is no error
    callback = the_callback(gate, arn)
    assert len(callback.accepted) == 1 and len(callback.refused) == 1
    (item,) = decision_items(gate, "pipe-stop")
    assert [json.loads(a)["answer"] for a in item["answers"]] == ["refused"]
    assert len(packages()) == 1


def test_a_training_job_its_tuning_job_judges_fails_the_step_naming_the_tuning_job(
    gate: LocalGate, iris_artifact: bytes
):
    tuning = create_tuning_job(gate, "pipe-hpo", [TuningChild(0.95)], artifact=iris_artifact)
    child = tuning["Children"][0]["TrainingJobName"]
    arn = start_pipeline(gate, child)
    (result,) = run_callbacks(gate)
    assert result.states[-2:] == ["AnswerChildOfTuningJob", "ChildOfTuningJob"]
    answer = answered_once(gate, arn)
    assert answer["FailureReason"].startswith(
        f"training-gate ChildOfTuningJob: training job {child} is judged with its tuning job pipe-hpo: give the step "
        "HyperParameterTuningJobName, or gate_tuning_children: true"
    )
    assert decision_items(gate, child) == []

    by_tuning_job = start_pipeline(
        gate, "unused", name="hpo", definition=_tuning_definition(tuning["HyperParameterTuningJobName"])
    )
    (judged,) = run_callbacks(gate)
    assert judged.states[-1] == "Registered"
    assert outputs(answered_once(gate, by_tuning_job))["decision"] == "pass"


def _tuning_definition(tuning_job_name: str) -> dict:
    definition = copy.deepcopy(DEFINITION)
    gate_step = next(s for s in definition["Steps"] if s["Type"] == "Callback")
    gate_step["Arguments"] = {"HyperParameterTuningJobName": tuning_job_name}
    return definition


def test_a_message_with_no_token_to_answer_ends_in_the_dead_letter_queue(gate: LocalGate):
    boto3.client("sqs").send_message(QueueUrl=gate._event_source_mapping()[1], MessageBody='{"arguments": {}}')
    assert gate.deliver_callbacks() == []
    assert gate.callback_dead_letters() == ['{"arguments": {}}']


# -- a death between any two side effects -------------------------------------------------------------------

# A model of a framework the gate recognises and does not judge (a PMML document): the decision is `skipped`.
UNJUDGED_ARTIFACT = pack_model_tar_gz({"model.pmml": b'<?xml version="1.0"?>\n<PMML version="4.4">'})


DEATHS = [
    # (outcome, the function whose invocation the fault hits, the fault)
    ("pass", "EvaluatePolicy", "abort"),
    ("pass", "EvaluatePolicy", "time_out"),
    ("pass", "RegisterModel", "stop"),
    ("pass", "RegisterModel", "abort"),
    ("pass", "AnswerPipelines", "stop"),
    ("pass", "AnswerPipelines", "abort"),
    ("pass", "AnswerPipelines", "lose_response"),
    ("reject", "RecordOutcome", "abort"),
    ("reject", "NotifyOwners", "stop"),
    ("reject", "NotifyOwners", "abort"),
    ("reject", "AnswerPipelines", "abort"),
    ("skipped", "RecordOutcome", "abort"),
    ("skipped", "NotifyOwners", "stop"),
    ("skipped", "NotifyOwners", "abort"),
    ("skipped", "AnswerPipelines", "time_out"),
]


@pytest.mark.parametrize(("outcome", "function", "kind"), DEATHS, ids=["-".join(d) for d in DEATHS])
def test_a_death_between_any_two_side_effects_answers_the_pipeline_once_and_decides_once(
    gate: LocalGate, iris_artifact: bytes, outcome: str, function: str, kind: str
):
    job = f"pd-{outcome}-{function}-{kind}".lower().replace("_", "-")[:60]
    artifact = UNJUDGED_ARTIFACT if outcome == "skipped" else iris_artifact
    log = WEAK_LOG if outcome == "reject" else GOOD_LOG
    create_training_job(gate, job, log_lines=log, artifact=artifact, statuses=())
    arn = start_pipeline(gate, job, name=f"p-{outcome}-{function}-{kind}".lower().replace("_", "-"))
    gate.faults.append(Fault(function=function, kind=kind))
    (first,) = run_callbacks(gate)
    gate.faults.clear()
    execution_input = json.loads(boto3.client("stepfunctions").describe_execution(executionArn=first.arn)["input"])

    rerun = gate.run(execution_input, name=f"{job}-rerun")  # operations re-run the alert's input
    redriven = None
    if first.status != "SUCCEEDED":
        gate.redrive(first.arn)
        redriven = gate.watch(first.arn)
    late = start_pipeline(gate, job, name=f"late-{outcome}-{function}-{kind}".lower().replace("_", "-"))
    run_callbacks(gate)

    summary = {
        "first": (first.status, first.states[-3:], first.error),
        "rerun": (rerun.status, rerun.states[-3:], rerun.error),
        "redriven": redriven and (redriven.status, redriven.states[-3:], redriven.error),
        "callback": the_callback(gate, arn),
        "late": the_callback(gate, late),
    }
    answer = answered_once(gate, arn)
    late_answer = answered_once(gate, late)
    owners = [n["Subject"] for n in gate.notifications()]
    skips = [n["Subject"] for n in gate.operations_notifications() if n["Subject"].startswith("Model skipped")]
    events = list(gate.decision_events())
    assert len(events) == 1, summary
    assert len(packages()) == (1 if outcome == "pass" else 0), summary
    assert len(owners) == (1 if outcome == "reject" else 0), summary
    assert len(skips) == (1 if outcome == "skipped" else 0), summary
    (item,) = decision_items(gate, job)
    assert item["status"] == "complete", summary
    assert outputs(late_answer)["decision"] == outcome, summary
    if answer["success"]:
        assert outputs(answer)["decision"] == outcome, summary
    else:
        # The owner died holding the decision: its pipeline failed with why, once; the re-run decided.
        assert answer["FailureReason"].startswith("training-gate "), summary


def _abort_after_the_send(monkeypatch: pytest.MonkeyPatch, gate: LocalGate, execution_arn: Callable[[], str]) -> list:
    """The first answer SageMaker accepts stops its execution right after: nothing records it."""
    from training_gate.dal import sagemaker

    real, hit = sagemaker.PipelineCallbacks.send, []

    def send(self, request, success):
        answered = real(self, request, success)
        if not hit:
            hit.append(request)
            with gate.acting_as_person():
                boto3.client("stepfunctions").stop_execution(executionArn=execution_arn(), error="Aborted")
            raise RuntimeError("the function was stopped with its execution")
        return answered

    monkeypatch.setattr(sagemaker.PipelineCallbacks, "send", send)
    return hit


def _running(gate: LocalGate) -> str:
    (running,) = [e["executionArn"] for e in gate._all_executions() if e["status"] == "RUNNING"]
    return running


@pytest.mark.parametrize("gate_error", [False, True], ids=["decision-answer", "failure-answer"])
def test_an_execution_stopped_between_an_answer_and_its_record_is_answered_again_with_the_very_same_request(
    gate: LocalGate, iris_artifact: bytes, monkeypatch, gate_error: bool
):
    job = f"pipe-unrecorded-{gate_error}".lower()
    create_training_job(gate, job, log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    arn = start_pipeline(gate, job, name=f"unrecorded-{gate_error}".lower())
    if gate_error:  # the registration fails for good after the claim: the owner closes and fails the step
        gate.faults.append(Fault(function="RegisterModel", kind="crash", error="RegistryDown"))
    sent = _abort_after_the_send(monkeypatch, gate, lambda: _running(gate))
    (died,) = run_callbacks(gate)
    gate.faults.clear()

    assert died.status == "ABORTED" and len(sent) == 1
    callback = the_callback(gate, arn)
    # The alert sent the answer again: SageMaker takes the same request as done, nothing is refused.
    assert len(callback.accepted) == 1 and callback.refused == [], callback
    assert [r["ClientRequestToken"] for r in callback.replays] == [sent[0]["ClientRequestToken"]]
    (item,) = decision_items(gate, job)
    assert [json.loads(a)["token"] for a in item["answers"]] == [callback.token]
    assert callback.accepted[0]["success"] is not gate_error


def test_an_execution_stopped_after_answering_before_any_decision_leaves_the_alert_a_refused_second_answer(
    gate: LocalGate, monkeypatch
):
    # The documented window: no decision item holds the token, so nothing says what the first answer was.
    arn = start_pipeline(gate, "pipe-args", name="bad-args-stopped", definition=with_arguments(colour="red"))
    sent = _abort_after_the_send(monkeypatch, gate, lambda: _running(gate))
    (died,) = run_callbacks(gate)
    assert died.status == "ABORTED" and died.alert["alerted"]
    callback = the_callback(gate, arn)
    assert callback.accepted == [{"success": False, **sent[0]}]  # the pipeline keeps the first answer
    assert [r["FailureReason"].split(":")[0] for r in callback.refused] == ["training-gate Aborted"]
    assert pipeline_status(gate, arn) == "Failed"
