"""Synthesis as `cdk deploy` does it: environment-agnostic and in a concrete account and region of each partition
(aws, aws-cn, aws-us-gov), under the default stack name and a long one; clean under cdk-nag and cfn-lint; the
layer, the ARNs and the names each stack's own; every function's environment inside Lambda's 4 KB; two gates in
one app apart. One app holds the whole matrix (one synthesis); one synthesis goes through the pinned CDK CLI
with the environment `cdk deploy` gives it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, Validations
from cdk_nag import AwsSolutionsChecks

import infra.app as app_module
from infra.app import STACKS_KEY, build_app, scopes_overlap
from infra.config import CONTEXT_KEY, ConfigError, load_config, read_context
from infra.names import DEFAULT_STACK_NAME, PARAMETER_NAME_MAX
from infra.powertools import MAPPING_ID, PUBLISHERS
from infra.settings import ENVIRONMENT_MAX_BYTES, check_environment
from infra.stack import TrainingGateStack
from tests.infra.lint import cfn_lint
from tests.infra.support import settings_document
from training_gate_cli.local_engine import resources_of

REPO = Path(__file__).resolve().parents[2]
CDK_CLI = REPO / "node_modules" / ".bin" / "cdk"
ACCOUNT = "123456789012"
REGIONS = {"aws": "eu-central-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}
LONG_NAME = "TrainingGate-Production-EuCentral1"


@dataclass(frozen=True)
class Case:
    partition: str | None  # None: environment-agnostic
    stack_name: str

    @property
    def artifact(self) -> str:
        return f"{self.partition or 'agnostic'}-{'default' if self.stack_name == DEFAULT_STACK_NAME else 'long'}"

    @property
    def region(self) -> str | None:
        return REGIONS[self.partition] if self.partition else None


CASES = [Case(p, n) for p in (None, *REGIONS) for n in (DEFAULT_STACK_NAME, LONG_NAME)]


@dataclass
class Matrix:
    outdir: Path
    environment_bytes: dict[str, dict[str, int]]

    def template_path(self, case: Case) -> Path:
        return self.outdir / f"{case.artifact}.template.json"

    def template(self, case: Case) -> dict[str, Any]:
        return json.loads(self.template_path(case).read_text())


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    outdir = tmp_path_factory.mktemp("matrix")
    app = App(outdir=str(outdir))
    config = load_config(read_context())
    sizes = {}
    for case in CASES:
        env = Environment(account=ACCOUNT, region=case.region) if case.partition else None
        stack = TrainingGateStack(app, case.artifact, stack_name=case.stack_name, config=config, env=env)
        sizes[case.artifact] = stack.gate.functions.environment_bytes
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    return Matrix(outdir, sizes)


def test_every_case_synthesizes_with_no_cdk_nag_finding_left(matrix: Matrix):
    report = json.loads((matrix.outdir / "validation-report.json").read_text())
    (plugin,) = report["pluginReports"]
    assert plugin["conclusion"] == "success", plugin["violations"]
    acknowledged = {v["acknowledgedId"] for v in plugin.get("suppressedViolations", [])}
    # The same acknowledgements match whether the ARNs hold tokens or this account and region.
    assert any(f":{REGIONS['aws-cn']}:{ACCOUNT}:" in a for a in acknowledged)
    assert any("<AWS::Region>:<AWS::AccountId>" in a for a in acknowledged)


@pytest.mark.parametrize("partition", list(REGIONS))
def test_cfn_lint_is_clean_in_each_partition(matrix: Matrix, partition: str):
    cases = [c for c in CASES if c.partition in (partition, None)]
    assert cfn_lint([matrix.template_path(c) for c in cases], [REGIONS[partition]]) == []


@pytest.mark.parametrize("case", [c for c in CASES if c.partition], ids=lambda c: c.artifact)
def test_the_powertools_layer_is_the_one_published_in_the_stacks_partition_and_region(matrix: Matrix, case: Case):
    layers = {
        layer
        for f in resources_of(matrix.template(case), "AWS::Lambda::Function").values()
        for layer in f["Properties"].get("Layers", [])
    }
    (layer,) = layers
    _, partition, _, region, account, *_ = layer.split(":")
    assert (partition, region, account) == (case.partition, case.region, PUBLISHERS[case.region])


def test_an_environment_agnostic_template_finds_the_layer_of_each_partition(matrix: Matrix):
    mapping = matrix.template(Case(None, DEFAULT_STACK_NAME))["Mappings"][MAPPING_ID]
    for partition, region in REGIONS.items():
        arn = mapping[region]["arn"].split(":")
        assert (arn[1], arn[4]) == (partition, PUBLISHERS[region])


@pytest.mark.parametrize("case", [c for c in CASES if c.partition], ids=lambda c: c.artifact)
def test_every_literal_arn_names_the_stacks_partition_region_and_account(matrix: Matrix, case: Case):
    text = json.dumps({k: v for k, v in matrix.template(case).items() if k != "Mappings"})
    partitions = set(re.findall(r"arn:(aws[a-z-]*):", text))
    assert partitions <= {case.partition}, partitions
    for region, account in re.findall(r"arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]*):(\d{12}|):", text):
        assert region in ("", case.region) and account in ("", ACCOUNT, PUBLISHERS[case.region]), (region, account)
    # The functions know the account and region they run in by their ARN, as deployed.
    assert f":{case.region}:{ACCOUNT}:" in text


def _explicit_names(template: dict[str, Any]) -> dict[str, str]:
    """What the gate names itself: the state machine's log group, the dashboard, the policy prefix, services."""
    names = {}
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("LogGroupName", "DashboardName", "QueueName"):
            if isinstance(properties.get(key), str):
                names[f"{logical_id}.{key}"] = properties[key]
        for key, value in properties.get("Environment", {}).get("Variables", {}).items():
            if key in ("POLICY_PARAMETER_PREFIX", "POWERTOOLS_SERVICE_NAME"):
                names[f"{logical_id}.{key}"] = value
    return names


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.artifact)
def test_what_the_gate_names_is_derived_from_the_stack_name_and_within_its_limit(matrix: Matrix, case: Case):
    names = _explicit_names(matrix.template(case))
    assert len(names) >= 11
    for where, name in names.items():
        if where.endswith("LogGroupName"):
            assert len(name) <= 512 and case.stack_name in name, name
        elif where.endswith("DashboardName"):
            assert len(name) <= 255 and re.fullmatch(r"[A-Za-z0-9_-]+", name) and case.stack_name in name, name
        elif where.endswith("QueueName"):
            # The callback queue: SQS's limit and alphabet, and "sagemaker" in it for the Pipelines managed policy.
            assert len(name) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", name) and "sagemaker" in name, name
            assert name.startswith(case.stack_name[:40]) or case.stack_name == DEFAULT_STACK_NAME, name
        elif where.endswith("POLICY_PARAMETER_PREFIX"):
            assert len(name) + 63 <= PARAMETER_NAME_MAX  # with the longest model package group
            assert (case.stack_name in name) or (
                name == "/training-gate/policies/" and case.stack_name == DEFAULT_STACK_NAME
            )
        else:
            assert len(name) <= 1024 and (case.stack_name in name or case.stack_name == DEFAULT_STACK_NAME), name
    other = next(c for c in CASES if c.partition == case.partition and c.stack_name != case.stack_name)
    assert not set(names.values()) & set(_explicit_names(matrix.template(other)).values())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.artifact)
def test_every_function_environment_fits_in_lambdas_4_kb(matrix: Matrix, case: Case):
    sizes = matrix.environment_bytes[case.artifact]
    assert len(sizes) == 13 and max(sizes.values()) <= ENVIRONMENT_MAX_BYTES
    document = settings_document(matrix.template_path(case))
    assert set(document) == {
        "GATE_POLICY",
        "MODEL_PACKAGE_GROUPS",
        "INFERENCE_CONFIG",
        "INSPECT_CONFIG",
        "JOB_NAME_PREFIXES",
    }


# -- the deploy path: the pinned CDK CLI with what `cdk deploy` gives the app --------------------------


def _cli_environment(region: str) -> dict[str, str]:
    """The CDK CLI as `cdk deploy` runs the app: an account and a region resolved (CDK_DEFAULT_ACCOUNT, and
    AWS_REGION, which the CLI turns into CDK_DEFAULT_REGION), but nothing to send: no telemetry, notices or
    version check, no credentials, and any AWS endpoint it might still try pointed at a closed local port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        {
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "CDK_DISABLE_VERSION_CHECK": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_REGION": region,
            "CDK_DEFAULT_ACCOUNT": ACCOUNT,
        }
    )
    return env


def test_the_pinned_cdk_cli_synthesizes_as_cdk_deploy_does_with_a_json_string_merged_into_cdk_json(tmp_path: Path):
    """The one synth through the CLI in the suite (~15 s cold): a concrete environment, and the README's `-c`."""
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
        env=_cli_environment("eu-central-1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    # cdk-nag's errors end the CLI's synth with "Synthesis finished with errors" and exit code 1.
    assert result.returncode == 0, result.stdout + result.stderr
    path = tmp_path / f"{DEFAULT_STACK_NAME}.template.json"
    template = json.loads(path.read_text())
    text = json.dumps(template)
    assert f":eu-central-1:{ACCOUNT}:" in text and "arn:aws:lambda:eu-central-1:017000801446:layer:" in text
    rules = [r["Properties"] for r in resources_of(template, "AWS::Events::Rule").values()]
    (rule,) = [r for r in rules if r["EventPattern"].get("detail-type") == ["SageMaker Training Job State Change"]]
    assert rule["EventPattern"]["detail"]["TrainingJobName"] == [{"prefix": "churn-"}]
    # Keys the override does not name keep their cdk.json values.
    assert read_context()["model_package_group"] in settings_document(path)["MODEL_PACKAGE_GROUPS"]
    assets = json.loads((tmp_path / f"{DEFAULT_STACK_NAME}.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    build_args = image["source"]["dockerBuildArgs"]
    assert (build_args["SKLEARN_VERSION"], build_args["PYTHON_VERSION"]) == ("1.9.1", "3.12")
    assert cfn_lint([path], ["eu-central-1"]) == []


# -- two gates in one account -----------------------------------------------------------------------

STAGING = {"required_job_tag": {"key": "training-gate", "value": "staging"}}
PRODUCTION = {"required_job_tag": {"key": "training-gate", "value": "production"}}


def _app_with_stacks(monkeypatch: pytest.MonkeyPatch, stacks: dict[str, Any]) -> None:
    # As `cdk synth -c training-gate-stacks='{...}'` hands it over: a JSON string.
    context = {STACKS_KEY: json.dumps(stacks)}
    monkeypatch.setattr(app_module, "App", lambda outdir=None: App(outdir=outdir, context=context))


def test_two_gates_in_one_app_name_nothing_alike_and_each_judges_its_own_jobs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    _app_with_stacks(monkeypatch, {"TrainingGate-Staging": STAGING, "TrainingGate-Production": PRODUCTION})
    build_app(outdir=tmp_path).synth()
    staging, production = (
        json.loads((tmp_path / f"TrainingGate-{n}.template.json").read_text()) for n in ("Staging", "Production")
    )
    assert not set(_explicit_names(staging).values()) & set(_explicit_names(production).values())
    for template, value in ((staging, "staging"), (production, "production")):
        rules = [r["Properties"] for r in resources_of(template, "AWS::Events::Rule").values()]
        (rule,) = [r for r in rules if r["EventPattern"].get("detail-type") == ["SageMaker Training Job State Change"]]
        assert rule["EventPattern"]["detail"]["Tags"] == {"training-gate": [value]}
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert report["pluginReports"][0]["conclusion"] == "success"


@pytest.mark.parametrize(
    ("staging", "production"),
    [
        ({}, {}),  # the same tag
        (STAGING, {"required_job_tag": {"key": "team", "value": "ml"}}),  # a job may carry both tags
        ({"job_name_prefixes": ["churn-"]}, {"job_name_prefixes": ["churn-v2-"]}),
        ({"gate_all_jobs": True, "required_job_tag": None}, PRODUCTION),
    ],
    ids=["same-tag", "different-tag-keys", "overlapping-prefixes", "one-gates-everything"],
)
def test_two_gates_that_could_judge_the_same_job_are_refused_at_synth(
    monkeypatch: pytest.MonkeyPatch, staging: dict, production: dict
):
    _app_with_stacks(monkeypatch, {"TrainingGate-Staging": staging, "TrainingGate-Production": production})
    with pytest.raises(ConfigError, match=r"a job could start both.*own required_job_tag value"):
        build_app()


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        (STAGING, PRODUCTION, False),
        ({"job_name_prefixes": ["churn-"]}, {"job_name_prefixes": ["fraud-"]}, False),
        ({"job_name_prefixes": ["churn-"]}, {"job_name_prefixes": ["churn-"]}, True),
        ({"job_name_prefixes": ["churn-"], **STAGING}, {"job_name_prefixes": ["churn-"], **PRODUCTION}, False),
        ({"job_name_prefixes": ["churn-"], "required_job_tag": None}, STAGING, True),
    ],
)
def test_scopes_overlap_when_one_job_could_match_both_rules(first: dict, second: dict, overlap: bool):
    def config(changes: dict):
        return load_config({**{k: v for k, v in read_context().items() if k != "required_job_tag"}, **changes})

    assert scopes_overlap(config(first), config(second)) is overlap


def test_a_derived_policy_prefix_equal_to_another_gates_explicit_one_is_refused(monkeypatch: pytest.MonkeyPatch):
    explicit = {**PRODUCTION, "policy_parameter_prefix": "/training-gate/TrainingGate-Staging/policies/"}
    _app_with_stacks(monkeypatch, {"TrainingGate-Staging": STAGING, "TrainingGate-Production": explicit})
    with pytest.raises(ConfigError, match=r"would read the policies under /training-gate/TrainingGate-Staging/"):
        build_app()


def test_a_stack_name_cloudformation_would_refuse_fails_naming_it(monkeypatch: pytest.MonkeyPatch):
    _app_with_stacks(monkeypatch, {"training_gate": STAGING})
    with pytest.raises(ConfigError, match="'training_gate' is not a CloudFormation stack name"):
        build_app()


# -- Lambda's 4 KB of environment ---------------------------------------------------------------------


def test_an_environment_over_4_kb_fails_synthesis_naming_the_setting():
    stack = Stack(App(), "Sizes")
    with pytest.raises(
        ConfigError, match=r"Fn: its environment would be \d+ bytes.*GATE_POLICY 5\d{3} bytes \(from policy\)"
    ):
        check_environment(stack, "Fn", {"GATE_POLICY": "x" * 5000, "SMALL": "y"}, {"GATE_POLICY": "policy"})
    assert check_environment(stack, "Fn", {"A": "b"}, {}) == len('{"A":"b"}')


def test_a_variable_known_only_at_deploy_time_needs_a_bound():
    stack = Stack(App(), "Bounds")
    with pytest.raises(ConfigError, match="NEW_TABLE is only known at deploy time"):
        check_environment(stack, "Fn", {"NEW_TABLE": stack.stack_id}, {})


# The largest configuration: the longest stack name, group names, prefix and tag, many rules and groups, and a
# sample of 25 rows x 30 features (the inspector's INSPECT_CONFIG alone is then over 4 KB).
MAXIMAL = {
    "model_package_group": "g" * 63,
    "additional_model_package_groups": [f"group-{i:02d}-" + "x" * 54 for i in range(40)],
    "policy_parameter_prefix": "/" + "/".join(["p" * 60] * 14) + "/",
    "max_polls": 2181,
    "poll_interval_seconds": 60,
    "read_cloudwatch_metrics": True,
    "required_job_tag": {"key": "k" * 128, "value": "v" * 256},
    "job_name_prefixes": ["x" * 63] * 20,
    # 20 prefixes of 63 characters and the longest tag need the largest event pattern quota EventBridge grants.
    "event_pattern_quota": 4096,
    "sample_input": [[round(0.123456789 * (r + 1) * (c + 1), 9) for c in range(30)] for r in range(25)],
    "extra_allowed_globals": [f"package_{i}.module.Class{i}" for i in range(40)],
    "policy": {
        "version": 1,
        "rules": [{"metric": f"metric_{i}", "operator": ">", "threshold": 0.5} for i in range(60)],
        "outcome": {"group_from_tag": "model-group"},
    },
}


def test_the_largest_configuration_keeps_every_function_environment_inside_4_kb():
    stack = TrainingGateStack(
        App(),
        "Maximal",
        stack_name="T" * 128,
        config=load_config({**read_context(), **MAXIMAL}),
        env=Environment(account=ACCOUNT, region="us-gov-west-1"),
    )
    sizes = stack.gate.functions.environment_bytes
    assert max(sizes.values()) <= ENVIRONMENT_MAX_BYTES, sizes
    document = stack.gate.functions.settings.values
    assert len(json.dumps({"INSPECT_CONFIG": document["INSPECT_CONFIG"]})) > ENVIRONMENT_MAX_BYTES
    assert len(json.dumps({"GATE_POLICY": document["GATE_POLICY"]})) > ENVIRONMENT_MAX_BYTES


def test_a_later_synthesis_builds_the_same_thing(matrix: Matrix, tmp_path: Path):
    """Nothing in the template or its assets moves between two syntheses of one configuration: no lookup, no
    `latest`, no timestamp (the layer and the lock are pinned, the settings document is content-addressed)."""
    again = App(outdir=str(tmp_path))
    case = Case(None, DEFAULT_STACK_NAME)
    TrainingGateStack(again, case.artifact, stack_name=case.stack_name, config=load_config(read_context()))
    again.synth()
    assert json.loads((tmp_path / f"{case.artifact}.template.json").read_text()) == matrix.template(case)

    def sources(directory: Path) -> dict[str, Any]:
        manifest = json.loads((directory / f"{case.artifact}.assets.json").read_text())
        return {
            kind: {asset_id: asset["source"] for asset_id, asset in manifest[kind].items()}
            for kind in ("files", "dockerImages")
        }

    assert sources(tmp_path) == sources(matrix.outdir)


def test_a_prefix_no_tuning_job_name_can_match_is_a_synth_warning_naming_it():
    from aws_cdk.assertions import Annotations, Match

    stack = TrainingGateStack(
        App(),
        "LongPrefix",
        config=load_config({**read_context(), "job_name_prefixes": ["churn-", "x" * 33], "required_job_tag": None}),
    )
    found = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("longer than 32 characters"))
    assert len(found) == 1
    text = str(found[0].entry.data)
    assert "x" * 33 in text and "churn-," not in text and "judged on their own" in text
