"""`cdk synth -c training-gate='{...}'`: the CLI hands the app a string, which is parsed, validated and merged
into cdk.json key by key."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from aws_cdk import App

import infra.app as app_module
from infra.app import build_app, context_overrides
from infra.config import CONTEXT_KEY, ConfigError, read_context
from training_gate_cli.local_engine import resources_of

REPO = Path(__file__).resolve().parents[2]
CDK_CLI = REPO / "node_modules" / ".bin" / "cdk"


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


def _offline_cli_environment() -> dict[str, str]:
    """The CDK CLI with nothing to send: no telemetry, notices or version check, no credentials to look up an
    account with, and any AWS endpoint it might still try pointed at a closed local port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "CDK_DISABLE_VERSION_CHECK": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_REGION": "us-east-1",
        }
    )
    return env


def test_the_pinned_cdk_cli_merges_a_json_string_into_cdk_json(tmp_path: Path):
    """The one synth through the CLI in the suite (~15 s cold): the README's `-c` form, end to end."""
    assert CDK_CLI.exists(), "run `npm ci` (make test does): the pinned CDK CLI is in package-lock.json"
    override = {"sklearn_version": "1.9.1", "job_name_prefixes": ["churn-"]}
    result = subprocess.run(
        [
            str(CDK_CLI),
            "synth",
            "--no-notices",
            "--quiet",
            "-o",
            str(tmp_path),
            "-c",
            f"{CONTEXT_KEY}={json.dumps(override)}",
        ],
        cwd=REPO,
        env=_offline_cli_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads((tmp_path / "TrainingGateStack.template.json").read_text())
    rules = [r["Properties"] for r in resources_of(template, "AWS::Events::Rule").values()]
    (rule,) = [r for r in rules if r["EventPattern"].get("detail-type") == ["SageMaker Training Job State Change"]]
    assert rule["EventPattern"]["detail"]["TrainingJobName"] == [{"prefix": "churn-"}]
    # Keys the override does not name keep their cdk.json values.
    assert read_context()["model_package_group"] in json.dumps(template)
    assets = json.loads((tmp_path / "TrainingGateStack.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    build_args = image["source"]["dockerBuildArgs"]
    assert (build_args["SKLEARN_VERSION"], build_args["PYTHON_VERSION"]) == ("1.9.1", "3.12")
