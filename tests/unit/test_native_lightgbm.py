"""LightGBM text models and pickled Boosters: parsed and validated by the gate before LightGBM's C loader."""

from __future__ import annotations

import itertools
import os
import pickle
import re

import lightgbm
import numpy as np
import pytest

from tests.support.native_fixtures import data, fixtures, flat, probe
from training_gate.inspector.native.errors import NativeRefusal, Reason
from training_gate.inspector.native.lightgbm_text import from_booster_state, predict, predict_raw, read_lightgbm

LIGHTGBM = fixtures("lightgbm")
TEXT = [f for f in LIGHTGBM if f["format"] == "text"]


def refused(payload: bytes, reason: Reason) -> NativeRefusal:
    with pytest.raises(NativeRefusal) as caught:
        read_lightgbm(payload)
    assert caught.value.reason == reason, caught.value
    return caught.value


def test_the_zoo_covers_text_and_pickle_for_every_objective_family():
    seen = {(f["format"], f["family"]) for f in LIGHTGBM}
    assert {
        (fmt, family) for fmt in ("text", "pickle") for family in ("binary", "multiclass", "regression", "ranking")
    } <= seen
    assert {f["library_version"] for f in LIGHTGBM} == {"3.3.5", "4.6.0", "4.7.0"}


@pytest.mark.parametrize("fixture", LIGHTGBM, ids=[f["path"] for f in LIGHTGBM])
def test_every_fixture_is_read_validated_and_predicts_like_lightgbm(fixture):
    model = read_lightgbm(data(fixture))

    assert model.source_format == fixture["format"]
    assert model.objective == fixture["objective"]
    assert model.num_feature == fixture["num_feature"]
    np.testing.assert_allclose(flat(predict(model, probe())), fixture["predictions"], atol=1e-8)
    np.testing.assert_allclose(flat(predict_raw(model, probe())), fixture["margins"], atol=1e-8)


@pytest.mark.parametrize("fixture", TEXT, ids=[f["path"] for f in TEXT])
def test_lightgbm_itself_agrees_on_what_the_gate_validated(fixture):
    text = data(fixture)
    read_lightgbm(text)
    booster = lightgbm.Booster(model_str=text.decode())
    np.testing.assert_allclose(booster.predict(np.array(probe())), fixture["predictions"], atol=1e-8)


def test_a_pickled_booster_state_is_read_as_data():
    fixture = next(f for f in TEXT if f["path"] == "lightgbm/4.6.0/binary.txt")
    model = from_booster_state({"_handle": data(fixture).decode(), "best_iteration": 0})
    assert model.source_format == "pickle"
    np.testing.assert_allclose(flat(predict(model, probe())), fixture["predictions"], atol=1e-8)


# ---------------------------------------------------------------------------------------------------


def _text(case: str = "binary", version: str = "4.6.0") -> str:
    return data(next(f for f in TEXT if f["path"] == f"lightgbm/{version}/{case}.txt")).decode()


def _replace_in_tree(text: str, key: str, change, tree: int = 0) -> bytes:
    start = text.index(f"Tree={tree}\n")
    line_start = text.index(f"\n{key}=", start) + 1
    line_end = text.index("\n", line_start)
    values = text[line_start + len(key) + 1 : line_end].split(" ")
    changed = change(values)
    # Keep tree_sizes true to the blocks, so each test meets the check it is about.
    body = text[:line_start] + f"{key}={' '.join(changed)}" + text[line_end:]
    return _fix_sizes(body).encode()


def _fix_sizes(text: str) -> str:
    first = text.index("Tree=0\n")
    end = text.index("end of trees")
    starts = [m.start() for m in re.finditer(r"^Tree=\d+$", text[:end], flags=re.MULTILINE)] + [end]
    sizes = [len(text[a:b].encode()) for a, b in itertools.pairwise(starts)]
    assert starts[0] == first
    return re.sub(r"^tree_sizes=.*$", "tree_sizes=" + " ".join(map(str, sizes)), text, count=1, flags=re.MULTILINE)


def _set(index: int, value: str):
    def change(values: list[str]) -> list[str]:
        values[index] = value
        return values

    return change


def test_the_helper_keeps_a_benign_model_benign():
    assert read_lightgbm(_replace_in_tree(_text(), "leaf_value", lambda v: v))


@pytest.mark.parametrize(
    ("key", "change", "reason"),
    [
        ("left_child", _set(0, "99"), Reason.INCONSISTENT),
        ("right_child", _set(0, "-99"), Reason.INCONSISTENT),
        ("left_child", _set(1, "0"), Reason.NOT_A_TREE),
        ("split_feature", _set(0, "5"), Reason.FEATURE_OUT_OF_RANGE),
        ("split_feature", _set(0, "-1"), Reason.FEATURE_OUT_OF_RANGE),
        ("leaf_value", _set(0, "nan"), Reason.NOT_FINITE),
        ("threshold", _set(0, "inf"), Reason.NOT_FINITE),
        ("leaf_value", lambda v: v[:-1], Reason.INCONSISTENT),
        ("decision_type", _set(0, "12"), Reason.MALFORMED),
        ("decision_type", _set(0, "1"), Reason.CATEGORY_OUT_OF_RANGE),
        ("num_leaves", lambda v: ["1000000000"], Reason.INCONSISTENT),
    ],
    ids=[
        "child index past the tree",
        "leaf index past the leaves",
        "cycle to the root",
        "split feature past max_feature_idx",
        "negative split feature",
        "NaN leaf",
        "infinite threshold",
        "a leaf value missing",
        "missing type 3",
        "categorical split without categories",
        "a billion leaves",
    ],
)
def test_hostile_trees_are_refused_by_name(key, change, reason):
    refused(_replace_in_tree(_text(), key, change), reason)


def test_a_categorical_threshold_outside_cat_boundaries_is_refused():
    text = _text("binary-categorical")
    tree = next(i for i in range(3) if "num_cat=0" not in text.split(f"Tree={i}\n")[1].split("\n\n")[0])
    block = text.split(f"Tree={tree}\n")[1].split("\n\n")[0]
    decisions = re.search(r"^decision_type=(.*)$", block, flags=re.MULTILINE).group(1).split(" ")
    node = next(i for i, d in enumerate(decisions) if int(d) & 1)
    refused(_replace_in_tree(text, "threshold", _set(node, "7"), tree), Reason.CATEGORY_OUT_OF_RANGE)
    refused(_replace_in_tree(text, "cat_boundaries", lambda v: ["0", "5", *v[2:]], tree), Reason.CATEGORY_OUT_OF_RANGE)


def test_tree_sizes_pointing_outside_the_trees_are_refused():
    text = _text()
    sizes = re.search(r"^tree_sizes=(.*)$", text, flags=re.MULTILINE).group(1)
    hostile = text.replace(f"tree_sizes={sizes}", "tree_sizes=100000000 1 1", 1)
    refused(hostile.encode(), Reason.LENGTH_TOO_LARGE)


def test_zero_trees_per_iteration_is_refused_not_divided_by():
    refused(_text().replace("num_tree_per_iteration=1", "num_tree_per_iteration=0", 1).encode(), Reason.INCONSISTENT)


def test_max_feature_idx_disagreeing_with_the_names_is_refused():
    refused(_text().replace("max_feature_idx=4", "max_feature_idx=9", 1).encode(), Reason.INCONSISTENT)


def test_a_nul_byte_is_refused():
    text = _text()
    refused(text.replace("Tree=1", "Tree=1\x00", 1).encode(), Reason.MALFORMED)


def test_an_unknown_objective_is_refused():
    refused(_text().replace("objective=binary sigmoid:1", "objective=evil", 1).encode(), Reason.UNKNOWN_OBJECTIVE)


def test_a_tree_block_longer_than_lightgbm_reads_is_refused():
    text = _text()
    extra = "".join(f"extra_{i}=0\n" for i in range(10))
    refused(_fix_sizes(text.replace("shrinkage=1\n", "shrinkage=1\n" + extra, 1)).encode(), Reason.MALFORMED)


@pytest.mark.parametrize("cut", [3, 50, 400, 900, -300, -5])
def test_truncated_text_is_refused(cut):
    with pytest.raises(NativeRefusal) as caught:
        read_lightgbm(_text().encode()[:cut])
    assert caught.value.reason in (Reason.TRUNCATED, Reason.MALFORMED, Reason.NOT_THIS_FORMAT, Reason.INCONSISTENT)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_a_pickle_payload_is_refused_before_anything_runs():
    error = refused(pickle.dumps(_Payload(), protocol=4), Reason.PICKLE_GLOBAL_REFUSED)
    assert "system" in str(error)


def test_a_pickled_booster_with_hostile_text_is_refused():
    hostile = _replace_in_tree(_text(), "left_child", _set(0, "99")).decode()
    state = {"_handle": hostile}
    with pytest.raises(NativeRefusal) as caught:
        from_booster_state(state)
    assert caught.value.reason == Reason.INCONSISTENT
