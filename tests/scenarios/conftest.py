from __future__ import annotations

from collections.abc import Iterator

import pytest

from training_gate_cli.emulated import iris_model_joblib, pack_model_tar_gz
from training_gate_cli.local_engine import LocalGate


@pytest.fixture(scope="session")
def iris_artifact() -> bytes:
    return pack_model_tar_gz({"model.joblib": iris_model_joblib()})


@pytest.fixture
def gate(template: dict) -> Iterator[LocalGate]:
    with LocalGate(template) as local:
        yield local


@pytest.fixture(autouse=True)
def fresh_parameter_cache() -> Iterator[None]:
    """Stored group policies are cached for minutes in a warm function; each test starts cold."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    yield
    parameters.clear_caches()
