"""The examples in examples/ stay valid: the event starts the gate, the inputs and policies validate."""

import json
from pathlib import Path

import yaml

from training_gate.domain.inputs import GateInput
from training_gate.domain.policy import Policy
from training_gate_cli.local_engine import rule_matches

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_event_matches_the_rule(template):
    from training_gate_cli.local_engine import resources_of

    rules = [r["Properties"] for r in resources_of(template, "AWS::Events::Rule").values()]
    (pattern,) = [
        r["EventPattern"]
        for r in rules
        if r["EventPattern"].get("detail-type") == ["SageMaker Training Job State Change"]
    ]
    assert rule_matches(pattern, json.loads((EXAMPLES / "training-job-state-change.json").read_text()))


def test_the_example_console_input_and_policies_validate():
    console = json.loads((EXAMPLES / "console-input.json").read_text())
    GateInput.model_validate({"poll_interval_seconds": 60, "max_polls": 10, **console})
    Policy.model_validate(yaml.safe_load((EXAMPLES / "policy.yaml").read_text()))
    Policy.model_validate(json.loads((EXAMPLES / "group-policy.json").read_text()))


def test_the_readme_documents_every_configuration_key():
    from infra.config import GateConfig

    readme = (EXAMPLES.parent / "README.md").read_text()
    missing = [name for name in GateConfig.model_fields if f"`{name}`" not in readme]
    assert not missing, f"README's configuration reference lacks {missing}"
