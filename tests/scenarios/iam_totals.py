"""Every call the gate's roles made in the scenario modules, checked against the synthesized policies
(training_gate_cli/local_engine/iam.py): added up across xdist workers and printed at the end of the run
(the hooks are in tests/conftest.py, which the xdist controller loads)."""

from __future__ import annotations

import json
from typing import Any

IAM_TOTALS: dict[str, Any] = {"calls": 0, "denied": 0, "checks": 0, "denied_calls": []}
WORKER_OUTPUT_KEY = "training_gate_iam"


def add(summary: dict[str, Any]) -> None:
    IAM_TOTALS["calls"] += summary["calls"]
    IAM_TOTALS["denied"] += summary["denied"]
    IAM_TOTALS["checks"] += summary["checks"]
    IAM_TOTALS["denied_calls"] = sorted(set(IAM_TOTALS["denied_calls"]) | set(summary["denied_calls"]))


def dumps() -> str:
    return json.dumps(IAM_TOTALS)


def lines() -> list[str]:
    if not IAM_TOTALS["calls"]:
        return []
    found = [
        f"IAM: {IAM_TOTALS['calls']} calls by the gate's roles checked against the synthesized policies "
        f"({IAM_TOTALS['checks']} permissions, KMS keys included), {IAM_TOTALS['denied']} denied"
    ]
    return found + [f"  denied: {call}" for call in IAM_TOTALS["denied_calls"]]
