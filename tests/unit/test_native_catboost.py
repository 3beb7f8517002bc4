"""CatBoost models are recognised by their magic and reported as not validated; nothing parses them here."""

from __future__ import annotations

import pytest

from tests.support.native_fixtures import data, fixtures
from training_gate.inspector.native.catboost_format import NOT_VALIDATED, is_catboost, recognise_catboost
from training_gate.inspector.native.errors import NativeRefusal, Reason

CATBOOST = fixtures("catboost")


@pytest.mark.parametrize("fixture", CATBOOST, ids=[f["path"] for f in CATBOOST])
def test_every_fixture_is_recognised_and_said_to_be_unvalidated(fixture):
    found = recognise_catboost(data(fixture))
    estimator = {"estimator": "CatBoostClassifier" if fixture["family"] in ("binary", "multiclass") else None}
    if fixture["format"] == "pickle":  # a pickled estimator, read as data for the .cbm bytes it holds
        estimator["estimator"] = estimator["estimator"] or {"regression": "CatBoostRegressor"}.get(
            fixture["family"], "CatBoostRanker"
        )
        assert found.blob.startswith(b"CBM1")
    else:
        estimator = {}
    assert found.describe() == {
        "framework": "catboost",
        "format": fixture["format"],
        **estimator,
        "bytes_validated": False,
        "note": NOT_VALIDATED,
    }


def test_the_zoo_covers_the_four_families():
    assert {f["family"] for f in CATBOOST} == {"binary", "multiclass", "regression", "ranking"}


def test_other_bytes_are_not_catboost():
    assert not is_catboost(data(fixtures("xgboost")[0]))
    with pytest.raises(NativeRefusal) as caught:
        recognise_catboost(b"PK\x03\x04")
    assert caught.value.reason == Reason.NOT_THIS_FORMAT
