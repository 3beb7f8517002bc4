"""The README's Deploy section works on the first try: every command in it either runs offline, here or in
the test named for it, or is marked as needing AWS or Docker; marked `aws` commands name real operations
and parameters; every `-c` configuration in it is valid."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest

from infra.app import STACKS_KEY, check_distinct_gates, context_overrides, gate_stacks
from infra.config import CONTEXT_KEY, load_config, read_context
from infra.stack import STACK_NAME

REPO = Path(__file__).resolve().parents[2]
NEEDS = re.compile(r"#\s*needs (AWS and Docker|AWS|Docker)\b")
# Offline commands run by another test, which runs exactly this command's code path.
RUN_ELSEWHERE = {
    ".venv/bin/training-gate demo": (
        "tests.cli.test_cli",
        "test_demo_runs_four_jobs_and_exits_zero_when_all_end_as_designed",
        'cli.main(["demo"',
    ),
    "npx cdk synth -c": (
        "tests.infra.test_synthesis",
        "test_the_pinned_cdk_cli_synthesizes_as_cdk_deploy_does_with_a_json_string_merged_into_cdk_json",
        '"synth"',
    ),
    # The same synthesis: the CLI with an account and a region, as `cdk deploy` runs the app.
    "AWS_REGION=eu-central-1 CDK_DEFAULT_ACCOUNT=123456789012 npx cdk synth": (
        "tests.infra.test_synthesis",
        "test_the_pinned_cdk_cli_synthesizes_as_cdk_deploy_does_with_a_json_string_merged_into_cdk_json",
        'env=_cli_environment("eu-central-1")',
    ),
    "python scripts/lock_inspector_image.py --base-digests --dry-run": (
        "tests.infra.test_image_locks",
        "test_the_refresh_dry_run_names_the_registry_command_per_base_and_writes_nothing",
        '"--base-digests", "--dry-run"',
    ),
}
# Run here: the app synthesizes with no credentials and no Docker.
RUN_HERE = ".venv/bin/python app.py"
# The AWS CLI's own options, not the operation's parameters.
AWS_GLOBAL_OPTIONS = {"query", "output", "region", "profile"}


def deploy_section() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index("\n## Deploy\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def commands() -> list[str]:
    """Each line of the section's bash blocks, indented or not, without blank and comment-only lines."""
    found, inside = [], False
    for line in deploy_section().splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            inside = stripped == "```bash" if not inside else False
            continue
        if inside and stripped and not stripped.startswith("#"):
            found.append(stripped)
    return found


def without_comment(command: str) -> str:
    return command.split("   #", 1)[0].strip()


def test_the_section_has_the_steps_of_a_first_deployment():
    section = deploy_section()
    for step in ("Bootstrap", "buildx", "Apple Silicon", "Confirm the email subscriptions", "first tagged job"):
        assert step in section, step
    assert "When nothing happens" in section
    assert len(commands()) >= 8


def test_every_command_runs_offline_in_a_test_or_is_marked_as_needing_aws_or_docker():
    for command in commands():
        if NEEDS.search(command):
            continue
        plain = without_comment(command)
        if plain == RUN_HERE:
            continue
        matches = [key for key in RUN_ELSEWHERE if plain.startswith(key)]
        assert matches, f"not run by any test and not marked '# needs AWS' / '# needs Docker': {command}"
        module, name, marker = RUN_ELSEWHERE[matches[0]]
        test = getattr(importlib.import_module(module), name)
        assert marker in inspect.getsource(test), f"{module}.{name} no longer runs {plain}"


def test_the_app_synthesizes_as_the_section_runs_it(tmp_path: Path):
    assert RUN_HERE in commands()
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads((tmp_path / f"{STACK_NAME}.template.json").read_text())
    assert any(r["Type"] == "AWS::StepFunctions::StateMachine" for r in template["Resources"].values())


@pytest.mark.parametrize("command", [c for c in commands() if f"-c '{CONTEXT_KEY}=" in c])
def test_every_context_override_in_the_section_is_a_valid_configuration(command: str):
    (value,) = [a.split("=", 1)[1] for a in shlex.split(without_comment(command)) if a.startswith(f"{CONTEXT_KEY}=")]
    load_config({**read_context(), **context_overrides(value)})


def test_the_two_gates_example_declares_two_valid_gates_that_judge_different_jobs():
    (command,) = [c for c in commands() if f"-c '{STACKS_KEY}=" in c]
    (value,) = [a.split("=", 1)[1] for a in shlex.split(without_comment(command)) if a.startswith(f"{STACKS_KEY}=")]
    stacks = gate_stacks(value)
    assert len(stacks) == 2 and shlex.split(command)[3] in stacks
    check_distinct_gates({name: load_config({**read_context(), **settings}) for name, settings in stacks.items()})


def test_the_prefix_example_gates_by_name_alone_as_the_section_says():
    (command,) = [c for c in commands() if f"-c '{CONTEXT_KEY}=" in c and "job_name_prefixes" in c]
    (value,) = [a.split("=", 1)[1] for a in shlex.split(without_comment(command)) if a.startswith(f"{CONTEXT_KEY}=")]
    config = load_config({**read_context(), **context_overrides(value)})
    assert config.job_tag is None and config.job_name_prefixes == ["churn-"]


def _aws_commands() -> list[list[str]]:
    return [shlex.split(without_comment(c)) for c in commands() if c.startswith("aws ")]


@pytest.mark.parametrize("argv", _aws_commands(), ids=lambda argv: " ".join(argv[1:3]))
def test_every_aws_cli_command_names_a_real_operation_and_its_parameters(argv: list[str]):
    service, operation = argv[1], argv[2]
    model = botocore.session.get_session().get_service_model(service)
    names = {re.sub(r"(?<!^)(?=[A-Z])", "-", n).lower(): n for n in model.operation_names}
    assert operation in names, f"aws {service} has no {operation}"
    members = {m.lower() for m in model.operation_model(names[operation]).input_shape.members}
    for option in (a[2:] for a in argv[3:] if a.startswith("--")):
        if option in AWS_GLOBAL_OPTIONS:
            continue
        assert option.replace("-", "") in members, f"aws {service} {operation} has no --{option}"


def test_the_tagging_examples_in_the_quick_start_use_the_configured_tag():
    readme = (REPO / "README.md").read_text()
    tag = load_config(read_context()).job_tag
    assert tag is not None
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    tagged = [b for b in blocks if f'{{"Key": "{tag.key}", "Value": "{tag.value}"}}' in b]
    assert len(tagged) == 2, "the SageMaker Python SDK and the boto3 examples"
    for block in tagged:
        ast.parse(block)  # each example is Python as written
