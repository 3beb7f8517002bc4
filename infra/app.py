"""Builds the CDK app from cdk.json context (or overrides), with cdk-nag run at synth.

One gate by default, the stack `TrainingGateStack`. Several gates in one account (staging and production,
say) are declared under the context key `training-gate-stacks`: stack name -> the settings that differ from
`training-gate`. Each gets its own names (infra/names.py), and synthesis refuses two gates that would both
judge the same job."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import CONTEXT_KEY, ConfigError, GateConfig, load_config, read_context
from infra.names import GateNames
from infra.stack import STACK_NAME, TrainingGateStack

STACKS_KEY = "training-gate-stacks"
# CloudFormation stack names: a letter, then letters, digits and hyphens, at most 128 characters.
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


def context_overrides(value: Any, key: str = CONTEXT_KEY, what: str = "settings") -> dict[str, Any]:
    """The context the CDK CLI hands the app under `key`, as an object.

    `cdk synth -c training-gate='{...}'` passes the JSON as a string (the CLI never parses -c values);
    cdk.json and cdk.context.json pass an object. Either must be an object."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"-c {key}=... is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"-c {key}=... must be a JSON object of {what}, got {type(value).__name__}")
    return value


def gate_stacks(value: Any) -> dict[str, dict[str, Any]]:
    """`training-gate-stacks`: stack name -> its settings; one `TrainingGateStack` when it is absent."""
    stacks = context_overrides(value, STACKS_KEY, "stack names and their settings")
    if not stacks:
        return {STACK_NAME: {}}
    for name, settings in stacks.items():
        if not _STACK_NAME.fullmatch(name):
            raise ConfigError(
                f"{STACKS_KEY}: {name!r} is not a CloudFormation stack name (a letter, then letters, "
                "digits and hyphens, at most 128 characters)"
            )
        if not isinstance(settings, dict):
            raise ConfigError(f"{STACKS_KEY}.{name} must be an object of gate settings")
    return stacks


def _scope(config: GateConfig) -> str:
    if config.gate_all_jobs:
        return "every training job"
    parts = []
    if config.job_tag:
        parts.append(f"jobs tagged {config.job_tag.key}={config.job_tag.value}")
    if config.job_name_prefixes:
        parts.append(f"jobs named {' or '.join(p + '*' for p in config.job_name_prefixes)}")
    return " and ".join(parts)


def scopes_overlap(a: GateConfig, b: GateConfig) -> bool:
    """Whether one training job could start both gates: the start rules match on the job's tags and name."""
    if a.gate_all_jobs or b.gate_all_jobs:
        return True
    if a.job_tag and b.job_tag and a.job_tag.key == b.job_tag.key and a.job_tag.value != b.job_tag.value:
        return False  # a job carries one value per tag key
    prefixes_a, prefixes_b = a.job_name_prefixes, b.job_name_prefixes
    if prefixes_a and prefixes_b:
        return any(x.startswith(y) or y.startswith(x) for x in prefixes_a for y in prefixes_b)
    return True


def check_distinct_gates(configs: dict[str, GateConfig]) -> None:
    """Two gates in one account that would judge the same job would both decide, and both register it."""
    names = list(configs)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if scopes_overlap(configs[first], configs[second]):
                raise ConfigError(
                    f"{STACKS_KEY}: {first} judges {_scope(configs[first])} and {second} judges "
                    f"{_scope(configs[second])}: a job could start both, and each would decide and register it. "
                    "Give each its own required_job_tag value (training-gate=staging, training-gate=production) "
                    "or job_name_prefixes that do not overlap"
                )
            # The prefixes as each gate resolves them: a stack's derived prefix can equal another's explicit one.
            prefix = configs[first].policy_parameter_prefix or GateNames(first).policy_parameter_prefix
            if prefix == (configs[second].policy_parameter_prefix or GateNames(second).policy_parameter_prefix):
                raise ConfigError(f"{STACKS_KEY}: {first} and {second} would read the policies under {prefix}")


def _environment() -> Environment | None:
    """The environment the CDK CLI resolved: `cdk deploy` sets CDK_DEFAULT_ACCOUNT whenever credentials
    resolve (and always CDK_DEFAULT_REGION), so the stack it deploys is environment-specific."""
    if os.environ.get("CDK_DEFAULT_ACCOUNT"):
        return Environment(account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ.get("CDK_DEFAULT_REGION"))
    return None


def build_app(outdir: str | Path | None = None, overrides: dict[str, Any] | None = None) -> App:
    """The app as `cdk synth` and `python app.py` build it. Context given to the CDK CLI is merged into
    cdk.json's key by key (so `-c` changes only the keys it names), each stack's own settings over that, and
    `overrides` (used by the local engine) win over all. Each gate is validated as a whole, like cdk.json alone."""
    app = App(outdir=str(outdir) if outdir else None)
    base = {**read_context(), **context_overrides(app.node.try_get_context(CONTEXT_KEY))}
    # A -c value is a JSON string; cdk.json's object is read from the file itself, with its nulls.
    given = app.node.try_get_context(STACKS_KEY)
    stacks = gate_stacks(given if isinstance(given, str) else read_context(key=STACKS_KEY) or None)
    configs = {}
    for name, settings in stacks.items():
        try:
            configs[name] = load_config({**base, **settings, **(overrides or {})})
        except ConfigError as exc:
            raise ConfigError(f"stack {name}: {exc}" if len(stacks) > 1 else str(exc)) from exc
    check_distinct_gates(configs)
    env = _environment()
    for name, config in configs.items():
        TrainingGateStack(app, name, config=config, env=env)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
