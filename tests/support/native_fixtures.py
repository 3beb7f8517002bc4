"""The native model fixtures (tests/fixtures/native, written by scripts/make_native_fixtures.py)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

NATIVE = Path(__file__).resolve().parent.parent / "fixtures" / "native"


@cache
def manifest() -> dict[str, Any]:
    return json.loads((NATIVE / "manifest.json").read_text())


def fixtures(framework: str) -> list[dict[str, Any]]:
    """The framework's own formats (what its parser reads); the pickled scikit-learn wrappers are `wrappers`."""
    return [f for f in manifest()["fixtures"] if f["framework"] == framework and not f["format"].startswith("sklearn-")]


def wrappers(framework: str) -> list[dict[str, Any]]:
    """XGBClassifier, LGBMRanker...: pickled and dumped with joblib by every supported version."""
    return [f for f in manifest()["fixtures"] if f["framework"] == framework and f["format"].startswith("sklearn-")]


def probe(missing: float = float("nan")) -> list[list[float]]:
    return [[missing if v is None else v for v in row] for row in manifest()["probe"]]


def data(fixture: dict[str, Any]) -> bytes:
    return (NATIVE / fixture["path"]).read_bytes()


def flat(rows: list[list[float]]) -> list[Any]:
    """Rows of one value as that value, as the libraries return single-output predictions."""
    return [row[0] if len(row) == 1 else row for row in rows]
