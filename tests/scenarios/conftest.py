from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scenarios import iam_totals
from training_gate_cli.artifacts import iris_model_joblib, pack_model_tar_gz
from training_gate_cli.local_engine import LocalGate


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
    iam_totals.add(summary)
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
