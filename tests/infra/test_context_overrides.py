"""`cdk synth -c training-gate='{...}'`: the CLI hands the app a string, which is parsed, validated and merged
into cdk.json key by key."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App

import infra.app as app_module
from infra.app import build_app, context_overrides
from infra.config import CONTEXT_KEY, ConfigError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"sklearn_version": "1.2.1"}', {"sklearn_version": "1.2.1"}),
        ({"max_polls": 3}, {"max_polls": 3}),
        (None, {}),
    ],
    ids=["cli-string", "cdk.json-object", "absent"],
)
def test_context_value_becomes_an_object(value: object, expected: dict):
    assert context_overrides(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{'sklearn_version': '1.2.1'}", "not valid JSON"),
        ("sklearn_version=1.2.1", "not valid JSON"),
        ('["sklearn_version"]', "must be a JSON object of settings, got list"),
        ("3", "must be a JSON object of settings, got int"),
    ],
)
def test_a_context_value_that_is_not_a_json_object_fails_naming_the_key(value: str, message: str):
    with pytest.raises(ConfigError, match=f"-c {CONTEXT_KEY}=.*{message}"):
        context_overrides(value)


def test_a_cli_string_is_validated_like_cdk_json(monkeypatch: pytest.MonkeyPatch):
    # The CLI's -c arrives as App context (through CDK_CONTEXT_JSON, read by the already running jsii process,
    # so the test hands it to the App directly).
    cli_value = json.dumps({"sklearn_version": "1.3.2"})
    monkeypatch.setattr(app_module, "App", lambda outdir=None: App(outdir=outdir, context={CONTEXT_KEY: cli_value}))
    with pytest.raises(ConfigError, match=r"training-gate\.sklearn_version: .*1\.3\.2.*supported.*1\.4\.2"):
        build_app()
