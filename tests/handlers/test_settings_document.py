"""The settings document a function reads instead of an over-large environment (infra/settings.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from training_gate.dal.s3 import SettingsUnavailable, read_settings
from training_gate.handlers.environment import (
    AlertOperationsEnvironment,
    ValidateInputEnvironment,
    environment,
    forget_settings,
)

POLICY = json.dumps({"version": 1, "rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}]})
DOCUMENT = json.dumps({"GATE_POLICY": POLICY, "MODEL_PACKAGE_GROUPS": "a,b"}, sort_keys=True).encode()
URI = "s3://cdk-assets-bucket/settings.json"
DIGEST = hashlib.sha256(DOCUMENT).hexdigest()


@pytest.fixture
def s3() -> Iterator[object]:
    forget_settings()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="cdk-assets-bucket")
        client.put_object(Bucket="cdk-assets-bucket", Key="settings.json", Body=DOCUMENT)
        yield client
    forget_settings()


def test_the_document_is_read_and_its_variables_are_the_functions_own(s3):
    env = environment(ValidateInputEnvironment, {"GATE_SETTINGS": URI, "GATE_SETTINGS_SHA256": DIGEST})
    assert env.MODEL_PACKAGE_GROUPS == ["a", "b"] and env.GATE_POLICY.rules[0].threshold == 0.9
    # A variable of the function's own environment wins over the document.
    own = environment(
        ValidateInputEnvironment,
        {"GATE_SETTINGS": URI, "GATE_SETTINGS_SHA256": DIGEST, "MODEL_PACKAGE_GROUPS": "c"},
    )
    assert own.MODEL_PACKAGE_GROUPS == ["c"]


def test_a_function_whose_variables_are_all_in_its_environment_never_reads_the_document(s3):
    s3.delete_object(Bucket="cdk-assets-bucket", Key="settings.json")
    env = environment(
        AlertOperationsEnvironment,
        {
            "GATE_SETTINGS": URI,
            "GATE_SETTINGS_SHA256": DIGEST,
            "OPERATIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
            "DECISION_TABLE": "decisions",
        },
    )
    assert env.OPERATIONS_TOPIC_ARN.endswith(":t")


def test_a_document_that_is_not_the_one_the_stack_wrote_is_refused(s3):
    s3.put_object(Bucket="cdk-assets-bucket", Key="settings.json", Body=DOCUMENT.replace(b"0.9", b"0.1"))
    with pytest.raises(SettingsUnavailable, match=f"the stack wrote {DIGEST}"):
        read_settings(URI, DIGEST)


@pytest.mark.parametrize("body", [b"[1, 2]", b'{"GATE_POLICY": {"version": 1}}'])
def test_a_document_that_is_not_an_object_of_strings_is_refused(s3, body: bytes):
    s3.put_object(Bucket="cdk-assets-bucket", Key="settings.json", Body=body)
    with pytest.raises(SettingsUnavailable, match="not an object of strings"):
        read_settings(URI, hashlib.sha256(body).hexdigest())


def test_a_missing_document_fails_the_invocation_naming_it_and_what_to_do(s3):
    s3.delete_object(Bucket="cdk-assets-bucket", Key="settings.json")
    with pytest.raises(SettingsUnavailable, match=r"s3://cdk-assets-bucket/settings.json could not be read.*redeploy"):
        environment(ValidateInputEnvironment, {"GATE_SETTINGS": URI, "GATE_SETTINGS_SHA256": DIGEST})
