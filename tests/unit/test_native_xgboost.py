"""XGBoost models of every version and format SageMaker writes: read and validated by the gate's own parsers,
predicted by its evaluator, converted to JSON a current xgboost loads; hostile variants refused by name."""

from __future__ import annotations

import json
import math
import os
import pickle
import struct

import numpy as np
import pytest
import xgboost

from tests.support.native_fixtures import data, fixtures, flat, probe
from training_gate.inspector.native import ubjson
from training_gate.inspector.native.errors import NativeRefusal, Reason
from training_gate.inspector.native.xgboost_convert import to_document, to_json
from training_gate.inspector.native.xgboost_format import from_booster_state, read_xgboost
from training_gate.inspector.native.xgboost_model import predict, predict_margin

XGBOOST = fixtures("xgboost")
IDS = [f["path"] for f in XGBOOST]


def refused(payload: bytes, reason: Reason) -> NativeRefusal:
    with pytest.raises(NativeRefusal) as caught:
        read_xgboost(payload)
    assert caught.value.reason == reason, caught.value
    return caught.value


def test_the_zoo_covers_every_format_sagemaker_writes():
    seen = {(f["library_version"], f["format"]) for f in XGBOOST}
    assert ("0.90", "pickle-old-binary") in seen  # built-in 0.90-x
    assert {("1.0.2", "pickle-snapshot"), ("1.2.1", "pickle-snapshot")} <= seen  # built-in 1.0-1.2
    assert {(v, "old-binary") for v in ("1.3.3", "1.5.2", "1.7.6")} <= seen  # built-in 1.3-1.7
    assert ("3.0.5", "ubjson") in seen  # built-in 3.0-5
    assert {f["family"] for f in XGBOOST} >= {"binary", "multiclass", "regression", "ranking"}


@pytest.mark.parametrize("fixture", XGBOOST, ids=IDS)
def test_every_fixture_is_read_validated_and_predicts_like_xgboost(fixture):
    model = read_xgboost(data(fixture))

    assert model.source_format == fixture["format"]
    assert model.objective == fixture["objective"]
    assert model.booster == fixture["booster"]
    assert model.num_feature == fixture["num_feature"]
    np.testing.assert_allclose(flat(predict(model, probe())), fixture["predictions"], atol=2e-5)
    np.testing.assert_allclose(flat(predict_margin(model, probe())), fixture["margins"], atol=2e-5)


@pytest.mark.parametrize("fixture", XGBOOST, ids=IDS)
def test_the_converted_json_loads_in_current_xgboost_with_the_original_predictions(fixture):
    # GIVEN a model written by its own xgboost version (0.90 to 3.2), read and validated by the gate
    model = read_xgboost(data(fixture))

    # WHEN the gate writes it as JSON and the development environment's xgboost loads that
    booster = xgboost.Booster()
    booster.load_model(bytearray(to_json(model)))
    predictions = booster.predict(xgboost.DMatrix(np.array(probe(), dtype=np.float32)))

    # THEN it predicts what the version that trained it predicted
    np.testing.assert_allclose(predictions, fixture["predictions"], atol=2e-5)
    # and the gate's own reader accepts what the gate wrote
    again = read_xgboost(to_json(model))
    np.testing.assert_allclose(flat(predict(again, probe())), fixture["predictions"], atol=2e-5)


def test_xgboost_3_1_and_later_cannot_read_the_old_binary_format_the_converter_replaces():
    # 3.0.5 (the Amazon Linux 2 image's reader) is the last that reads it; the gate gives both the JSON.
    old = next(f for f in XGBOOST if f["format"] == "old-binary" and f["library_version"] == "1.7.6")
    version = tuple(int(part) for part in xgboost.__version__.split(".")[:2])
    if version >= (3, 1):
        with pytest.raises(xgboost.core.XGBoostError):
            xgboost.Booster().load_model(bytearray(data(old)))
    else:
        booster = xgboost.Booster()
        booster.load_model(bytearray(data(old)))
        predictions = booster.predict(xgboost.DMatrix(np.array(probe(), dtype=np.float32)))
        np.testing.assert_allclose(predictions, old["predictions"], atol=2e-5)


def test_per_output_intercepts_of_3_1_and_later_reach_every_reader_as_trees():
    # 3.2's multiclass model keeps one intercept per class; readers before 3.1 would apply the first to all.
    fixture = next(f for f in XGBOOST if f["path"] == "xgboost/3.2.0/multiclass.json")
    model = read_xgboost(data(fixture))
    assert len(set(model.base_score)) == 3
    document = to_document(model)
    params = document["learner"]["learner_model_param"]
    assert not params["base_score"].startswith("[")
    trees = document["learner"]["gradient_booster"]["model"]["trees"]
    assert len(trees) == len(model.trees) + 3 and all(t["tree_param"]["num_nodes"] == "1" for t in trees[-3:])
    again = read_xgboost(json.dumps(document).encode())
    np.testing.assert_allclose(flat(predict(again, probe())), fixture["predictions"], atol=2e-5)


def test_a_pickled_booster_state_is_read_without_setstate():
    # The state a restricted unpickler hands over: plain data, the 0.90 model's bytes under "handle".
    fixture = next(f for f in XGBOOST if f["path"] == "xgboost/0.90/binary.model")
    model = from_booster_state({"handle": bytearray(data(fixture)), "feature_names": None})
    assert model.source_format == "pickle-old-binary"
    np.testing.assert_allclose(flat(predict(model, probe())), fixture["predictions"], atol=2e-5)


def test_a_model_with_unreachable_deleted_nodes_converts_to_a_compact_tree():
    fixture = next(f for f in XGBOOST if f["path"] == "xgboost/1.7.6/binary.json")
    document = json.loads(data(fixture))
    tree = document["learner"]["gradient_booster"]["model"]["trees"][0]
    # Prune node 2's subtree by hand, as XGBoost's pruner does: node 2 becomes a leaf, its children deleted.
    for child in (tree["left_children"][2], tree["right_children"][2]):
        tree["split_indices"][child] = 2147483647
        tree["default_left"][child] = 1
    for child in (tree["left_children"][2], tree["right_children"][2]):
        for grandchild in (tree["left_children"][child], tree["right_children"][child]):
            if grandchild != -1:
                tree["split_indices"][grandchild] = 2147483647
                tree["default_left"][grandchild] = 1
    tree["left_children"][2] = tree["right_children"][2] = -1
    tree["split_conditions"][2] = 0.25
    deleted = sum(1 for i, d in zip(tree["split_indices"], tree["default_left"], strict=True) if i == 2147483647 and d)
    tree["tree_param"]["num_deleted"] = str(deleted)
    model = read_xgboost(json.dumps(document).encode())

    written = to_document(model)["learner"]["gradient_booster"]["model"]["trees"][0]
    booster = xgboost.Booster()
    booster.load_model(bytearray(to_json(model)))

    assert int(written["tree_param"]["num_nodes"]) == len(tree["left_children"]) - deleted
    np.testing.assert_allclose(
        booster.predict(xgboost.DMatrix(np.array(probe(), dtype=np.float32))),
        flat(predict(model, probe())),
        atol=2e-5,
    )


# ---------------------------------------------------------------------------------------------------
# Hostile and broken variants, each refused with a named reason before any C parser.


def _old_binary(version: str = "1.7.6", case: str = "binary") -> bytes:
    return data(next(f for f in XGBOOST if f["path"] == f"xgboost/{version}/{case}.model"))


def _first_node(payload: bytes) -> int:
    """Offset of tree 0's node 0 in an old binary model (layout in xgboost_readers)."""
    offset = 4 if payload[:4] == b"binf" else 0
    offset += 136
    for _ in range(2):  # objective and booster names
        (size,) = struct.unpack_from("<Q", payload, offset)
        offset += 8 + size
    return offset + 160 + 148


def _with_node(payload: bytes, node: int, **fields: float) -> bytes:
    out = bytearray(payload)
    at = _first_node(payload) + 20 * node
    names = ("parent", "left", "right", "sindex", "value")
    values = list(struct.unpack_from("<iiiIf", out, at))
    for name, value in fields.items():
        values[names.index(name)] = value
    struct.pack_into("<iiiIf", out, at, *values)
    return bytes(out)


def _node(payload: bytes, node: int) -> tuple:
    return struct.unpack_from("<iiiIf", payload, _first_node(payload) + 20 * node)


def _first_leaf(payload: bytes) -> int:
    return next(i for i in range(1, 64) if _node(payload, i)[1] == -1)


@pytest.mark.parametrize("version", ["0.90", "1.7.6"])
def test_old_binary_child_index_out_of_range_is_refused(version):
    error = refused(_with_node(_old_binary(version), 0, left=1000), Reason.CHILD_OUT_OF_RANGE)
    assert "tree 0" in str(error)


def test_old_binary_cycle_is_refused():
    payload = _old_binary()
    child = _node(payload, 0)[1]
    refused(_with_node(payload, child, left=0), Reason.NOT_A_TREE)


def test_old_binary_split_feature_beyond_num_feature_is_refused():
    refused(_with_node(_old_binary(), 0, sindex=(1 << 31) | 5), Reason.FEATURE_OUT_OF_RANGE)


def test_old_binary_nan_leaf_is_refused():
    payload = _old_binary()
    refused(_with_node(payload, _first_leaf(payload), value=math.nan), Reason.NOT_FINITE)


def test_old_binary_length_claiming_2_to_40_bytes_is_refused():
    payload = bytearray(_old_binary())
    struct.pack_into("<Q", payload, 4 + 136, 1 << 40)  # the objective name's length
    refused(bytes(payload), Reason.LENGTH_TOO_LARGE)


def test_old_binary_tree_claiming_a_billion_nodes_is_refused():
    payload = bytearray(_old_binary())
    struct.pack_into("<i", payload, _first_node(payload) - 148 + 4, 1 << 30)
    refused(bytes(payload), Reason.LENGTH_TOO_LARGE)


@pytest.mark.parametrize("cut", [1, 100, 140, 200, 400, -40, -4, -1])
def test_truncated_old_binary_is_refused(cut):
    with pytest.raises(NativeRefusal) as caught:
        read_xgboost(_old_binary()[:cut])
    assert caught.value.reason in (Reason.TRUNCATED, Reason.LENGTH_TOO_LARGE)


def test_old_binary_with_trailing_bytes_is_refused():
    refused(_old_binary() + b"\x00" * 8, Reason.TRAILING_BYTES)


def _document(version: str = "3.0.5", case: str = "multiclass") -> dict:
    return json.loads(data(next(f for f in XGBOOST if f["path"] == f"xgboost/{version}/{case}.json")))


def _trees(document: dict) -> dict:
    return document["learner"]["gradient_booster"]["model"]


def _tree0(document: dict) -> dict:
    booster = document["learner"]["gradient_booster"]
    return (booster.get("gbtree", booster))["model"]["trees"][0]


def _mutated(change, version: str = "3.0.5", case: str = "multiclass") -> bytes:
    document = _document(version, case)
    change(document)
    return json.dumps(document).encode()


def _leaf_index(tree: dict) -> int:
    return tree["left_children"].index(-1)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: _tree0(d)["left_children"].__setitem__(0, 999), Reason.CHILD_OUT_OF_RANGE),
        (lambda d: _tree0(d)["right_children"].__setitem__(0, -7), Reason.CHILD_OUT_OF_RANGE),
        (lambda d: _tree0(d)["left_children"].__setitem__(1, 0), Reason.NOT_A_TREE),
        (lambda d: _tree0(d)["parents"].__setitem__(1, 999), Reason.CHILD_OUT_OF_RANGE),
        (lambda d: _tree0(d)["parents"].__setitem__(3, 0), Reason.NOT_A_TREE),
        (lambda d: _tree0(d)["split_indices"].__setitem__(0, 5), Reason.FEATURE_OUT_OF_RANGE),
        (lambda d: _tree0(d)["split_conditions"].__setitem__(_leaf_index(_tree0(d)), math.nan), Reason.NOT_FINITE),
        (lambda d: _tree0(d)["split_conditions"].__setitem__(0, math.inf), Reason.NOT_FINITE),
        (lambda d: _tree0(d)["base_weights"].pop(), Reason.INCONSISTENT),
        (lambda d: d["learner"]["objective"].__setitem__("name", "reg:evil"), Reason.UNKNOWN_OBJECTIVE),
        (lambda d: d["learner"]["learner_model_param"].__setitem__("num_class", "2"), Reason.INCONSISTENT),
        (lambda d: d["learner"]["learner_model_param"].__setitem__("base_score", "NaN"), Reason.NOT_FINITE),
        (lambda d: d["learner"]["learner_model_param"].__setitem__("num_feature", "0"), Reason.INCONSISTENT),
        (lambda d: d["learner"]["learner_model_param"].__setitem__("num_feature", "7x"), Reason.MALFORMED),
        (lambda d: d["learner"]["gradient_booster"]["model"]["tree_info"].__setitem__(0, 3), Reason.INCONSISTENT),
        (lambda d: d["learner"]["gradient_booster"]["model"]["trees"].pop(), Reason.INCONSISTENT),
        (
            lambda d: d["learner"]["gradient_booster"]["model"].__setitem__("iteration_indptr", [0, 5]),
            Reason.INCONSISTENT,
        ),
        (lambda d: _tree0(d)["tree_param"].__setitem__("size_leaf_vector", "3"), Reason.UNSUPPORTED),
        (lambda d: _tree0(d)["split_type"].__setitem__(0, 1), Reason.INCONSISTENT),
        (lambda d: d["learner"].__setitem__("feature_names", ["a", "b"]), Reason.INCONSISTENT),
        (lambda d: d["learner"].__setitem__("feature_types", ["q", "q", "q", "q", "x"]), Reason.UNSUPPORTED),
    ],
    ids=[
        "left child out of range",
        "right child negative",
        "cycle to the root",
        "parent out of range",
        "parent not the real parent",
        "split feature >= num_feature",
        "NaN leaf",
        "infinite split condition",
        "short stats array",
        "unknown objective",
        "num_class disagrees with the objective",
        "NaN base score",
        "no features",
        "num_feature not a number",
        "tree_info names a missing output",
        "fewer trees than num_trees",
        "iteration_indptr past the trees",
        "vector leaves",
        "categorical split without categories",
        "fewer feature names than features",
        "unknown feature type",
    ],
)
def test_hostile_json_models_are_refused_by_name(change, reason):
    refused(_mutated(change), reason)


def test_categorical_indices_outside_the_categories_are_refused():
    def change(document: dict) -> None:
        tree = _tree0(document)
        tree["split_type"][0] = 1
        tree["categories_nodes"] = [0]
        tree["categories_segments"] = [0]
        tree["categories_sizes"] = [4]
        tree["categories"] = [1, 2]

    refused(_mutated(change), Reason.CATEGORY_OUT_OF_RANGE)


def test_a_reachable_deleted_node_is_refused():
    def change(document: dict) -> None:
        tree = _tree0(document)
        tree["split_indices"][1] = 2147483647
        tree["default_left"][1] = 1
        tree["tree_param"]["num_deleted"] = "1"

    refused(_mutated(change), Reason.NOT_A_TREE)


def test_a_json_object_with_a_repeated_key_is_refused():
    # Two readers may keep different copies of a repeated key: the gate's and libxgboost's would differ.
    text = data(next(f for f in XGBOOST if f["path"] == "xgboost/3.0.5/binary.json")).decode()
    twice = text.replace('"learner":{', '"learner":{"objective":{"name":"reg:squarederror"},', 1)
    assert twice != text
    refused(twice.encode(), Reason.MALFORMED)


def test_deeply_nested_json_is_refused_not_a_recursion_error():
    refused(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, Reason.MALFORMED)


def _ubj(version: str = "3.0.5", case: str = "binary") -> bytes:
    return data(next(f for f in XGBOOST if f["path"] == f"xgboost/{version}/{case}.ubj"))


def test_ubjson_typed_array_claiming_2_to_40_items_is_refused():
    payload = _ubj()
    marker = payload.index(b"[$d#L")  # the first float array's count follows
    hostile = payload[: marker + 5] + struct.pack(">q", 1 << 40) + payload[marker + 13 :]
    refused(hostile, Reason.LENGTH_TOO_LARGE)


def test_ubjson_string_length_past_the_end_is_refused():
    payload = _ubj()
    at = payload.index(b"SL")
    hostile = payload[: at + 2] + struct.pack(">q", 1 << 40) + payload[at + 10 :]
    refused(hostile, Reason.LENGTH_TOO_LARGE)


def test_ubjson_hostile_tree_is_refused_like_json():
    document = ubjson.loads(_ubj())
    _tree0(document)["left_children"][0] = 10_000
    refused(ubjson.dumps(document), Reason.CHILD_OUT_OF_RANGE)


@pytest.mark.parametrize("cut", [2, 30, 500, -200, -1])
def test_truncated_ubjson_is_refused(cut):
    with pytest.raises(NativeRefusal) as caught:
        read_xgboost(_ubj()[:cut])
    assert caught.value.reason in (Reason.TRUNCATED, Reason.LENGTH_TOO_LARGE, Reason.MALFORMED)


def test_snapshot_offset_past_the_end_is_refused():
    payload = bytearray(data(next(f for f in XGBOOST if f["format"] == "pickle-snapshot")))
    at = payload.index(b"CONFIG-offset:") + len(b"CONFIG-offset:")
    struct.pack_into("<q", payload, at, 1 << 40)
    refused(bytes(payload), Reason.LENGTH_TOO_LARGE)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo owned > /tmp/training-gate-native-owned",))


def test_a_pickle_payload_named_xgboost_model_is_refused_before_anything_runs(tmp_path):
    payload = pickle.dumps(_Payload(), protocol=3)
    error = refused(payload, Reason.PICKLE_GLOBAL_REFUSED)
    assert "system" in str(error)
    assert not os.path.exists("/tmp/training-gate-native-owned")


def test_a_payload_inside_the_booster_state_is_refused():
    booster_pickle = data(next(f for f in XGBOOST if f["format"] == "pickle-old-binary"))
    assert read_xgboost(booster_pickle)  # the original is benign
    # The state's "booster" value replaced by a call: a payload hidden in a plain field of a real Booster.
    injected = booster_pickle.replace(b"X\x06\x00\x00\x00gbtree", b"cposix\nsystem\nX\x04\x00\x00\x00echo\x85R", 1)
    assert injected != booster_pickle
    refused(injected, Reason.PICKLE_GLOBAL_REFUSED)


def test_a_pickled_sklearn_wrapper_without_a_booster_is_refused():
    # The wrappers are read as data (tests/unit/test_native_wrappers.py); one that holds no Booster is no model.
    payload = b"\x80\x04\x8c\x0fxgboost.sklearn\x8c\rXGBClassifier\x93)\x81}b."
    error = refused(payload, Reason.PICKLE_SHAPE)
    assert "_Booster" in str(error)


def test_a_booster_state_without_model_bytes_is_refused():
    with pytest.raises(NativeRefusal) as caught:
        from_booster_state({"handle": None})
    assert caught.value.reason == Reason.PICKLE_SHAPE
