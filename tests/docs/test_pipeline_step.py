"""The README's SageMaker pipeline step and its definition (examples/pipeline-definition.json, what the SDK
uploads) agree with what the gate reads and answers: the queue, the arguments, the outputs a ConditionStep
reads. The scenario tests run the same definition on the local engine (tests/scenarios/test_pipelines.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from infra.names import DEFAULT_STACK_NAME, GateNames
from training_gate.domain.inputs import GateInput
from training_gate.domain.pipeline import (
    ARGUMENT_BOOLEANS,
    ARGUMENT_INTEGERS,
    OUTPUT_NAMES,
    DecisionForPipeline,
    WaitingToken,
    answer_decision,
    execution_input,
    parse_message,
)
from training_gate.domain.policy import Policy
from training_gate.logic.validate import InputDefaults, validate_input

REPO = Path(__file__).resolve().parents[2]
DEFINITION = json.loads((REPO / "examples" / "pipeline-definition.json").read_text())
README = (REPO / "README.md").read_text()


def _steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for step in steps:
        found.append(step)
        if step["Type"] == "Condition":
            found += _steps(step["Arguments"]["IfSteps"]) + _steps(step["Arguments"]["ElseSteps"])
    return found


def _gets(value: Any) -> list[str]:
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            return [value["Get"]]
        return [g for v in value.values() for g in _gets(v)]
    if isinstance(value, list):
        return [g for v in value for g in _gets(v)]
    return []


def _readme_section() -> str:
    start = README.index("### SageMaker Pipelines: the gate as a step")
    return README[start : README.index("\n## ", start)]


def callback_step() -> dict[str, Any]:
    (step,) = [s for s in _steps(DEFINITION["Steps"]) if s["Type"] == "Callback"]
    return step


def test_the_step_declares_exactly_the_outputs_the_gate_answers_with_as_strings():
    declared = [(o["OutputName"], o["OutputType"]) for o in callback_step()["OutputParameters"]]
    assert declared == [(name, "String") for name in OUTPUT_NAMES]
    answered = answer_decision(
        DecisionForPipeline(decision_id="job|sha", outcome="pass", model_package_arn="arn:p/1"),
        WaitingToken(token="abcdeABCDE"),
    )
    assert list(answered.outputs) == [name for name, _ in declared]


def test_every_output_the_pipeline_reads_is_one_the_step_declares():
    name = callback_step()["Name"]
    reads = [g for s in _steps(DEFINITION["Steps"]) for g in _gets(s.get("Arguments", {})) if f"Steps.{name}." in g]
    assert reads, "the documented pipeline branches on the gate's outputs"
    for path in reads:
        output = re.fullmatch(rf"Steps\.{name}\.OutputParameters\['([^']+)'\]", path)
        assert output and output[1] in OUTPUT_NAMES, path
    condition = next(s for s in DEFINITION["Steps"] if s["Type"] == "Condition")
    (equals,) = condition["Arguments"]["Conditions"]
    assert (equals["Type"], equals["RightValue"]) == ("Equals", "pass")


def test_the_steps_queue_is_the_gates_and_its_message_becomes_a_valid_execution_input():
    step = callback_step()
    queue = GateNames(DEFAULT_STACK_NAME).callback_queue
    assert re.fullmatch(rf"https://sqs\.[a-z0-9-]+\.amazonaws\.com/\d{{12}}/{queue}", step["SqsQueueUrl"])
    arguments = step["Arguments"]
    assert _gets(arguments) == ["Steps.TrainModel.TrainingJobName"]
    # The message SageMaker puts on the queue for this step, its properties resolved.
    body = json.dumps(
        {
            "token": "AbCdE12345",
            "pipelineExecutionArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn/execution/abc123def456",
            "arguments": {"TrainingJobName": "churn-2026-11-26"},
        }
    )
    defaults = InputDefaults(
        poll_interval_seconds=60,
        max_polls=10,
        policy=Policy.model_validate({"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}]}),
        allowed_groups=["g"],
    )
    settings = validate_input(execution_input(parse_message(body)), defaults)
    assert settings.training_job_name == "churn-2026-11-26"
    assert settings.pipeline_callback is not None and settings.pipeline_callback.token == "AbCdE12345"
    assert settings.pipeline_callback.fail_step_on_reject is False


def test_the_readme_shows_the_same_step_and_documents_every_argument_and_output():
    section = _readme_section()
    code = section[section.index("```python") : section.index("```", section.index("```python") + 3)]
    for step in _steps(DEFINITION["Steps"]):
        if step["Type"] != "Training":
            assert f'name="{step["Name"]}"' in code, step["Name"]
    assert f"for name in {tuple(OUTPUT_NAMES)!r}".replace("'", '"') in code
    assert 'inputs={"TrainingJobName": step_train.properties.TrainingJobName}' in code
    assert 'step_gate.properties.Outputs["decision"], right="pass"' in code
    assert "CallbackQueueUrl" in code
    arguments = {"TrainingJobName", "HyperParameterTuningJobName", *ARGUMENT_BOOLEANS, *ARGUMENT_INTEGERS}
    documented = {a for a in arguments if f"`{a}`" in section}
    # The polling settings are an execution's (README "Use"); the rest is the step's to give.
    assert documented >= arguments - {"poll_interval_seconds", "max_polls"}
    for name in OUTPUT_NAMES:
        assert f"`{name}`" in section, name


def test_every_argument_the_step_may_give_is_an_input_the_gate_accepts():
    accepted = {f.alias or n for n, f in GateInput.model_fields.items()}
    for name in ("TrainingJobName", "HyperParameterTuningJobName", *ARGUMENT_INTEGERS):
        assert name in accepted, name
    # fail_step_on_reject belongs to the callback, not to the decision: the bridge moves it there.
    assert "gate_tuning_children" in accepted and "fail_step_on_reject" not in accepted
