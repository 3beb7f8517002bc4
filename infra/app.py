"""Builds the CDK app from cdk.json context (or overrides), with cdk-nag run at synth."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import CONTEXT_KEY, ConfigError, load_config, read_context
from infra.stack import STACK_NAME, TrainingGateStack


def context_overrides(value: Any) -> dict[str, Any]:
    """The `training-gate` context the CDK CLI hands the app, as an object.

    `cdk synth -c training-gate='{...}'` passes the JSON as a string (the CLI never parses -c values);
    cdk.json and cdk.context.json pass an object. Either must be an object of gate settings."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"-c {CONTEXT_KEY}=... is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"-c {CONTEXT_KEY}=... must be a JSON object of settings, got {type(value).__name__}")
    return value


def build_app(outdir: str | Path | None = None, overrides: dict[str, Any] | None = None) -> App:
    """The app as `cdk synth` and `python app.py` build it. Context given to the CDK CLI is merged into
    cdk.json's key by key (so `-c` changes only the keys it names), and `overrides` (used by the local
    engine) win over both. The merged result is validated as a whole, like cdk.json alone."""
    app = App(outdir=str(outdir) if outdir else None)
    cli = context_overrides(app.node.try_get_context(CONTEXT_KEY))
    config = load_config({**read_context(), **cli, **(overrides or {})})
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT"):
        env = Environment(account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ.get("CDK_DEFAULT_REGION"))
    TrainingGateStack(app, STACK_NAME, config=config, env=env)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
