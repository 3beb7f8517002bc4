"""The native parsers attacked with random bytes: flips, cuts and splices give a model or a named refusal,
never another exception; a mutated tree the validator accepts is one the real library loads and predicts."""

from __future__ import annotations

import json

import lightgbm
import numpy as np
import xgboost
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.native_fixtures import NATIVE, probe
from training_gate.inspector.native import ubjson
from training_gate.inspector.native.api import recognise
from training_gate.inspector.native.errors import NativeRefusal
from training_gate.inspector.native.lightgbm_text import read_lightgbm
from training_gate.inspector.native.onnx_wire import read_onnx_wire
from training_gate.inspector.native.xgboost_convert import to_json
from training_gate.inspector.native.xgboost_format import read_xgboost
from training_gate.inspector.native.xgboost_model import predict

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = {
    "xgboost 0.90 old binary": ("xgboost/0.90/binary.model", read_xgboost),
    "xgboost 1.7.6 old binary": ("xgboost/1.7.6/multiclass.model", read_xgboost),
    "xgboost 0.90 pickle": ("xgboost/0.90/binary.pkl", read_xgboost),
    "xgboost 1.2.1 snapshot pickle": ("xgboost/1.2.1/binary.pkl", read_xgboost),
    "xgboost 3.0.5 ubjson": ("xgboost/3.0.5/binary.ubj", read_xgboost),
    "xgboost 3.0.5 json": ("xgboost/3.0.5/binary.json", read_xgboost),
    "lightgbm text": ("lightgbm/4.6.0/binary-categorical.txt", read_lightgbm),
    "lightgbm pickle": ("lightgbm/4.6.0/binary.pkl", read_lightgbm),
    "onnx skl2onnx": ("onnx/binary-logistic-zipmap.onnx", read_onnx_wire),
    "onnx by hand": ("onnx/binary-by-hand.onnx", read_onnx_wire),
}


def _seed(name: str) -> bytes:
    return (NATIVE / SEEDS[name][0]).read_bytes()


@st.composite
def mutated(draw: st.DrawFn, seed_names: list[str]) -> tuple[str, bytes]:
    name = draw(st.sampled_from(seed_names))
    data = bytearray(_seed(name))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "splice", "insert"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, ord("-"), ord("9")]))
        elif kind == "cut":
            data = data[:position]
        elif kind == "splice":
            end = draw(st.integers(position, len(data)))
            data = data[:position] + data[end:]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return name, bytes(data)


def _parses_or_refuses(name: str, data: bytes) -> object | None:
    try:
        return SEEDS[name][1](data)
    except NativeRefusal:
        return None


@FUZZ
@given(mutated(list(SEEDS)))
def test_random_byte_damage_gives_a_model_or_a_named_refusal(case):
    name, data = case
    _parses_or_refuses(name, data)


@FUZZ
@given(mutated(list(SEEDS)))
def test_recognition_never_raises(case):
    _, data = case
    recognise(data[:512], "model")


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes_give_a_named_refusal(data):
    for reader in (read_xgboost, read_lightgbm, read_onnx_wire, ubjson.loads):
        try:
            reader(data)
        except NativeRefusal:
            pass


# ---------------------------------------------------------------------------------------------------
# Structure-aware: damage only the indices C code follows. Whatever the validator accepts, the real
# library must load and predict on (the property the validator exists for).

_TREE_FIELDS = ["left_children", "right_children", "parents", "split_indices"]


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 8), st.sampled_from(_TREE_FIELDS), st.integers(0, 40), st.integers(-3, 40)),
        min_size=1,
        max_size=4,
    )
)
def test_xgboost_trees_the_validator_accepts_are_safe_for_libxgboost(edits):
    document = json.loads((NATIVE / "xgboost/3.0.5/multiclass.json").read_text())
    trees = document["learner"]["gradient_booster"]["model"]["trees"]
    for tree_index, field, node, value in edits:
        values = trees[tree_index][field]
        values[node % len(values)] = value
    try:
        model = read_xgboost(json.dumps(document).encode())
    except NativeRefusal:
        return
    booster = xgboost.Booster()
    booster.load_model(bytearray(to_json(model)))
    got = booster.predict(xgboost.DMatrix(np.array(probe(), dtype=np.float32)))
    np.testing.assert_allclose(got, predict(model, probe()), atol=2e-5)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.sampled_from(["left_child", "right_child", "split_feature", "decision_type"]),
            st.integers(0, 4),
            st.integers(-7, 7),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_lightgbm_trees_the_validator_accepts_are_safe_for_lightgbm(edits):
    text = (NATIVE / "lightgbm/4.6.0/binary.txt").read_text()
    blocks = text.split("Tree=")
    for tree_index, key, node, value in edits:
        lines = blocks[tree_index + 1].split("\n")
        for number, line in enumerate(lines):
            if line.startswith(f"{key}="):
                values = line[len(key) + 1 :].split(" ")
                values[node % len(values)] = str(value)
                lines[number] = f"{key}=" + " ".join(values)
        blocks[tree_index + 1] = "\n".join(lines)
    # Same lengths per value keep tree_sizes right most of the time; a wrong one is refused by name.
    hostile = "Tree=".join(blocks).encode()
    try:
        model = read_lightgbm(hostile)
    except NativeRefusal:
        return
    booster = lightgbm.Booster(model_str=hostile.decode())
    booster.predict(np.array(probe()))
    assert model.trees
