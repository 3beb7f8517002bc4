"""Builds the CDK app from cdk.json context (or overrides), with cdk-nag run at synth."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import CONTEXT_KEY, load_config, read_context
from infra.stack import STACK_NAME, TrainingGateStack


def build_app(outdir: str | Path | None = None, overrides: dict[str, Any] | None = None) -> App:
    """The app as `cdk synth` and `python app.py` build it. Context given to the CDK CLI wins over
    cdk.json (so `-c` works), and `overrides` (used by the local engine) win over both."""
    app = App(outdir=str(outdir) if outdir else None)
    raw = {**read_context(), **(app.node.try_get_context(CONTEXT_KEY) or {}), **(overrides or {})}
    config = load_config(raw)
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT"):
        env = Environment(account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ.get("CDK_DEFAULT_REGION"))
    TrainingGateStack(app, STACK_NAME, config=config, env=env)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
