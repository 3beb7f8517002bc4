from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from training_gate_cli.artifacts import iris_model_joblib, pack_model_tar_gz
from training_gate_cli.local_engine import LocalGate

# Every call the gate's roles made in this process's scenario modules, checked against the synthesized
# policies (training_gate_cli/local_engine/iam.py): printed at the end of the run.
IAM_TOTALS: dict[str, Any] = {"calls": 0, "denied": 0, "denied_calls": []}


def _add(totals: dict[str, Any], summary: dict[str, Any]) -> None:
    totals["calls"] += summary["calls"]
    totals["denied"] += summary["denied"]
    totals["denied_calls"] = sorted(set(totals["denied_calls"]) | set(summary["denied_calls"]))


@pytest.fixture(scope="session")
def iris_artifact() -> bytes:
    return pack_model_tar_gz({"model.joblib": iris_model_joblib()})


@pytest.fixture(scope="module")
def account(template: dict, synthesized) -> Iterator[LocalGate]:
    """One emulated account per module: setting it up costs more than most scenarios. Every handler runs
    as its function's role and every task as the state machine's, as the template grants them."""
    with LocalGate(template, retry_time_scale=0.001, assets=synthesized.parent) as local:
        yield local
    assert local.iam is not None
    summary = local.iam.summary()
    _add(IAM_TOTALS, summary)
    # A refused call is a failure on AWS even where the code recovers from it (a fallback, a retry).
    assert not summary["denied_calls"], f"calls the synthesized roles do not allow: {summary['denied_calls']}"


@pytest.fixture
def gate(account: LocalGate) -> Iterator[LocalGate]:
    """The module's account, with what earlier tests left (decisions, packages, messages) removed."""
    account.reset()
    yield account


@pytest.fixture(autouse=True)
def fresh_parameter_cache() -> Iterator[None]:
    """Stored group policies are cached for minutes in a warm function; each test starts cold."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    yield
    parameters.clear_caches()


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller adds up the workers' totals
        workeroutput["training_gate_iam"] = json.dumps(IAM_TOTALS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    output = getattr(node, "workeroutput", {}).get("training_gate_iam")
    if output:
        _add(IAM_TOTALS, json.loads(output))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if IAM_TOTALS["calls"]:
        terminalreporter.write_line(
            f"IAM: {IAM_TOTALS['calls']} calls by the gate's roles checked against the synthesized policies, "
            f"{IAM_TOTALS['denied']} denied"
        )
        for call in IAM_TOTALS["denied_calls"]:
            terminalreporter.write_line(f"  denied: {call}")
