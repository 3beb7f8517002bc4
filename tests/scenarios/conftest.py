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
