"""Which jobs the gate judges (opt-in by tag), the upgrade warning, and where the Powertools layer comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Annotations, Match

from infra.config import ConfigError, load_config, read_context
from infra.functions import powertools_layer_arn, powertools_parameter_name
from infra.stack import TrainingGateStack
from training_gate_cli.local_engine import resources_of

TAG = {"key": "training-gate", "value": "enabled"}
PINNED = "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-x86_64:7"


def config_without(*keys: str, **changes: Any):
    raw = {k: v for k, v in read_context().items() if k not in keys}
    return load_config({**raw, **changes})


def test_with_no_scope_configured_only_jobs_tagged_training_gate_enabled_are_judged():
    config = config_without("required_job_tag", "job_name_prefixes")
    assert config.job_tag is not None and config.job_tag.model_dump() == TAG
    assert config.default_tag_scope


@pytest.mark.parametrize(
    ("changes", "tag"),
    [
        ({"job_name_prefixes": ["churn-"]}, None),  # prefixes alone are a scope: existing users keep their jobs
        ({"required_job_tag": {"key": "team", "value": "ml"}}, {"key": "team", "value": "ml"}),
        ({"required_job_tag": TAG}, TAG),
        ({"required_job_tag": None, "job_name_prefixes": ["churn-"]}, None),
        ({"gate_all_jobs": True}, None),
    ],
)
def test_a_written_scope_replaces_the_default_tag(changes: dict, tag: dict | None):
    config = config_without("required_job_tag", "job_name_prefixes", **changes)
    assert (config.job_tag.model_dump() if config.job_tag else None) == tag
    assert not config.default_tag_scope


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"required_job_tag": None}, "gate_all_jobs: true"),
        ({"gate_all_jobs": True, "job_name_prefixes": ["churn-"]}, "cannot be combined"),
        ({"gate_all_jobs": True, "required_job_tag": TAG}, "cannot be combined"),
    ],
)
def test_an_ambiguous_scope_is_refused_saying_what_to_write(changes: dict, words: str):
    with pytest.raises(ConfigError, match=words):
        config_without("required_job_tag", "job_name_prefixes", **changes)


def _warnings(config) -> Annotations:
    app = App()
    stack = TrainingGateStack(app, "ScopeWarning", config=config)
    return Annotations.from_stack(stack)


def test_synth_warns_that_untagged_jobs_are_no_longer_gated_until_the_scope_is_written_down():
    message = Match.string_like_regexp("untagged jobs are no longer gated.*gate_all_jobs: true")
    _warnings(config_without("required_job_tag", "job_name_prefixes")).has_warning("*", message)
    quiet = _warnings(config_without("job_name_prefixes"))  # the shipped cdk.json writes required_job_tag
    assert quiet.find_warning("*", message) == []


def test_the_rule_of_the_shipped_configuration_requires_the_tag(template: dict):
    rules = [r["Properties"] for r in resources_of(template, "AWS::Events::Rule").values()]
    (rule,) = [r for r in rules if r["EventPattern"].get("detail-type") == ["SageMaker Training Job State Change"]]
    assert rule["EventPattern"]["detail"]["Tags"] == {"training-gate": ["enabled"]}


def test_gating_every_job_drops_the_tag_from_the_rule(tmp_path):
    from training_gate_cli.synth import synthesize

    configured = json.loads(
        synthesize(tmp_path, overrides={"gate_all_jobs": True, "required_job_tag": None}).read_text()
    )
    rules = [r["Properties"] for r in resources_of(configured, "AWS::Events::Rule").values()]
    (rule,) = [r for r in rules if r["EventPattern"].get("detail-type") == ["SageMaker Training Job State Change"]]
    assert "Tags" not in rule["EventPattern"]["detail"]


# -- the Powertools layer ---------------------------------------------------------------------------


def _layers(template: dict) -> set[str]:
    found = set()
    for function in resources_of(template, "AWS::Lambda::Function").values():
        for layer in function["Properties"].get("Layers", []):
            found.add(json.dumps(layer, sort_keys=True))
    return found


def test_the_powertools_layer_is_the_public_parameters_latest_for_the_runtime_and_architecture(template: dict):
    assert powertools_parameter_name() == "/aws/service/powertools/python/x86_64/python3.14/latest"
    (layer,) = _layers(template)
    parameter = json.loads(layer)["Ref"]
    assert template["Parameters"][parameter] == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": "/aws/service/powertools/python/x86_64/python3.14/latest",
    }
    for function in resources_of(template, "AWS::Lambda::Function").values():
        if "Layers" in function["Properties"]:
            assert function["Properties"]["Architectures"] == ["x86_64"]


def test_a_pinned_layer_arn_replaces_the_parameter(tmp_path):
    from training_gate_cli.synth import synthesize

    pinned = json.loads(synthesize(tmp_path, overrides={"powertools_layer_arn": PINNED}).read_text())
    assert _layers(pinned) == {json.dumps(PINNED)}
    assert not any(p.get("Default", "").startswith("/aws/service/powertools") for p in pinned["Parameters"].values())


def test_the_older_layer_version_key_keeps_the_arn_it_built():
    stack = Stack(App(), "Legacy")
    arn = powertools_layer_arn(stack, config_without("powertools_layer_arn", powertools_layer_version=27))
    assert stack.resolve(arn) == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":lambda:",
                {"Ref": "AWS::Region"},
                ":017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-x86_64:27",
            ],
        ]
    }


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"powertools_layer_arn": "AWSLambdaPowertoolsPythonV3:27"}, "powertools_layer_arn"),
        ({"powertools_layer_arn": PINNED.rsplit(":", 1)[0]}, "powertools_layer_arn"),  # a layer, not a version
        ({"powertools_layer_arn": PINNED, "powertools_layer_version": 27}, "not both"),
    ],
)
def test_a_bad_layer_pin_is_refused(changes: dict, words: str):
    with pytest.raises(ConfigError, match=words):
        load_config({**read_context(), **changes})


def test_the_stack_outputs_what_the_deploy_section_tells_people_to_look_at(template: dict):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    outputs = template["Outputs"]
    assert set(outputs) == {
        "StateMachineArn",
        "TrainingJobRuleName",
        "TuningJobRuleName",
        "NotificationTopicArn",
        "OperationsTopicArn",
        "ReportsBucketName",
        "DecisionTableName",
        "FailedStartsQueueUrl",
    }
    for name in outputs:
        assert f"`{name}`" in readme, name
