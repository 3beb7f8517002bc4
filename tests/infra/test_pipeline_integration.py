"""The stack's side of SageMaker pipelines: the callback queue and its dead-letter queue, the bridge (an SQS
event source mapping on StartCallback), and what each role may do to answer a pipeline."""

from __future__ import annotations

import json

from infra.names import QUEUE_NAME_MAX, GateNames
from tests.infra.test_template import _actions, _statements
from training_gate_cli.local_engine import resources_of


def one(template: dict, resource_type: str, prefix: str) -> tuple[str, dict]:
    (found,) = [(k, v) for k, v in resources_of(template, resource_type).items() if k.startswith(prefix)]
    return found


def test_the_callback_queue_is_encrypted_named_for_pipelines_and_keeps_what_it_cannot_deliver(template: dict):
    callbacks_id, callbacks = one(template, "AWS::SQS::Queue", "GateCallbacks")
    dead_id, dead = one(template, "AWS::SQS::Queue", "GateCallbackDeadLetters")
    properties = callbacks["Properties"]
    assert properties["QueueName"] == "training-gate-sagemaker-callbacks"
    assert properties["SqsManagedSseEnabled"] is True and dead["Properties"]["SqsManagedSseEnabled"] is True
    assert properties["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_id, "Arn"]},
        "maxReceiveCount": 5,
    }
    _, function = one(template, "AWS::Lambda::Function", "GateFunctionsStartCallback")
    # Lambda's advice for an SQS source: a visibility timeout of at least six times the function's timeout.
    assert properties["VisibilityTimeout"] >= 6 * function["Properties"]["Timeout"]
    secured = set()
    for policy in resources_of(template, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}:
                secured |= {q["Ref"] for q in policy["Properties"]["Queues"]}
    assert {callbacks_id, dead_id} <= secured


def test_the_bridge_is_an_event_source_mapping_with_partial_batch_responses(template: dict):
    (mapping,) = resources_of(template, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["FunctionName"]["Ref"].startswith("GateFunctionsStartCallback")
    assert properties["EventSourceArn"]["Fn::GetAtt"][0].startswith("GateCallbacks")
    assert (properties["BatchSize"], properties["FunctionResponseTypes"]) == (10, ["ReportBatchItemFailures"])


def test_the_bridge_may_start_this_gates_executions_answer_a_stop_and_consume_its_queue_nothing_else(
    template: dict,
):
    statements = _statements(template, "GateFunctionsStartCallbackRole")
    (machine,) = resources_of(template, "AWS::StepFunctions::StateMachine")
    callbacks_id, _ = one(template, "AWS::SQS::Queue", "GateCallbacks")
    by_action: dict[str, list] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action.setdefault(action, []).append(statement["Resource"])
    assert by_action["states:StartExecution"] == [{"Ref": machine}]
    assert by_action["sagemaker:SendPipelineExecutionStepFailure"] == ["*"]
    assert "sagemaker:SendPipelineExecutionStepSuccess" not in by_action
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert by_action[action] == [{"Fn::GetAtt": [callbacks_id, "Arn"]}], action
    assert not {a for a in by_action if a.startswith(("sns:", "s3:", "dynamodb:"))}


def test_only_the_functions_that_answer_pipelines_may(template: dict):
    answer = {"sagemaker:SendPipelineExecutionStepSuccess", "sagemaker:SendPipelineExecutionStepFailure"}
    for name in ("AnswerPipelines", "AlertOperations"):
        assert answer <= _actions(_statements(template, f"GateFunctions{name}Role")), name
    for name in ("EvaluatePolicy", "NotifyOwners", "RegisterModel", "RecordOutcome", "DescribeFailure"):
        assert not answer & _actions(_statements(template, f"GateFunctions{name}Role")), name
    answering = _actions(_statements(template, "GateFunctionsAnswerPipelinesRole"))
    assert {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= answering
    assert not {a for a in answering if a.startswith(("sns:", "s3:", "states:"))}


def test_what_waits_for_an_operator_is_alarmed_and_the_queue_is_an_output(template: dict):
    alarms = resources_of(template, "AWS::CloudWatch::Alarm").values()
    names = {a["Properties"]["AlarmDescription"].split(":")[1].split(">")[0].strip() for a in alarms}
    assert {"CallbackDeadLetters", "StartCallbackErrors", "StartCallbackThrottles", "AnswerPipelinesThrottles"} <= names
    callbacks_id, _ = one(template, "AWS::SQS::Queue", "GateCallbacks")
    outputs = template["Outputs"]
    assert outputs["CallbackQueueUrl"]["Value"] == {"Ref": callbacks_id}
    assert outputs["CallbackQueueArn"]["Value"] == {"Fn::GetAtt": [callbacks_id, "Arn"]}


def test_the_queue_name_fits_sqs_for_any_stack_name_and_two_stacks_never_share_it():
    names = {GateNames(stack).callback_queue for stack in ("TrainingGateStack", "Staging", "T" * 128, "T" * 127 + "U")}
    assert len(names) == 4
    for name in names:
        assert len(name) <= QUEUE_NAME_MAX and name.endswith("sagemaker-callbacks") and name.replace("-", "").isalnum()


def test_fail_step_on_reject_reaches_the_first_step(tmp_path):
    from training_gate_cli.synth import synthesize

    strict = json.loads(synthesize(tmp_path, overrides={"fail_step_on_reject": True}).read_text())
    _, validate = one(strict, "AWS::Lambda::Function", "GateFunctionsValidateInput")
    assert validate["Properties"]["Environment"]["Variables"]["FAIL_STEP_ON_REJECT"] == "true"
