"""Assertions on the synthesized stack (one synth per session, see tests/conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import ConfigError, load_config, read_context
from infra.gate import ASL_PATH
from training_gate_cli.local_engine import resources_of


@pytest.fixture(scope="module")
def cfn(template: dict) -> Template:
    return Template.from_json(template)


def _statements(template: dict, role_prefix: str) -> list[dict]:
    policies = resources_of(template, "AWS::IAM::Policy")
    found = []
    for policy in policies.values():
        roles = [r["Ref"] for r in policy["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def _actions(statements: list[dict]) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        value = statement["Action"]
        actions |= {value} if isinstance(value, str) else set(value)
    return actions


def test_the_state_machine_runs_the_asl_file_and_nothing_else(template: dict):
    (machine,) = resources_of(template, "AWS::StepFunctions::StateMachine").values()
    definition = machine["Properties"]["DefinitionString"]
    assert isinstance(definition, str), "the definition must be inline, not an S3 asset"
    assert json.loads(definition) == json.loads(ASL_PATH.read_text())
    placeholders = set(__import__("re").findall(r"\$\{(\w+)\}", definition))
    assert placeholders == set(machine["Properties"]["DefinitionSubstitutions"])


def test_every_aws_task_retries_throttling_with_jitter_and_catches_into_a_notification():
    definition = json.loads(ASL_PATH.read_text())
    for name, state in definition["States"].items():
        if state["Type"] != "Task":
            continue
        assert any(r.get("JitterStrategy") == "FULL" and r["BackoffRate"] > 1 for r in state["Retry"]), name
        catch_all = [c for c in state["Catch"] if "States.ALL" in c["ErrorEquals"]]
        assert catch_all, f"{name} has no catch-all"
        target = catch_all[0]["Next"]
        if state["Resource"].endswith(":sns:publish"):
            # A notification that cannot be sent still ends the execution with the decision's error.
            assert definition["States"][target]["Type"] in ("Fail", "Choice"), name
        elif name == "MarkDecisionFailed":
            assert target == "GateError"
        else:
            assert target == "NotifyGateError", name


def test_every_transition_target_exists():
    definition = json.loads(ASL_PATH.read_text())
    states = definition["States"]
    targets = {definition["StartAt"]}
    for state in states.values():
        targets |= {state["Next"]} if "Next" in state else set()
        targets |= {c["Next"] for c in state.get("Catch", [])}
        targets |= {c["Next"] for c in state.get("Choices", [])}
        targets |= {state["Default"]} if "Default" in state else set()
    assert targets <= set(states), targets - set(states)
    assert set(states) <= targets, f"unreachable: {set(states) - targets}"


def test_rule_matches_terminal_training_job_states_and_sends_only_the_job_name(cfn: Template):
    cfn.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Training Job State Change"],
                "detail": {"TrainingJobStatus": ["Completed", "Failed", "Stopped"]},
            },
            "Targets": [
                Match.object_like(
                    {
                        "InputTransformer": {
                            "InputPathsMap": {"detail-TrainingJobName": "$.detail.TrainingJobName"},
                            "InputTemplate": '{"TrainingJobName":<detail-TrainingJobName>}',
                        },
                        "DeadLetterConfig": Match.any_value(),
                        "RetryPolicy": Match.any_value(),
                    }
                )
            ],
        },
    )


def test_functions_use_the_newest_python_and_the_inspector_is_an_image(template: dict):
    functions = resources_of(template, "AWS::Lambda::Function")
    zips = [f for f in functions.values() if "Handler" in f["Properties"]]
    images = [f for f in functions.values() if f["Properties"].get("PackageType") == "Image"]
    assert {f["Properties"]["Runtime"] for f in zips} == {"python3.14"}
    assert len(zips) == 5 and len(images) == 1
    assert images[0]["Properties"]["ImageConfig"]["Command"] == ["training_gate.handlers.inspect_artifact.handler"]
    assert all(f["Properties"]["TracingConfig"]["Mode"] == "Active" for f in functions.values())


def test_no_managed_policies_and_no_action_wildcards(template: dict):
    for role in resources_of(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        for action in _actions(policy["Properties"]["PolicyDocument"]["Statement"]):
            assert "*" not in action, action


def test_only_the_inspector_and_the_collector_read_artifacts(template: dict):
    inspector = _actions(_statements(template, "GateInspectArtifactRole"))
    assert inspector == {
        "s3:GetObject",
        "s3:ListBucket",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert "s3:GetObject" in _actions(_statements(template, "GateCollectMetricsRole"))  # output.tar.gz
    for other in (
        "GateEvaluatePolicyRole",
        "GateValidateInputRole",
        "GateDescribeFailureRole",
        "GateRegisterModelRole",
    ):
        assert "s3:GetObject" not in _actions(_statements(template, other)), other


def test_state_machine_role_grants_what_the_asl_tasks_call(template: dict):
    definition = json.loads(ASL_PATH.read_text())
    needed = set()
    for state in definition["States"].values():
        resource = state.get("Resource", "")
        if ":aws-sdk:" in resource:
            service, api = resource.split(":aws-sdk:")[1].split(":")
            needed.add(f"{service}:{api[0].upper()}{api[1:]}")
        elif resource.endswith(":lambda:invoke"):
            needed.add("lambda:InvokeFunction")
        elif resource.endswith(":sns:publish"):
            needed.add("sns:Publish")
    granted = _actions(_statements(template, "GateStateMachineRole"))
    assert needed <= granted, f"missing: {needed - granted}"


def test_cdk_nag_reports_no_unacknowledged_finding_and_every_acknowledgement_has_a_reason(synthesized: Path):
    report = json.loads((synthesized.parent / "validation-report.json").read_text())
    (plugin,) = report["pluginReports"]
    assert plugin["conclusion"] == "success", plugin["violations"]
    suppressed = plugin.get("suppressedViolations", [])
    assert suppressed, "expected the reviewed acknowledgements to be recorded"
    for violation in suppressed:
        # Each acknowledgement names the rule (and the exact finding) and says why.
        assert violation["acknowledgedId"].startswith(f"AwsSolutions::{violation['ruleName']}")
        assert len(violation["reason"]) >= 30, violation


def test_cfn_lint_is_clean(synthesized: Path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", "W3005", "--", str(synthesized)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model_package_group": "bad group!"}, "model_package_group"),
        ({"poll_interval_seconds": -1}, "poll_interval_seconds"),
        ({"policy": {"rules": []}}, "policy.rules"),
        ({"notification_emails": ["not-an-email"]}, "notification_emails.0"),
        ({"colour": "red"}, "colour"),
        ({"sklearn_version": "latest"}, "sklearn_version"),
    ],
)
def test_bad_configuration_fails_naming_the_key(change: dict, field: str):
    with pytest.raises(ConfigError, match=f"training-gate.{field}"):
        load_config({**read_context(), **change})


def test_shipped_configuration_is_valid_and_carries_the_seed_thresholds():
    config = load_config(read_context())
    rules = {(r.metric, r.operator, r.threshold) for r in config.policy.rules}
    assert rules == {("accuracy", ">", 0.90), ("precision", ">", 0.85), ("recall", ">", 0.85), ("f1", ">", 0.85)}


def test_reading_cloudwatch_metrics_is_granted_only_when_enabled(template: dict, tmp_path):
    from training_gate_cli.synth import synthesize

    assert "cloudwatch:GetMetricStatistics" not in _actions(_statements(template, "GateCollectMetricsRole"))
    enabled = json.loads(synthesize(tmp_path, overrides={"read_cloudwatch_metrics": True}).read_text())
    assert "cloudwatch:GetMetricStatistics" in _actions(_statements(enabled, "GateCollectMetricsRole"))


def test_every_function_gets_the_environment_its_handler_reads(template: dict):
    # In-process, the local engine gives handlers one shared environment; this keeps each deployed
    # function's own environment honest.
    import re

    handlers = Path(__file__).resolve().parents[2] / "lambdas" / "training_gate" / "handlers"
    for logical_id, function in resources_of(template, "AWS::Lambda::Function").items():
        properties = function["Properties"]
        handler = properties.get("Handler") or properties["ImageConfig"]["Command"][0]
        source = (handlers / f"{handler.split('.')[-2]}.py").read_text()
        needed = set(re.findall(r"environ(?:\.get\(|\[)\"([A-Z_]+)\"", source))
        given = set(properties.get("Environment", {}).get("Variables", {}))
        assert needed <= given, f"{logical_id} lacks {needed - given}"


ASL_VALIDATOR = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "asl-validator"


@pytest.mark.parametrize("dangling", [False, True], ids=["shipped", "dangling-next"])
def test_asl_validator_accepts_the_workflow_and_catches_a_dangling_transition(tmp_path, dangling: bool):
    assert ASL_VALIDATOR.exists(), "asl-validator is missing: `make test` installs it (npm ci)"
    definition = json.loads(ASL_PATH.read_text())
    if dangling:
        definition["States"]["ValidateInput"]["Next"] = "NoSuchState"
    path = tmp_path / "definition.asl.json"
    path.write_text(json.dumps(definition))
    result = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True)
    assert (result.returncode != 0) is dangling, result.stdout + result.stderr
    if dangling:
        assert "MISSING_TRANSITION_TARGET" in result.stdout + result.stderr
