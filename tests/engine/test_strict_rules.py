"""Strict request rules: each rule passes a request AWS accepts and refuses, by name, one it refuses."""

from __future__ import annotations

import functools
import json
import threading

import boto3
import botocore.client
import botocore.session
import pytest
import regex
from botocore.exceptions import ClientError, ParamValidationError
from moto import mock_aws

from training_gate_cli.local_engine import strict as aws_rules
from training_gate_cli.local_engine.strict import (
    HISTORY_EVENTS_MAX,
    SKIPPED_PATTERNS,
    STATE_PAYLOAD_MAX,
    aws_sdk_error_name,
    check_lambda_response,
    check_state_payload,
    clear_violations,
    compiled_pattern,
    dynamodb_item_size,
    java_pattern,
    strict_requests,
    validate_request,
    validate_semantics,
    validator_stats,
    violations,
)

GROUP = "training-gate-models"
TOPIC = "arn:aws:sns:us-east-1:123456789012:gate"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:training-gate"


def package(**overrides):
    """A CreateModelPackage request as the gate builds it, without the Tags AWS refuses."""
    request = {
        "ModelPackageGroupName": GROUP,
        "ModelPackageDescription": "registered by training-gate: PASS for training job job-1",
        "ModelApprovalStatus": "Approved",
        "ClientToken": "5d0c3f57-7b5e-4a47-9a3c-61a1c3bd3c11",
        "CustomerMetadataProperties": {
            "training_job_arn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/job-1",
            "gate_report": "s3://reports/reports/job-1/exec/report.json",
            "metric_accuracy": "0.91",
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": "s3://reports/reports/job-1/exec/statistics.json",
                    "ContentDigest": "sha256:" + "a" * 64,
                }
            }
        },
    }
    request.update(overrides)
    return request


def problems(service, operation, params):
    return validate_request(service, operation, params)


# -- botocore's model constraints -------------------------------------------------------------


def test_the_gates_package_request_without_tags_is_accepted():
    assert problems("sagemaker", "CreateModelPackage", package()) == []


def test_required_member_missing():
    assert problems("sagemaker", "CreateModelPackageGroup", {"ModelPackageGroupName": GROUP}) == []
    assert problems("sagemaker", "CreateModelPackageGroup", {"ModelPackageGroupDescription": "d"}) == [
        "CreateModelPackageGroup.ModelPackageGroupName: required member missing"
    ]


def test_unknown_member_and_wrong_type():
    found = problems("sagemaker", "CreateModelPackage", package(ModelPackageGroup=GROUP, ModelApprovalStatus=1))
    assert "CreateModelPackage.ModelPackageGroup: unknown member" in found
    assert "CreateModelPackage.ModelApprovalStatus: expected a string, got int" in found


def test_string_too_long_names_the_map_entry():
    metadata = package()["CustomerMetadataProperties"]
    assert (
        problems(
            "sagemaker",
            "CreateModelPackage",
            package(CustomerMetadataProperties={**metadata, "gate_report": "a" * 256}),
        )
        == []
    )
    found = problems(
        "sagemaker", "CreateModelPackage", package(CustomerMetadataProperties={**metadata, "gate_report": "a" * 300})
    )
    assert found == ["CreateModelPackage.CustomerMetadataProperties.gate_report: length 300 > max 256"]


def test_customer_metadata_properties_hold_at_most_50_entries():
    fifty = {f"metric_{i}": "0.5" for i in range(50)}
    assert problems("sagemaker", "CreateModelPackage", package(CustomerMetadataProperties=fifty)) == []
    found = problems(
        "sagemaker", "CreateModelPackage", package(CustomerMetadataProperties={**fifty, "metric_50": "0.5"})
    )
    assert found == ["CreateModelPackage.CustomerMetadataProperties: entries 51 > max 50"]


def test_pattern_model_package_group_name_refuses_an_underscore():
    assert problems("sagemaker", "CreateModelPackage", package(ModelPackageGroupName="my-group")) == []
    (found,) = problems("sagemaker", "CreateModelPackage", package(ModelPackageGroupName="my_group"))
    assert found.startswith("CreateModelPackage.ModelPackageGroupName: 'my_group' does not match pattern")


def test_pattern_metadata_value_refuses_json():
    metadata = {"policy": '{"min_accuracy": 0.9}'}
    (found,) = problems("sagemaker", "CreateModelPackage", package(CustomerMetadataProperties=metadata))
    assert found.startswith("CreateModelPackage.CustomerMetadataProperties.policy: '{\"min_accuracy\": 0.9}' does not")


def test_enum():
    assert problems("sagemaker", "CreateModelPackage", package(ModelApprovalStatus="PendingManualApproval")) == []
    assert problems("sagemaker", "CreateModelPackage", package(ModelApprovalStatus="Maybe")) == [
        "CreateModelPackage.ModelApprovalStatus: 'Maybe' is not one of Approved, Rejected, PendingManualApproval"
    ]


def test_numeric_max():
    assert problems("sagemaker", "ListModelPackages", {"MaxResults": 100}) == []
    assert problems("sagemaker", "ListModelPackages", {"MaxResults": 101}) == [
        "ListModelPackages.MaxResults: value 101 > max 100"
    ]


def test_client_token_rule_comes_from_the_model():
    shape = service_model("sagemaker").shape_for("ClientToken")
    assert (shape.metadata["min"], shape.metadata["max"], shape.metadata["pattern"]) == (1, 36, "[a-zA-Z0-9-]+")
    assert problems("sagemaker", "CreateModelPackage", package(ClientToken="a" * 37)) == [
        "CreateModelPackage.ClientToken: length 37 > max 36"
    ]
    (found,) = problems("sagemaker", "CreateModelPackage", package(ClientToken="job_1"))
    assert found.startswith("CreateModelPackage.ClientToken: 'job_1' does not match pattern")


def test_sensitive_values_are_not_echoed():
    oidc = {"ClientId": "gate", "ClientSecret": "é-secret"}
    found = problems("sagemaker", "CreateWorkforce", {"WorkforceName": "gate", "OidcConfig": oidc})
    (secret,) = [problem for problem in found if ".ClientSecret" in problem]
    assert secret.startswith("CreateWorkforce.OidcConfig.ClientSecret: the value does not match pattern")
    assert not any("secret'" in problem for problem in found)


# -- rules the model does not carry -----------------------------------------------------------


def test_tags_with_a_model_package_group_are_refused():
    tags = [{"Key": "managed-by", "Value": "training-gate"}]
    assert validate_semantics("sagemaker", "CreateModelPackage", package(Tags=tags)) == [
        "CreateModelPackage.Tags: cannot be supplied with ModelPackageGroupName (a versioned package uses its "
        "group's tags)"
    ]
    unversioned = {
        k: v for k, v in package(ModelPackageName="one-off", Tags=tags).items() if k != "ModelPackageGroupName"
    }
    assert problems("sagemaker", "CreateModelPackage", unversioned) == []


def test_sns_subject_at_most_100_characters():
    publish = {"TopicArn": TOPIC, "Message": "m"}
    assert problems("sns", "Publish", {**publish, "Subject": "a" * 100}) == []
    assert problems("sns", "Publish", {**publish, "Subject": "a" * 101}) == ["Publish.Subject: length 101 > max 100"]


def test_sns_subject_without_line_breaks():
    publish = {"TopicArn": TOPIC, "Message": "m"}
    assert problems("sns", "Publish", {**publish, "Subject": "Model passed: job-1 - ok"}) == []
    assert problems("sns", "Publish", {**publish, "Subject": "Model passed\njob-1"}) == [
        "Publish.Subject: contains a line break or a control character"
    ]


def test_sns_message_is_measured_in_utf8_bytes_with_its_attributes():
    assert problems("sns", "Publish", {"TopicArn": TOPIC, "Message": "a" * 262_144}) == []
    # 131,073 characters, 262,146 bytes: over the limit although the characters are not.
    assert problems("sns", "Publish", {"TopicArn": TOPIC, "Message": "é" * 131_073}) == [
        "Publish.Message: 262146 bytes (UTF-8, with message attributes) > max 262144"
    ]
    attributes = {"outcome": {"DataType": "String", "StringValue": "PASS"}}
    found = problems("sns", "Publish", {"TopicArn": TOPIC, "Message": "a" * 262_130, "MessageAttributes": attributes})
    assert found == ["Publish.Message: 262147 bytes (UTF-8, with message attributes) > max 262144"]


def entry(detail="{}"):
    return {"Source": "training-gate", "DetailType": "Training Gate Decision", "Detail": detail}


def test_put_events_at_most_10_entries():
    assert problems("events", "PutEvents", {"Entries": [entry()] * 10}) == []
    found = problems("events", "PutEvents", {"Entries": [entry()] * 11})
    assert "PutEvents.Entries: 11 entries > max 10" in found


def test_put_events_total_entry_size():
    fixed = len("training-gate") + len("Training Gate Decision")
    # 1 MiB since January 2026 (256 KB before): a 300 KB decision event is accepted.
    assert problems("events", "PutEvents", {"Entries": [entry("x" * 300_000)]}) == []
    assert problems("events", "PutEvents", {"Entries": [entry("x" * (1_048_576 - fixed))]}) == []
    timed = {**entry("x" * (600_000 - fixed - 14)), "Time": "2026-12-01T00:00:00Z", "Resources": ["r" * 10]}
    (found,) = problems("events", "PutEvents", {"Entries": [timed, entry("x" * (448_567 - fixed))]})
    assert found.startswith("PutEvents.Entries: total entry size 1048577 bytes > max 1048576")


def test_dynamodb_item_at_most_400_kb():
    item = {"training_job": {"S": "job-1"}, "report": {"S": "x" * 400_000}}
    assert problems("dynamodb", "PutItem", {"TableName": "decisions", "Item": item}) == []
    big = {**item, "report": {"S": "x" * 409_600}}
    assert dynamodb_item_size(big) == len("training_job") + 5 + len("report") + 409_600
    (found,) = problems("dynamodb", "PutItem", {"TableName": "decisions", "Item": big})
    assert found.startswith("PutItem.Item: item size 409623 bytes > max 409600")


def test_dynamodb_sizes_follow_the_documented_counting():
    item = {"n": {"N": "123.450"}, "b": {"BOOL": True}, "l": {"L": [{"S": "ab"}, {"NULL": True}]}}
    # n: 1 + (5 significant digits -> 3) + 1; b: 1 + 1; l: 1 + 3 + (1 + 2) + (1 + 1)
    assert dynamodb_item_size(item) == 5 + 2 + 9


def test_start_execution_input_at_most_256_kib():
    start = {"stateMachineArn": MACHINE, "name": "job-1-exec"}
    assert problems("stepfunctions", "StartExecution", {**start, "input": json.dumps("a" * 262_000)}) == []
    found = problems(
        "stepfunctions", "StartExecution", {**start, "input": json.dumps("é" * 131_072, ensure_ascii=False)}
    )
    assert found == ["StartExecution.input: 262146 bytes (UTF-8) > max 262144"]


def test_start_execution_name():
    start = {"stateMachineArn": MACHINE, "input": "{}"}
    assert problems("stepfunctions", "StartExecution", {**start, "name": "job-1_exec.2"}) == []
    assert problems("stepfunctions", "StartExecution", {**start, "name": "job 1"}) == [
        "StartExecution.name: 'job 1' contains ' ', which a name may not"
    ]
    assert problems("stepfunctions", "StartExecution", {**start, "name": "job:1"}) == [
        "StartExecution.name: 'job:1' contains ':', which a name may not"
    ]
    assert "StartExecution.name: length 81 > max 80" in problems(
        "stepfunctions", "StartExecution", {**start, "name": "a" * 81}
    )


def test_lambda_invoke_payload():
    assert problems("lambda", "Invoke", {"FunctionName": "f", "Payload": b"x" * 6_291_456}) == []
    (found,) = problems("lambda", "Invoke", {"FunctionName": "f", "Payload": b"x" * 6_291_457})
    assert found.startswith("Invoke.Payload: 6291457 bytes > max 6291456")
    (found,) = problems(
        "lambda", "Invoke", {"FunctionName": "f", "InvocationType": "Event", "Payload": b"x" * 1_048_577}
    )
    assert found.startswith("Invoke.Payload: 1048577 bytes > max 1048576")


def test_lambda_response_limit():
    assert check_lambda_response(b"x" * 6_291_556) is None
    assert check_lambda_response(b"x" * 6_291_557).startswith("Function.ResponseSizeTooLarge")


def test_state_payload_limit():
    assert (STATE_PAYLOAD_MAX, HISTORY_EVENTS_MAX) == (262_144, 25_000)
    assert check_state_payload({"a": "x" * 262_000}) is None
    assert check_state_payload({"a": "é" * 131_072}).startswith("States.DataLimitExceeded: the payload is 262152 bytes")


@pytest.mark.parametrize(
    "service, code, name",
    [
        ("sagemaker", "ResourceNotFound", "SageMaker.ResourceNotFoundException"),
        ("sagemaker", "ResourceLimitExceeded", "SageMaker.ResourceLimitExceededException"),
        ("sagemaker", "ConflictException", "SageMaker.ConflictException"),
        # Not modelled errors: the service's generic exception.
        ("sagemaker", "ValidationException", "SageMaker.SageMakerException"),
        ("sagemaker", "ThrottlingException", "SageMaker.SageMakerException"),
        ("sagemaker", "InternalFailure", "SageMaker.SageMakerException"),
        ("dynamodb", "ConditionalCheckFailedException", "DynamoDb.ConditionalCheckFailedException"),
        ("dynamodb", "AccessDeniedException", "DynamoDb.DynamoDbException"),
        ("sfn", "InvalidArn", "Sfn.InvalidArnException"),
        ("s3", "BucketAlreadyExists", "S3.BucketAlreadyExistsException"),
        ("acmpca", "ResourceNotFoundException", "AcmPca.ResourceNotFoundException"),
        ("cloudwatchlogs", "AccessDeniedException", "CloudWatchLogs.AccessDeniedException"),
        ("sns", "KMSThrottlingException", "Sns.KmsThrottlingException"),
    ],
)
def test_aws_sdk_error_names(service, code, name):
    assert aws_sdk_error_name(service, code) == name


# -- Java patterns ----------------------------------------------------------------------------


@functools.cache
def service_model(service):
    return botocore.session.get_session().get_service_model(service)


def model_pattern(service, shape):
    return service_model(service).shape_for(shape).metadata["pattern"]


def matches(service, shape, value):
    return compiled_pattern(model_pattern(service, shape)).fullmatch(value) is not None


def test_java_word_class_is_ascii():
    assert matches("sagemaker", "ArtifactDigest", "sha256:abc_1")
    assert not matches("sagemaker", "ArtifactDigest", "sha256:é")
    assert regex.fullmatch(model_pattern("sagemaker", "ArtifactDigest"), "sha256:é")  # what `regex` alone says


def test_java_non_space_class_is_ascii():
    # U+2003 is not one of Java's six \s characters, so Java's [\S] takes it.
    assert matches("sagemaker", "AlgorithmArn", "arn:aws:sagemaker:us-east-1:123456789012:algorithm/a\u2003b")
    assert not matches("sagemaker", "AlgorithmArn", "arn:aws:sagemaker:us-east-1:123456789012:algorithm/a b")


def test_java_dot_stops_at_every_line_terminator():
    assert matches("sagemaker", "NonEmptyString64", "a\u2003")
    for terminator in ("\n", "\r", "\u0085", "\u2028", "\u2029"):
        assert not matches("sagemaker", "NonEmptyString64", f"a{terminator}b"), repr(terminator)


def test_java_posix_class_is_ascii():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:credentials"
    assert matches("sagemaker", "TrainingRepositoryCredentialsProviderArn", arn)
    assert not matches("sagemaker", "TrainingRepositoryCredentialsProviderArn", arn.replace("aws", "awsé", 1))


def test_java_surrogate_pair_is_one_code_point():
    pattern = model_pattern("sagemaker", "AthenaCatalog")
    with pytest.raises(regex.error):
        regex.compile(pattern)  # `regex` reads \uDC00-\uDBFF as a reversed range
    assert matches("sagemaker", "AthenaCatalog", "catalog \U0001f600")
    assert not matches("sagemaker", "AthenaCatalog", "catalog \ufffe")


def test_unicode_categories_and_quantified_anchor_need_no_translation():
    assert java_pattern(model_pattern("sagemaker", "CustomerMetadataValue"))[0] == model_pattern(
        "sagemaker", "CustomerMetadataValue"
    )
    assert matches("sagemaker", "CustomerMetadataValue", "Précision moyenne 0.91 s3://b/k=v+w@x")
    assert not matches("sagemaker", "CustomerMetadataValue", "{}")


def test_lookbehind_needs_no_translation():
    assert matches("sagemaker", "ArnOrName", "group-1")
    assert not matches("sagemaker", "ArnOrName", "group-")


def test_possessive_quantifier_needs_no_translation():
    # No SageMaker pattern is possessive; this one is Lex's.
    assert matches("lexv2-models", "ObjectPrefix", "/a/b")
    assert not matches("lexv2-models", "ObjectPrefix", "//a")


def test_java_class_intersection():
    # No SageMaker pattern intersects classes; this one is Auto Scaling Plans'.
    assert java_pattern(model_pattern("autoscaling-plans", "ScalingPlanName"))[1] == regex.V1
    assert matches("autoscaling-plans", "ScalingPlanName", "plan-1 a")
    assert not matches("autoscaling-plans", "ScalingPlanName", "plan|1")


def test_java_code_point_escape():
    assert matches("location", "RefererPattern", "https://example.com/`x`")
    assert not matches("location", "RefererPattern", "https://example.com/^")


def test_java_only_category_names():
    assert matches("ds", "RadiusSharedSecret", "Secret $1")
    assert not matches("ds", "RadiusSharedSecret", "Secret\t1")
    assert matches("dlm", "DescriptionRegex", "any\nthing\U0001f600")


def test_java_vertical_whitespace_class():
    assert matches("quicksight", "SpaceName", "a\u2028b")
    assert not matches("quicksight", "SpaceName", "a\x07b")


def skipped_location(reason):
    service, shape = reason.split(":", 1)[0].split()
    return service, shape


@pytest.mark.parametrize("pattern", sorted(SKIPPED_PATTERNS))
def test_each_skipped_pattern_is_in_the_model_and_cannot_be_compiled(pattern):
    service, shape = skipped_location(SKIPPED_PATTERNS[pattern])
    assert model_pattern(service, shape) == pattern
    source, flags = java_pattern(pattern)
    with pytest.raises(regex.error):
        regex.compile(source, flags)
    assert compiled_pattern(pattern) is None


@pytest.mark.parametrize("service", ["sagemaker", "sns", "events", "dynamodb", "stepfunctions", "lambda", "s3"])
def test_every_pattern_the_gate_meets_compiles(service):
    model = service_model(service)
    for name in model.shape_names:
        pattern = model.shape_for(name).metadata.get("pattern")
        if pattern is not None and pattern not in SKIPPED_PATTERNS:
            assert compiled_pattern(pattern) is not None, f"{service} {name}: {pattern}"


def test_validation_is_cached():
    request = package(CustomerMetadataProperties={f"metric_{i}": "0.5" for i in range(50)})
    validate_request("sagemaker", "CreateModelPackage", request)
    before = validator_stats()
    for _ in range(1_000):
        assert validate_request("sagemaker", "CreateModelPackage", request) == []
    assert validator_stats() == before


# -- strict mode ------------------------------------------------------------------------------


@pytest.fixture
def registry():
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        clear_violations()
        yield sagemaker
        clear_violations()


def packages(sagemaker):
    return sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]


def test_strict_mode_refuses_before_moto_sees_the_request(registry):
    with strict_requests():
        with pytest.raises(ClientError) as refused:
            registry.create_model_package(**package(Tags=[{"Key": "k", "Value": "v"}]))
        assert packages(registry) == []
        registry.create_model_package(**package())
    assert len(packages(registry)) == 1
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("1 validation error detected: CreateModelPackage.Tags: cannot be supplied")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    (violation,) = violations()
    assert (violation.service, violation.operation, violation.code) == (
        "sagemaker",
        "CreateModelPackage",
        "ValidationException",
    )


def test_strict_mode_answers_with_each_services_error_code():
    with mock_aws(), strict_requests():
        with pytest.raises(ClientError) as sns:
            boto3.client("sns", region_name="us-east-1").publish(TopicArn=TOPIC, Message="m", Subject="a" * 101)
        with pytest.raises(ClientError) as lambda_:
            boto3.client("lambda", region_name="us-east-1").invoke(FunctionName="f", Payload=b"x" * 6_291_457)
    assert sns.value.response["Error"]["Code"] == "InvalidParameter"
    assert lambda_.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert lambda_.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_strict_mode_leaves_client_side_checks_to_botocore(registry):
    # boto3 itself refuses a missing required member before sending, as it does against AWS.
    with strict_requests(), pytest.raises(ParamValidationError):
        registry.create_model_package_group()
    assert violations() == []


def test_strict_mode_is_reentrant_and_restores_botocore():
    original = botocore.client.BaseClient._make_api_call
    with strict_requests():
        with strict_requests():
            assert botocore.client.BaseClient._make_api_call is not original
        assert botocore.client.BaseClient._make_api_call is not original
    assert botocore.client.BaseClient._make_api_call is original


def test_strict_mode_from_8_threads(registry):
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def work(index: int) -> None:
        client = boto3.client("sagemaker", region_name="us-east-1")
        with strict_requests():
            barrier.wait()
            token = f"thread-{index}"
            try:
                client.create_model_package(**package(ModelApprovalStatus="Maybe", ClientToken=f"{token}-bad"))
            except ClientError as exc:
                errors.append(exc.response["Error"]["Code"])
            client.create_model_package(**package(ClientToken=token))

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == ["ValidationException"] * 8
    assert len(violations()) == 8
    assert len(packages(registry)) == 8
    assert botocore.client.BaseClient._make_api_call is not aws_rules._strict_make_api_call


def test_strict_mode_covers_the_interpreters_aws_sdk_tasks():
    definition = {
        "StartAt": "Register",
        "States": {
            "Register": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:createModelPackage",
                "Parameters": package(Tags=[{"Key": "k", "Value": "v"}]),
                "End": True,
            }
        },
    }
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), strict_requests():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="register", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        clear_violations()
        execution = sfn.start_execution(stateMachineArn=arn, name="register-1", input="{}")["executionArn"]
        for _ in range(500):
            status = sfn.describe_execution(executionArn=execution)["status"]
            if status != "RUNNING":
                break
            threading.Event().wait(0.01)
    assert status == "FAILED"
    assert [(v.service, v.operation) for v in violations()] == [("sagemaker", "CreateModelPackage")]
    clear_violations()
