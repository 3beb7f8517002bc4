"""The inspector's work space (its ephemeral storage) is a validated setting, deployed as configured, and a
synthesis warns when an artifact within the deployment's own caps could not fit it."""

from __future__ import annotations

import pytest
from aws_cdk import App
from aws_cdk.assertions import Annotations, Match, Template

from infra.config import INSPECTOR_EPHEMERAL_STORAGE_DEFAULT_MB, ConfigError, load_config, read_context
from infra.stack import TrainingGateStack
from training_gate_cli.local_engine import resources_of

WARNING = Match.string_like_regexp("inspector_ephemeral_storage_mb .* holds less than the .* max_total_bytes")


def _inspector(template: dict) -> dict:
    functions = resources_of(template, "AWS::Lambda::Function")
    (inspector,) = [f for k, f in functions.items() if k.startswith("GateFunctionsInspectArtifact")]
    return inspector["Properties"]


def _stack(**changes: object) -> TrainingGateStack:
    return TrainingGateStack(App(), "WorkSpace", config=load_config({**read_context(), **changes}))


def test_the_shipped_inspector_has_room_for_an_artifact_as_large_as_its_default_caps(template: dict):
    assert _inspector(template)["EphemeralStorage"] == {"Size": INSPECTOR_EPHEMERAL_STORAGE_DEFAULT_MB}


def test_the_configured_ephemeral_storage_is_deployed_and_a_work_space_short_of_the_caps_is_warned_of():
    large = _stack(inspector_ephemeral_storage_mb=10_240)
    assert _inspector(Template.from_stack(large).to_json())["EphemeralStorage"] == {"Size": 10_240}
    assert Annotations.from_stack(large).find_warning("*", WARNING) == []
    small = _stack(inspector_ephemeral_storage_mb=512)
    assert _inspector(Template.from_stack(small).to_json())["EphemeralStorage"] == {"Size": 512}
    Annotations.from_stack(small).has_warning("*", WARNING)
    # caps lowered to fit: no warning
    fitted = _stack(inspector_ephemeral_storage_mb=512, inspection={"max_total_bytes": 400 << 20})
    assert Annotations.from_stack(fitted).find_warning("*", WARNING) == []


@pytest.mark.parametrize("value", [511, 10_241, 1024.5, "2048"])
def test_an_ephemeral_storage_lambda_would_refuse_fails_at_synth_naming_the_key(value: object):
    with pytest.raises(ConfigError, match="inspector_ephemeral_storage_mb"):
        load_config({**read_context(), "inspector_ephemeral_storage_mb": value})
