"""Assertions on the synthesized stack (one synth per session, see tests/conftest.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import ConfigError, load_config, read_context
from infra.gate import ASL_PATH
from infra.integrations import INTEGRATIONS, integration_arn
from tests.infra.lint import cfn_lint
from tests.infra.support import function_variables, settings_document
from training_gate_cli.local_engine import resources_of


@pytest.fixture(scope="module")
def cfn(template: dict) -> Template:
    return Template.from_json(template)


def role(name: str) -> str:
    """The logical ID prefix of a function's role."""
    return f"GateFunctions{name}Role"


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


FAILURE_ANSWERS = {"AnswerGateError": "GateError", "AnswerNotificationFailed": "NotificationFailed"}


def test_every_aws_task_retries_throttling_with_jitter_and_catches_every_failure_into_a_named_end():
    definition = json.loads(ASL_PATH.read_text())
    states = definition["States"]
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        assert any(r.get("JitterStrategy") == "FULL" and r["BackoffRate"] > 1 for r in state["Retry"]), name
        catch_all = [c for c in state["Catch"] if "States.ALL" in c["ErrorEquals"]]
        assert catch_all, f"{name} has no catch-all"
        target = catch_all[0]["Next"]
        if name in FAILURE_ANSWERS:
            # The pipelines waiting on a failing execution are answered on its way out; if that fails, it
            # still ends as the failure it was (and the operations alert answers them).
            assert (target, state["Next"]) == (FAILURE_ANSWERS[name], FAILURE_ANSWERS[name]), name
        elif state["Resource"] == "${NotifyOwnersFunctionArn}":
            # The message could not be sent: a failure of its own, which operations hear of.
            (refused,) = [c for c in state["Catch"] if "NotificationFailed" in c["ErrorEquals"]]
            assert (refused["Next"], states[refused["Next"]]["Next"]) == (
                "AnswerNotificationFailed",
                "NotificationFailed",
            ), name
            assert (target, states[target]["Next"]) == ("DescribeGateError", "AnswerGateError"), name
        else:
            assert (target, states[target]["Next"], states["AnswerGateError"]["Next"]) == (
                "DescribeGateError",
                "AnswerGateError",
                "GateError",
            ), name
    # Every Fail state is an outcome the alert function knows, or one operations are told of.
    from training_gate.domain.alerts import DESIGNED_OUTCOMES

    fails = {s["Error"] for s in states.values() if s["Type"] == "Fail"}
    assert fails == DESIGNED_OUTCOMES | {"GateError", "NotificationFailed"}


def test_no_aws_sdk_task_receives_a_raw_response_that_could_pass_the_state_limit():
    # DescribeTrainingJob can answer with more than 256 KiB (100 hyperparameters of 2,500 characters),
    # and the limit applies before any ResultSelector: a function reads it and returns what is used.
    definition = json.loads(ASL_PATH.read_text())
    resources = {s.get("Resource", "") for s in definition["States"].values()}
    assert not [r for r in resources if ":aws-sdk:" in r]


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


def test_rule_matches_this_accounts_terminal_training_job_states_and_sends_the_name_and_origin(cfn: Template):
    cfn.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Training Job State Change"],
                "account": [{"Ref": "AWS::AccountId"}],
                "region": [{"Ref": "AWS::Region"}],
                "detail": {"TrainingJobStatus": ["Completed", "Failed", "Stopped"]},
            },
            "Targets": [
                Match.object_like(
                    {
                        "InputTransformer": {
                            "InputPathsMap": {
                                "detail-TrainingJobName": "$.detail.TrainingJobName",
                                "account": "$.account",
                                "region": "$.region",
                            },
                            "InputTemplate": '{"TrainingJobName":<detail-TrainingJobName>,'
                            '"source_account":<account>,"source_region":<region>}',
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
    assert len(zips) == 12 and len(images) == 1
    assert images[0]["Properties"]["ImageConfig"]["Command"] == ["training_gate.handlers.inspect_artifact.handler"]
    assert all(f["Properties"]["TracingConfig"]["Mode"] == "Active" for f in functions.values())


def test_no_managed_policies_and_no_action_wildcards(template: dict):
    for role in resources_of(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        for action in _actions(policy["Properties"]["PolicyDocument"]["Statement"]):
            assert "*" not in action, action


def test_only_the_inspector_and_the_collector_read_artifacts(template: dict):
    inspector = _actions(_statements(template, role("InspectArtifact")))
    assert inspector == {
        "s3:GetObject",
        "s3:ListBucket",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert "s3:GetObject" in _actions(_statements(template, role("CollectMetrics")))  # output.tar.gz
    for other in (
        "EvaluatePolicy",
        "ValidateInput",
        "DescribeFailure",
        "RegisterModel",
        "RecordOutcome",
        "DescribeTrainingJob",
        "AlertOperations",
    ):
        reads = [st for st in _statements(template, role(other)) if "s3:GetObject" in _actions([st])]
        assert all("sagemaker-" not in json.dumps(st["Resource"]) for st in reads), other


# What the role needs besides the ASL's tasks: tracing, log delivery, and the topic's key.
STATE_MACHINE_PLUMBING = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "kms:GenerateDataKey",
    "kms:Decrypt",
}
# Service integrations are placeholders the stack fills with its partition's ARN (infra/integrations.py).
INTEGRATION_PREFIX = "arn:aws:states:::"
# Optimized integrations whose IAM action is not the resource name with a capital letter.
_INTEGRATION_ACTIONS = {"lambda:invoke": "lambda:InvokeFunction"}


def actions_the_asl_calls(definition: dict) -> set[str]:
    """arn:${Partition}:states:::aws-sdk:sagemaker:describeTrainingJob -> sagemaker:DescribeTrainingJob, etc.;
    a function ARN (`${NameFunctionArn}`) as the resource is lambda:InvokeFunction."""
    needed = set()
    for state in definition["States"].values():
        resource = state.get("Resource", "")
        if resource.startswith("${") and resource.endswith("FunctionArn}"):
            needed.add("lambda:InvokeFunction")
            continue
        if resource.removeprefix("${").removesuffix("}") in INTEGRATIONS:
            resource = integration_arn("aws", INTEGRATIONS[resource[2:-1]])
        if not resource.startswith(INTEGRATION_PREFIX):
            continue
        service, api = resource.removeprefix(INTEGRATION_PREFIX).removeprefix("aws-sdk:").split(":")[:2]
        call = f"{service}:{api}"
        needed.add(_INTEGRATION_ACTIONS.get(call, f"{service}:{api[0].upper()}{api[1:]}"))
    return needed


def test_state_machine_role_grants_exactly_what_the_asl_tasks_call(template: dict):
    needed = actions_the_asl_calls(json.loads(ASL_PATH.read_text()))
    # Every message of a decision is sent by NotifyOwners (ownership checked where it publishes): the owners',
    # and operations' of a skipped model. The state machine itself only invokes functions.
    assert needed == {"lambda:InvokeFunction"}
    granted = _actions(_statements(template, "GateWorkflowStateMachineRole"))
    assert granted - STATE_MACHINE_PLUMBING == needed, (
        f"missing {needed - granted}, extra {granted - STATE_MACHINE_PLUMBING - needed}"
    )


def test_a_task_added_without_its_permission_is_caught():
    definition = json.loads(ASL_PATH.read_text())
    resource = f"{INTEGRATION_PREFIX}aws-sdk:sagemaker:stopTrainingJob"
    definition["States"]["Extra"] = {"Type": "Task", "Resource": resource}
    assert "sagemaker:StopTrainingJob" in actions_the_asl_calls(definition)


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
    assert cfn_lint([synthesized], ["us-east-1"]) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model_package_group": "bad group!"}, "model_package_group"),
        ({"poll_interval_seconds": -1}, "poll_interval_seconds"),
        ({"policy": {"rules": []}}, "policy.rules"),
        ({"notification_emails": ["not-an-email"]}, "notification_emails.0"),
        ({"colour": "red"}, "colour"),
        ({"sklearn_version": "latest"}, "sklearn_version"),
        ({"kms_key_arn": "my-key"}, "kms_key_arn"),
        ({"state_machine_log_level": "VERBOSE"}, "state_machine_log_level"),
        ({"required_job_tag": {"key": "x"}}, "required_job_tag.value"),
        (
            {
                "policy": {
                    "rules": [{"metric": "acc", "operator": ">", "threshold": 0.9}],
                    "outcome": {"model_package_group": "elsewhere"},
                }
            },
            "policy",
        ),
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

    assert "cloudwatch:GetMetricStatistics" not in _actions(_statements(template, role("CollectMetrics")))
    enabled = json.loads(synthesize(tmp_path, overrides={"read_cloudwatch_metrics": True}).read_text())
    assert "cloudwatch:GetMetricStatistics" in _actions(_statements(enabled, role("CollectMetrics")))


def test_every_function_gets_the_environment_its_handler_reads(template: dict, synthesized: Path):
    # In-process, the local engine gives handlers one shared environment; this keeps each deployed
    # function's own environment honest (its variables, and the settings document it names).
    import importlib

    for logical_id, function in resources_of(template, "AWS::Lambda::Function").items():
        properties = function["Properties"]
        handler = properties.get("Handler") or properties["ImageConfig"]["Command"][0]
        module = importlib.import_module(handler.rsplit(".", 1)[0])
        models = [v for v in vars(module).values() if isinstance(v, type) and v.__name__.endswith("Environment")]
        needed = {name for model in models for name, field in model.model_fields.items() if field.is_required()}
        given = set(function_variables(synthesized, logical_id))
        assert needed <= given, f"{logical_id} lacks {needed - given}"
        assert models or "environment(" not in Path(module.__file__).read_text(), logical_id


def test_settings_that_grow_with_the_configuration_are_in_the_document_not_the_environment(synthesized: Path):
    from infra.functions import DOCUMENT_VARIABLES

    document = settings_document(synthesized)
    assert set(document) == set(DOCUMENT_VARIABLES)
    template = json.loads(synthesized.read_text())
    for function in resources_of(template, "AWS::Lambda::Function").values():
        assert not set(function["Properties"].get("Environment", {}).get("Variables", {})) & set(DOCUMENT_VARIABLES)
    assert json.loads(document["GATE_POLICY"]) == load_config(read_context()).policy.model_dump(mode="json")


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


def test_topics_bucket_and_table_are_encrypted_and_the_bucket_is_private(cfn: Template, template: dict):
    for topic in resources_of(template, "AWS::SNS::Topic").values():
        assert "KmsMasterKeyId" in topic["Properties"]
    cfn.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like({"ServerSideEncryptionByDefault": Match.object_like({"SSEAlgorithm": "aws:kms"})})
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LifecycleConfiguration": {
                "Rules": [Match.object_like({"Prefix": "reports/", "ExpirationInDays": 365, "Status": "Enabled"})]
            },
        },
    )
    cfn.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    cfn.has_resource_properties(
        "AWS::DynamoDB::Table",
        {"SSESpecification": {"SSEEnabled": True}, "PointInTimeRecoverySpecification": Match.any_value()},
    )
    cfn.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_state_machine_logs_to_vended_logs_without_execution_data_and_traces(cfn: Template):
    cfn.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "LoggingConfiguration": {"Level": "ALL", "IncludeExecutionData": False, "Destinations": Match.any_value()},
            "TracingConfiguration": {"Enabled": True},
        },
    )
    cfn.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": Match.string_like_regexp("^/aws/vendedlogs/states/")}
    )


def test_every_alarm_goes_to_the_operations_topic_whose_policy_and_key_admit_cloudwatch(template: dict):
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    names = {a["Properties"]["AlarmDescription"].split(":")[1].split(">")[0].strip() for a in alarms.values()}
    assert {"FailedEventDeliveries", "FailedAlertDeliveries", "DeadLetters", "UndeliveredAlerts"} <= names
    assert {"OwnerNotificationsFailed", "OperationsNotificationsFailed", "AlertOperationsErrors"} <= names
    assert {f"{fn}Throttles" for fn in ("CollectMetrics", "RegisterModel", "AlertOperations")} <= names
    # One path per failure: what ends an execution reaches operations through the alert, not an alarm too.
    assert not {"ExecutionsTimedOut", "EvaluatePolicyErrors", "RegisterModelErrors"} & names
    topics = resources_of(template, "AWS::SNS::Topic")
    (operations,) = [k for k in topics if k.startswith("GateOperations")]
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": operations}]
    # The topic's policy admits CloudWatch (this account's alarms only) ...
    (policy,) = [
        p["Properties"]
        for p in resources_of(template, "AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": operations}]
    ]
    (statement,) = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert statement["Action"] == "sns:Publish" and set(statement["Condition"]) == {"StringEquals", "ArnLike"}
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
    # ... and so does its key, which is not the owners' key.
    key_ref = topics[operations]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    owners_key = next(t for k, t in topics.items() if k != operations)["Properties"]["KmsMasterKeyId"]
    assert key_ref != owners_key["Fn::GetAtt"][0]
    key_statements = resources_of(template, "AWS::KMS::Key")[key_ref]["Properties"]["KeyPolicy"]["Statement"]
    admitted = [s for s in key_statements if "cloudwatch.amazonaws.com" in json.dumps(s.get("Principal"))]
    assert admitted and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(admitted[0]["Action"])


def test_every_execution_that_ends_failed_timed_out_or_aborted_reaches_the_alert_function(template: dict):
    rules = [r["Properties"] for r in resources_of(template, "AWS::Events::Rule").values()]
    (ended,) = [r for r in rules if r["EventPattern"].get("source") == ["aws.states"]]
    # Error names are read with DescribeExecution: the documented event does not carry them.
    assert ended["EventPattern"]["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    assert "error" not in ended["EventPattern"]["detail"]
    (target,) = ended["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("GateFunctionsAlertOperations")
    assert "DeadLetterConfig" in target and "RetryPolicy" in target
    # The function's own failures after Lambda's retries land in the same queue, with the event.
    (invoke_config,) = resources_of(template, "AWS::Lambda::EventInvokeConfig").values()
    destination = invoke_config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == target["DeadLetterConfig"]["Arn"]
    assert "states:DescribeExecution" in _actions(_statements(template, role("AlertOperations")))
    assert "sns:Publish" in _actions(_statements(template, role("AlertOperations")))
    assert resources_of(template, "AWS::CloudWatch::Dashboard")


def test_the_dashboard_graphs_every_outcome_and_reason_code_the_domain_knows(template: dict):
    from training_gate.domain.policy import Outcome, ReasonCode

    (dashboard,) = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for code in ReasonCode:
        assert f"Reason_{code.value}" in body, code
    for outcome in Outcome:
        assert f"Decisions_{outcome.value}" in body, outcome


def test_dashboard_graphs_the_judged_metric_values_the_policy_function_publishes(template: dict):
    (dashboard,) = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "SEARCH('{TrainingGate,Metric,ModelPackageGroup,service} MetricName=" in body
    assert "Judged metric values by model package group" in body
    functions = resources_of(template, "AWS::Lambda::Function")
    (evaluate,) = [f for k, f in functions.items() if k.startswith("GateFunctionsEvaluatePolicy")]
    assert evaluate["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == (
        "training-gate-evaluate_policy"
    )


def test_rule_pattern_follows_the_configuration(tmp_path):
    from training_gate_cli.synth import synthesize

    overrides = {
        "job_name_prefixes": ["churn-", "fraud-"],
        "required_job_tag": {"key": "training-gate", "value": "enabled"},
        "state_machine_log_level": "ERROR",
    }
    configured = json.loads(synthesize(tmp_path, overrides=overrides).read_text())
    rules = [r["Properties"] for r in resources_of(configured, "AWS::Events::Rule").values()]
    (rule,) = [r for r in rules if r["EventPattern"].get("detail-type") == ["SageMaker Training Job State Change"]]
    assert rule["EventPattern"]["detail"]["TrainingJobName"] == [{"prefix": "churn-"}, {"prefix": "fraud-"}]
    assert rule["EventPattern"]["detail"]["Tags"] == {"training-gate": ["enabled"]}
    (machine,) = resources_of(configured, "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ERROR"


def test_a_user_supplied_key_replaces_the_stack_key(tmp_path):
    from training_gate_cli.synth import synthesize

    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    operations = "arn:aws:kms:us-east-1:123456789012:key/99999999-12ab-34cd-56ef-1234567890ab"
    configured = json.loads(
        synthesize(tmp_path, overrides={"kms_key_arn": arn, "operations_kms_key_arn": operations}).read_text()
    )
    assert not resources_of(configured, "AWS::KMS::Key")
    keys = {k: t["Properties"]["KmsMasterKeyId"] for k, t in resources_of(configured, "AWS::SNS::Topic").items()}
    assert {k.startswith("GateOperations"): v for k, v in keys.items()} == {True: operations, False: arn}


def test_a_user_supplied_key_warns_at_synth_with_the_statement_its_policy_needs():
    from aws_cdk import App
    from aws_cdk.assertions import Annotations as Found
    from aws_cdk.assertions import Match as M

    from infra.config import load_config, read_context
    from infra.stack import TrainingGateStack

    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    app = App()
    stack = TrainingGateStack(app, "Keys", config=load_config({**read_context(), "kms_key_arn": arn}))
    warnings = Found.from_stack(stack).find_warning("*", M.string_like_regexp("cloudwatch.amazonaws.com"))
    assert len(warnings) == 1 and arn in str(warnings[0].entry.data)


def test_the_limits_a_rejection_names_are_deployment_settings(synthesized: Path, tmp_path):
    from training_gate_cli.synth import synthesize

    def inspect_config(path: Path) -> dict:
        return json.loads(function_variables(path, "GateFunctionsInspectArtifact")["INSPECT_CONFIG"])

    assert "memory_limit_mib" not in inspect_config(synthesized)
    raised = synthesize(tmp_path, overrides={"inspection": {"memory_limit_mib": 3000, "time_limit_s": 240}})
    assert inspect_config(raised)["memory_limit_mib"] == 3000 and inspect_config(raised)["time_limit_s"] == 240
    with pytest.raises(ConfigError, match=r"inspection\.memory_limit_mib"):
        load_config({**read_context(), "inspection": {"memory_limit_mib": 1}})


def test_the_asl_names_no_partition_every_integration_is_filled_in_by_the_stack(template: dict):
    # arn:aws:states:::sns:publish fails in aws-cn and aws-us-gov: a new task names its integration by a
    # placeholder in infra/integrations.py, which the stack fills with its own partition's ARN.
    assert "arn:aws" not in ASL_PATH.read_text()
    (machine,) = resources_of(template, "AWS::StepFunctions::StateMachine").values()
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    for placeholder, integration in INTEGRATIONS.items():
        assert substitutions[placeholder] == {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":states:::{integration}"]]
        }
