"""The tuning job's rule and the functions the tuning path and the owners' message need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.config import ConfigError, load_config, read_context
from tests.infra.test_template import _actions, _statements, role
from training_gate_cli.local_engine import apply_input_transformer, resources_of, rule_matches

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tuning-job-state-change.json"
TUNING = "SageMaker HyperParameter Tuning Job State Change"
TRAINING = "SageMaker Training Job State Change"


def rule_of(template: dict, detail_type: str) -> dict:
    rules = [r["Properties"] for r in resources_of(template, "AWS::Events::Rule").values()]
    (found,) = [r for r in rules if r["EventPattern"].get("detail-type") == [detail_type]]
    return found


def resolved(pattern: dict) -> dict:
    """The pattern with this account and region, as EventBridge sees it once deployed."""
    return {**pattern, "account": ["123456789012"], "region": ["us-east-1"]}


def test_the_tuning_rule_starts_the_gate_for_a_tagged_tuning_job_of_this_account(template: dict):
    tuning = rule_of(template, TUNING)
    pattern = tuning["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail"] == {
        "HyperParameterTuningJobStatus": ["Completed", "Failed", "Stopped"],
        "Tags": {"training-gate": ["enabled"]},
    }
    assert (pattern["account"], pattern["region"]) == ([{"Ref": "AWS::AccountId"}], [{"Ref": "AWS::Region"}])
    event = json.loads(EXAMPLE.read_text())
    assert rule_matches(resolved(pattern), event)
    assert not rule_matches(resolved(pattern), {**event, "detail": {**event["detail"], "Tags": {}}})
    assert not rule_matches(resolved(rule_of(template, TRAINING)["EventPattern"]), event)
    (target,) = tuning["Targets"]
    assert apply_input_transformer(target["InputTransformer"], event) == {
        "HyperParameterTuningJobName": "churn-hpo-1126",
        "source_account": "123456789012",
        "source_region": "us-east-1",
    }
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8


def test_prefixes_scope_tuning_jobs_as_they_scope_training_jobs(tmp_path):
    from training_gate_cli.synth import synthesize

    configured = json.loads(synthesize(tmp_path, overrides={"job_name_prefixes": ["churn-"]}).read_text())
    tuning = rule_of(configured, TUNING)["EventPattern"]["detail"]
    training = rule_of(configured, TRAINING)["EventPattern"]["detail"]
    assert tuning["HyperParameterTuningJobName"] == training["TrainingJobName"] == [{"prefix": "churn-"}]
    assert tuning.get("Tags") == training.get("Tags")


def test_describe_tuning_job_reads_tuning_jobs_and_nothing_else(template: dict):
    statements = _statements(template, role("DescribeTuningJob"))
    sagemaker = [s for s in statements if any(a.startswith("sagemaker:") for a in _actions([s]))]
    assert _actions(sagemaker) == {
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    }
    assert "hyper-parameter-tuning-job/*" in json.dumps([s["Resource"] for s in sagemaker])


def test_only_notify_owners_publishes_a_decisions_message_and_it_cannot_create_decisions(template: dict):
    topics = resources_of(template, "AWS::SNS::Topic")
    (owners,) = [k for k in topics if not k.startswith("GateOperations")]
    (operations,) = [k for k in topics if k.startswith("GateOperations")]
    notify = _statements(template, role("NotifyOwners"))
    publish = [s for s in notify if "sns:Publish" in _actions([s])]
    # The owners' message, and operations' of a skipped decision: both after the same ownership check.
    assert [s["Resource"] for s in publish] == [[{"Ref": owners}, {"Ref": operations}]]
    assert {"dynamodb:GetItem", "dynamodb:UpdateItem"} <= _actions(notify) and "dynamodb:PutItem" not in _actions(
        notify
    )
    machine = _statements(template, "GateWorkflowStateMachineRole")
    assert not [s for s in machine if "sns:Publish" in _actions([s])]


def test_the_notice_and_the_alert_reach_the_decision_table(template: dict):
    assert {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"} <= _actions(
        _statements(template, role("DescribeFailure"))
    )
    assert "states:DescribeExecution" in _actions(_statements(template, role("DescribeFailure")))
    assert {"dynamodb:Query", "dynamodb:UpdateItem"} <= _actions(_statements(template, role("AlertOperations")))


@pytest.mark.parametrize("value", [0, 11, "3"])
def test_tuning_candidates_is_one_to_ten(value):
    with pytest.raises(ConfigError, match=r"training-gate\.tuning_candidates"):
        load_config({**read_context(), "tuning_candidates": value})


def test_the_tuning_settings_reach_validate_input(template: dict, tmp_path):
    from training_gate_cli.synth import synthesize

    configured = json.loads(
        synthesize(tmp_path, overrides={"tuning_candidates": 3, "gate_tuning_children": True}).read_text()
    )
    functions = resources_of(configured, "AWS::Lambda::Function")
    (validate,) = [f for k, f in functions.items() if k.startswith("GateFunctionsValidateInput")]
    variables = validate["Properties"]["Environment"]["Variables"]
    assert (variables["DEFAULT_TUNING_CANDIDATES"], variables["GATE_TUNING_CHILDREN"]) == ("3", "true")
