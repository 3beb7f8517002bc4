"""Synthesize the gate once and reuse the template while its sources are unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.config import REPO_ROOT
from infra.stack import STACK_NAME

LOCAL_OUTDIR = REPO_ROOT / "cdk.out.local"
# The local engine polls without waiting: the emulated job advances on each describe call.
LOCAL_OVERRIDES: dict[str, Any] = {"poll_interval_seconds": 0}
_SOURCES = ("app.py", "cdk.json", "infra", "statemachine", "lambdas/training_gate/handlers")


def _newest_source_mtime() -> float:
    newest = 0.0
    for name in _SOURCES:
        path = REPO_ROOT / name
        files = [path] if path.is_file() else list(path.rglob("*.py")) + list(path.rglob("*.json"))
        newest = max([newest, *(f.stat().st_mtime for f in files)])
    return newest


def template_path(outdir: Path = LOCAL_OUTDIR) -> Path:
    """The gate the local engine runs: TrainingGateStack, or the first of `training-gate-stacks`."""
    default = outdir / f"{STACK_NAME}.template.json"
    others = sorted(outdir.glob("*.template.json")) if not default.exists() else []
    return others[0] if others else default


def synthesize(outdir: Path = LOCAL_OUTDIR, overrides: dict[str, Any] | None = None, force: bool = False) -> Path:
    """Write the CloudFormation template with the local overrides; reuse it while it is newer than
    every source (only when no extra overrides are asked for)."""
    path = template_path(outdir)
    if not force and overrides is None and path.exists() and path.stat().st_mtime >= _newest_source_mtime():
        return path
    from infra.app import build_app

    build_app(outdir=outdir, overrides={**LOCAL_OVERRIDES, **(overrides or {})}).synth()
    return path
