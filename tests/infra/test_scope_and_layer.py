"""Which jobs the gate judges (opt-in by tag), the upgrade warning, and where the Powertools layer comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Annotations, Match

from infra.config import ConfigError, load_config, read_context
from infra.powertools import MAPPING_ID, POWERTOOLS_LAYER_VERSION, PUBLISHERS, partition_of, powertools_layer_arn
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


def test_an_environment_agnostic_template_carries_the_pinned_layer_of_every_region_that_publishes_one(template: dict):
    (layer,) = _layers(template)
    assert json.loads(layer) == {"Fn::FindInMap": [MAPPING_ID, {"Ref": "AWS::Region"}, "arn"]}
    mapping = template["Mappings"][MAPPING_ID]
    assert set(mapping) == set(PUBLISHERS)
    for region, row in mapping.items():
        arn = row["arn"].split(":")
        assert (arn[1], arn[3], arn[4]) == (partition_of(region), region, PUBLISHERS[region]), row
        assert arn[6:] == ["AWSLambdaPowertoolsPythonV3-python314-x86_64", str(POWERTOOLS_LAYER_VERSION)]
    # Nothing is looked up at deploy time: no SSM parameter but the CDK's own bootstrap version.
    assert [p["Default"] for p in template.get("Parameters", {}).values()] == ["/cdk-bootstrap/hnb659fds/version"]
    for function in resources_of(template, "AWS::Lambda::Function").values():
        if "Layers" in function["Properties"]:
            assert function["Properties"]["Architectures"] == ["x86_64"]


def test_a_pinned_layer_arn_replaces_the_table(tmp_path):
    from training_gate_cli.synth import synthesize

    pinned = json.loads(synthesize(tmp_path, overrides={"powertools_layer_arn": PINNED}).read_text())
    assert _layers(pinned) == {json.dumps(PINNED)}
    assert MAPPING_ID not in pinned.get("Mappings", {})


def _layer_in(region: str, **changes: Any) -> str:
    stack = Stack(App(), "Layer", env=Environment(account="123456789012", region=region))
    return stack.resolve(powertools_layer_arn(stack, config_without(*changes, **changes), "python3.14", "x86_64"))


def test_a_concrete_region_gets_its_publishers_arn_and_the_version_key_picks_another_version():
    assert _layer_in("eu-west-1") == PINNED.replace(":7", f":{POWERTOOLS_LAYER_VERSION}")
    assert _layer_in("us-gov-east-1", powertools_layer_version=30) == (
        "arn:aws-us-gov:lambda:us-gov-east-1:165087284144:layer:AWSLambdaPowertoolsPythonV3-python314-x86_64:30"
    )


def test_a_region_without_a_published_layer_fails_synthesis_asking_for_a_pin():
    with pytest.raises(ConfigError, match=r"no Lambda layer in cn-northwest-1.*powertools_layer_arn"):
        _layer_in("cn-northwest-1")
    assert _layer_in(
        "cn-northwest-1", powertools_layer_arn=PINNED.replace("aws:lambda:eu-west-1", "aws-cn:lambda:cn-northwest-1")
    )


def test_a_pinned_layer_of_another_region_or_partition_is_refused():
    with pytest.raises(ConfigError, match=r"aws/eu-west-1, but the stack deploys to aws-cn/cn-north-1"):
        _layer_in("cn-north-1", powertools_layer_arn=PINNED)


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
        "CallbackQueueUrl",
        "CallbackQueueArn",
        "CallbackDeadLettersQueueUrl",
    }
    for name in outputs:
        assert f"`{name}`" in readme, name
