"""IAM in the local engine (training_gate_cli/local_engine/iam.py): canaries for moto's own IAM mode and for
the hooks the engine uses, the evaluation rules, and the gate's roles refusing what the template lacks."""

from __future__ import annotations

import copy
import inspect
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from training_gate_cli.local_engine import LocalEngineError, LocalGate, iam
from training_gate_cli.local_engine.emulated import create_training_job, training_log
from training_gate_cli.local_engine.provision import Account, Resolver

REGION = "us-east-1"
ACCOUNT = "123456789012"


# -- moto's own IAM mode: what it checks, and what it cannot -------------------------------------


def _user_with_policy(statement: dict[str, Any]) -> tuple[str, str]:
    client = boto3.client("iam", region_name=REGION)
    client.create_user(UserName="u")
    client.put_user_policy(
        UserName="u", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )
    key = client.create_access_key(UserName="u")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_moto_denies_a_call_its_iam_policy_lacks():
    from moto.core.authorization import enable_iam_authentication

    with mock_aws():
        key, secret = _user_with_policy({"Effect": "Allow", "Action": "sns:ListTopics", "Resource": "*"})
        sns = boto3.client("sns", region_name=REGION, aws_access_key_id=key, aws_secret_access_key=secret)
        with enable_iam_authentication():
            sns.list_topics()
            with pytest.raises(sns.exceptions.ClientError, match="not authorized to perform: sns:CreateTopic"):
                sns.create_topic(Name="t")


def test_moto_checks_a_sagemaker_call_against_star_so_a_resource_scoped_grant_never_allows_it():
    # Why local_engine/iam.py computes the resource itself: moto knows it only for S3, SQS, IAM and STS.
    from moto.core.authorization import enable_iam_authentication

    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/j"
    with mock_aws():
        key, secret = _user_with_policy({"Effect": "Allow", "Action": "sagemaker:DescribeTrainingJob", "Resource": arn})
        sagemaker = boto3.client("sagemaker", region_name=REGION, aws_access_key_id=key, aws_secret_access_key=secret)
        with enable_iam_authentication(), pytest.raises(sagemaker.exceptions.ClientError) as raised:
            sagemaker.describe_training_job(TrainingJobName="j")
        assert "not authorized to perform: sagemaker:DescribeTrainingJob" in str(raised.value), (
            "moto now checks SageMaker resources: the local IAM model could use its evaluation"
        )


# -- the hooks (named in local_engine/iam.py) -----------------------------------------------------


def test_the_authorizer_hook_sees_every_request_with_its_action():
    from moto.core.authorization import ActionAuthenticatorMixin

    params = list(inspect.signature(ActionAuthenticatorMixin._authenticate_and_authorize_action).parameters)
    assert params == ["self", "iam_request_cls", "resource"], "the authorizer hook moved"
    seen: list[tuple[str, str, str]] = []
    enforcement = _enforcement([{"Effect": "Allow", "Action": "*", "Resource": "*"}])
    enforcement.authorize = lambda role, request: seen.append((request.service, request.action, request.s3_resource))  # type: ignore[method-assign]
    with mock_aws(), iam.enforced(enforcement):
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="bucket-a")
        with enforcement.acting_as_function("Fn"):
            boto3.client("s3", region_name=REGION).put_object(Bucket="bucket-a", Key="k", Body=b"1")
            with pytest.raises(boto3.client("sagemaker").exceptions.ClientError):
                boto3.client("sagemaker", region_name=REGION).describe_training_job(TrainingJobName="j")
            boto3.client("sns", region_name=REGION).list_topics()
    assert seen == [
        ("s3", "PutObject", "arn:aws:s3:::bucket-a/k"),
        ("sagemaker", "DescribeTrainingJob", "*"),
        ("sns", "ListTopics", "*"),
    ], "only the calls made as the function are the function's"


def test_the_step_functions_interpreter_signs_its_task_calls_with_the_access_key_the_engine_attributes():
    from moto.stepfunctions.parser.asl.utils import boto_client

    source = inspect.getsource(boto_client.boto_client_for)
    assert f'aws_access_key_id="{iam.INTERPRETER_ACCESS_KEY}"' in source, "the interpreter's access key moved"


# -- evaluation rules ----------------------------------------------------------------------------


def _template(statements: list[dict[str, Any]], trusted: str = iam.LAMBDA_PRINCIPAL) -> dict[str, Any]:
    trust = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": trusted}}]}
    return {
        "Resources": {
            "FnRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}},
            "FnPolicy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"PolicyDocument": {"Statement": statements}, "Roles": [{"Ref": "FnRole"}]},
            },
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Role": {"Fn::GetAtt": ["FnRole", "Arn"]}}},
        }
    }


def _enforcement(statements: list[dict[str, Any]], trusted: str = iam.LAMBDA_PRINCIPAL) -> iam.Enforcement:
    template = _template(statements, trusted)
    return iam.Enforcement(template, Resolver(Account(), template).resolve)


class FakeRequest(iam.Request):
    def __init__(self, service: str, action: str, params: dict[str, Any], s3_resource: str = "*"):
        self.service, self.action, self._params, self.s3_resource = service, action, params, s3_resource
        self.region, self.account, self.partition = REGION, ACCOUNT, "aws"

    def param(self, name: str) -> Any:
        return self._params.get(name)


def _allowed(statements: list[dict[str, Any]], request: FakeRequest) -> bool:
    enforcement = _enforcement(statements)
    try:
        enforcement.authorize(enforcement.roles["FnRole"], request)
    except iam.AccessDenied:
        return False
    return True


JOB = FakeRequest("sagemaker", "DescribeTrainingJob", {"TrainingJobName": "Churn-7"})
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/churn-7"  # SageMaker lowercases names in ARNs


@pytest.mark.parametrize(
    ("statements", "allowed"),
    [
        ([{"Effect": "Allow", "Action": "sagemaker:DescribeTrainingJob", "Resource": JOB_ARN}], True),
        ([{"Effect": "Allow", "Action": "SageMaker:describetrainingjob", "Resource": JOB_ARN}], True),  # any case
        ([{"Effect": "Allow", "Action": "sagemaker:Describe*", "Resource": JOB_ARN.replace("-7", "-?")}], True),
        ([{"Effect": "Allow", "Action": "sagemaker:DescribeTrainingJob", "Resource": JOB_ARN.upper()}], False),
        ([{"Effect": "Allow", "Action": "sagemaker:DescribeTrainingJob", "Resource": JOB_ARN + "x"}], False),
        ([{"Effect": "Allow", "Action": "sagemaker:ListTags", "Resource": "*"}], False),
        ([{"Effect": "Allow", "NotAction": "sagemaker:Create*", "Resource": "*"}], True),
        ([{"Effect": "Allow", "NotAction": "sagemaker:Describe*", "Resource": "*"}], False),
        ([{"Effect": "Allow", "Action": "sagemaker:*", "NotResource": JOB_ARN}], False),
        (
            [
                {"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "sagemaker:DescribeTrainingJob", "Resource": JOB_ARN},
            ],
            False,
        ),
    ],
)
def test_identity_policies_are_evaluated_as_iam_evaluates_them(statements: list[dict], allowed: bool):
    assert _allowed(statements, JOB) is allowed


def test_an_encrypted_topic_also_needs_its_key():
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:t"
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"
    publish = FakeRequest("sns", "Publish", {"TopicArn": topic})
    enforcement = _enforcement([{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}])
    enforcement.kms_keys[topic] = key
    with pytest.raises(iam.AccessDenied, match=f"kms:GenerateDataKey on resource: {key}"):
        enforcement.authorize(enforcement.roles["FnRole"], publish)
    granted = _enforcement(
        [
            {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic},
            {"Effect": "Allow", "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": key},
        ]
    )
    granted.kms_keys[topic] = key
    granted.authorize(granted.roles["FnRole"], publish)
    assert [(c.action, c.allowed) for c in granted.calls] == [
        ("sns:Publish", True),
        ("kms:GenerateDataKey", True),
        ("kms:Decrypt", True),
    ]


def test_a_call_the_model_does_not_know_fails_naming_where_to_add_it():
    enforcement = _enforcement([{"Effect": "Allow", "Action": "*", "Resource": "*"}])
    with pytest.raises(LocalEngineError, match=r"sagemaker:StopTrainingJob.*add the resource it acts on to RESOURCES"):
        enforcement.authorize(enforcement.roles["FnRole"], FakeRequest("sagemaker", "StopTrainingJob", {}))


def test_a_condition_is_refused_rather_than_half_evaluated():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"Bool": {"a": "b"}}}
    with pytest.raises(LocalEngineError, match="Condition"):
        _enforcement([statement])


def test_a_function_role_that_does_not_trust_lambda_cannot_be_assumed():
    with pytest.raises(LocalEngineError, match=r"does not trust lambda\.amazonaws\.com"):
        _enforcement([], trusted="ec2.amazonaws.com").start()


# -- the gate's own roles --------------------------------------------------------------------------


def _without(template: dict[str, Any], role_prefix: str, action: str) -> dict[str, Any]:
    """The template with `action` taken out of the policies of the role whose logical ID starts so."""
    changed = copy.deepcopy(template)
    for resource in changed["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if not any(r["Ref"].startswith(role_prefix) for r in resource["Properties"]["Roles"]):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            statement["Action"] = [a for a in actions if a != action] or ["none:None"]
    return changed


@pytest.mark.parametrize(
    ("role", "action", "error"),
    [
        ("GateFunctionsDescribeTrainingJobRole", "sagemaker:DescribeTrainingJob", "AccessDeniedException"),
        ("GateWorkflowStateMachineRole", "lambda:InvokeFunction", "Lambda.AccessDeniedException"),
    ],
    ids=["function-role", "state-machine-role"],
)
def test_a_call_the_synthesized_role_does_not_allow_fails_the_execution_as_on_aws(
    template: dict, synthesized, iris_artifact_bytes: bytes, role: str, action: str, error: str
):
    with LocalGate(_without(template, role, action), retry_time_scale=0.001, assets=synthesized.parent) as gate:
        create_training_job(
            gate, "denied", log_lines=training_log(0.95, 0.95, 0.95, 0.95, 0.95), artifact=iris_artifact_bytes
        )
        result = gate.run({"TrainingJobName": "denied"}, name="denied")
        assert gate.iam is not None
        denied = [c for c in gate.iam.calls if not c.allowed]
    assert result.error == "GateError" and error in (result.cause or ""), (result.error, result.cause)
    assert {c.action for c in denied} == {action}


@pytest.fixture(scope="module")
def iris_artifact_bytes() -> bytes:
    from training_gate_cli.artifacts import iris_model_joblib, pack_model_tar_gz

    return pack_model_tar_gz({"model.joblib": iris_model_joblib()})


def test_the_s3_backend_tells_a_missing_key_from_a_missing_bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="bucket-a")
        s3.put_object(Bucket="bucket-a", Key="here", Body=b"1")
        request = FakeRequest("s3", "GetObject", {})
        assert not iam._missing_object(request, "arn:aws:s3:::bucket-a/here")
        assert iam._missing_object(request, "arn:aws:s3:::bucket-a/absent")
        assert not iam._missing_object(request, "arn:aws:s3:::no-such-bucket/absent")


def test_reading_a_missing_object_without_list_bucket_is_access_denied_as_s3_answers():
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket-a/*"}
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::bucket-a"}
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="bucket-a")
        for statements, code in (([statement], "AccessDenied"), ([statement, listing], "NoSuchKey")):
            enforcement = _enforcement(statements)
            with iam.enforced(enforcement), enforcement.acting_as_function("Fn"):
                with pytest.raises(s3.exceptions.ClientError) as raised:
                    boto3.client("s3", region_name=REGION).get_object(Bucket="bucket-a", Key="output.tar.gz")
            assert raised.value.response["Error"]["Code"] == code


# -- the calls that answer SageMaker pipelines ----------------------------------------------------------


def _pipeline_definition() -> dict:
    from pathlib import Path

    return json.loads((Path(__file__).resolve().parents[2] / "examples" / "pipeline-definition.json").read_text())


@pytest.mark.parametrize(
    ("role", "action"),
    [
        ("GateFunctionsAnswerPipelinesRole", "sagemaker:SendPipelineExecutionStepSuccess"),
        ("GateFunctionsNotifyOwnersRole", "sns:Publish"),
    ],
    ids=["answer", "skip-notice"],
)
def test_a_pipeline_answer_or_notice_the_synthesized_role_does_not_allow_is_refused_as_on_aws(
    template: dict, synthesized, iris_artifact_bytes: bytes, role: str, action: str
):
    from training_gate_cli.artifacts import pack_model_tar_gz

    skipped = action == "sns:Publish"
    unjudged = {"model.pmml": b'<?xml version="1.0"?>\n<PMML version="4.4">'}  # recognised, not judged: skipped
    artifact = pack_model_tar_gz(unjudged) if skipped else iris_artifact_bytes
    with LocalGate(_without(template, role, action), retry_time_scale=0.001, assets=synthesized.parent) as gate:
        create_training_job(
            gate, "denied-pipe", log_lines=training_log(0.95, 0.95, 0.95, 0.95, 0.95), artifact=artifact, statuses=()
        )
        arn = gate.start_pipeline(
            "denied", _pipeline_definition(), properties={"TrainModel": {"TrainingJobName": "denied-pipe"}}
        )
        (execution,) = gate.deliver_callbacks()
        result = gate.watch(execution)
        assert gate.iam is not None
        denied = {(c.role, c.action) for c in gate.iam.calls if not c.allowed}
        (callback,) = gate.pipelines.callbacks_of(arn)
    assert {a for _, a in denied} == {action}, denied
    assert result.status == "FAILED", (result.error, result.cause)
    assert len(callback.accepted) == 1 and callback.refused == [], callback
    if skipped:
        # SNS refuses a publish the role lacks with AuthorizationError: operations' notice is unsent, the
        # decision unfinished, and the step fails with why (the failure's own call is allowed).
        assert result.error == "NotificationFailed" and "AuthorizationError" in (result.cause or "")
        assert callback.accepted[0]["success"] is False
    else:
        # The decision completed; the workflow could not answer, the operations alert (its own role) did.
        assert result.error == "GateError" and "AccessDenied" in (result.cause or "")
        assert callback.accepted[0]["success"] is True and (result.alert or {}).get("pipelines_answered") == 1


def test_the_bridge_polls_its_queue_with_the_functions_role_and_a_role_without_receive_is_refused(
    template: dict, synthesized
):
    role, action = "GateFunctionsStartCallbackRole", "sqs:ReceiveMessage"
    with LocalGate(_without(template, role, action), retry_time_scale=0.001, assets=synthesized.parent) as gate:
        gate.start_pipeline("denied", _pipeline_definition(), properties={"TrainModel": {"TrainingJobName": "x"}})
        with pytest.raises(Exception, match="AccessDenied"):
            gate.deliver_callbacks()
        assert gate.iam is not None
        assert {c.action for c in gate.iam.calls if not c.allowed} == {action}
