"""Structural validation of C-backed objects, the call rules and the BUILD rules of the loader.

Hostile objects are built here by editing a fitted model's state; each must fail `load` naming the
class and the field, through joblib, plain pickle and skops alike."""

from __future__ import annotations

import importlib
import io
import pickle
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from training_gate.domain.models import CheckStatus
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate.inspector.loader import (
    _FIXED_GLOBALS,
    _REFERENCED_ONLY,
    CALL_RULES,
    RefusedCall,
    default_allowlist,
    load_model_stream,
)
from training_gate.inspector.sandbox import Sandbox
from training_gate.inspector.structures import NO_INDEXED_STATE, VALIDATORS, InvalidStructure
from training_gate_cli.artifacts import pack_model_tar_gz

X, Y = load_iris(return_X_y=True)
HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: classes defined in Python; C and Cython types lack it


def resolve(name: str):
    module, _, attr = name.rpartition(".")
    module = {"__builtin__": "builtins"}.get(module, module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(importlib.import_module(module), attr)


def joblib_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def load(obj: object, how: str):
    if how == "joblib":
        return load_model_stream(io.BytesIO(joblib_bytes(obj)), "model.joblib").model
    if how == "pickle":
        return load_model_stream(io.BytesIO(pickle.dumps(obj, protocol=5)), "model.pkl").model
    import skops.io

    return load_model_stream(io.BytesIO(skops.io.dumps(obj)), "model.skops").model


# -- the audit, kept in step -----------------------------------------------------------------------------


def test_every_allowlisted_extension_type_is_validated_or_declared_free_of_indexed_state():
    # numpy's own array, dtype and scalar types check what they are given; they are the base of all.
    numpy_core = {n for n in _FIXED_GLOBALS | _REFERENCED_ONLY if n.startswith("numpy.")}
    unaccounted = []
    for name in default_allowlist():
        obj = resolve(name)
        if isinstance(obj, type) and not obj.__flags__ & HEAP_TYPE and name not in numpy_core:
            if name not in VALIDATORS and name not in NO_INDEXED_STATE:
                unaccounted.append(name)
    assert unaccounted == [], "extension types with neither a validator nor a reason: add one or drop them"


def test_every_validated_class_exists_and_is_allowlisted():
    allowed = default_allowlist()
    for name in VALIDATORS:
        assert isinstance(resolve(name), type), name
        assert name in allowed, name


def test_the_allowlist_names_classes_exactly_never_a_whole_module():
    allowed = default_allowlist()
    assert "sklearn.tree._tree.DepthFirstTreeBuilder" not in allowed  # same module as Tree, never pickled
    assert "sklearn.metrics._dist_metrics.PyFuncDistance64" not in allowed  # calls back into Python
    assert "sklearn.neighbors._kd_tree.NodeHeap" not in allowed


def test_every_callable_on_the_allowlist_that_is_not_a_class_has_a_call_rule():
    for name in default_allowlist():
        obj = resolve(name)
        if callable(obj) and not isinstance(obj, type):
            assert name in CALL_RULES, f"{name} is callable but has no argument rule"


# -- trees ---------------------------------------------------------------------------------------------


def fitted_tree() -> DecisionTreeClassifier:
    return DecisionTreeClassifier(random_state=0).fit(X, Y)


def edit_tree(model, edit) -> DecisionTreeClassifier:
    """Edit the Tree's node array in place (setting state copies it; nothing traverses it here)."""
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    edit(nodes, state)
    state["nodes"] = nodes
    model.tree_.__setstate__(state)
    return model


def _child_out_of_range(nodes, state):
    nodes["left_child"][0] = 10**9


def _self_loop(nodes, state):
    nodes["left_child"][0] = 0


def _cycle(nodes, state):
    inner = np.flatnonzero(nodes["left_child"] != -1)
    nodes["right_child"][inner[-1]] = inner[0] + 1 if inner[0] + 1 < inner[-1] else 0


def _feature_out_of_range(nodes, state):
    nodes["feature"][0] = 4


def _shallow_max_depth(nodes, state):
    state["max_depth"] = 1


def _shared_child(nodes, state):
    nodes["right_child"][0] = nodes["left_child"][0]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (_child_out_of_range, "left of node 0"),
        (_self_loop, "left of node 0"),
        (_cycle, "right of node"),
        (_feature_out_of_range, "feature"),
        (_shallow_max_depth, "max_depth"),
        (_shared_child, "children do not form a tree"),
    ],
    ids=["child-out-of-range", "self-loop", "cycle", "feature", "max-depth", "shared-child"],
)
@pytest.mark.parametrize("how", ["joblib", "pickle", "skops"])
def test_a_broken_tree_fails_load_naming_class_and_field(edit, field: str, how: str):
    model = edit_tree(fitted_tree(), edit)
    with pytest.raises(InvalidStructure, match=f"invalid Tree: {field}"):
        load(model, how)


def test_a_forest_member_wider_than_the_forest_is_refused():
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y)
    wide = DecisionTreeClassifier(random_state=0).fit(np.c_[X, X], Y)
    forest.estimators_[1].tree_ = wide.tree_
    with pytest.raises(InvalidStructure, match=r"n_features is 8"):
        load(forest, "joblib")


def test_hgb_predictor_nodes_are_checked():
    model = HistGradientBoostingClassifier(max_iter=2).fit(X, Y)
    model._predictors[0][0].nodes["left"][0] = 10_000
    with pytest.raises(InvalidStructure, match=r"invalid TreePredictor: nodes\.left of node 0"):
        load(model, "joblib")
    model = HistGradientBoostingClassifier(max_iter=2).fit(X, Y)
    model._predictors[0][0].nodes["feature_idx"][0] = 99
    with pytest.raises(InvalidStructure, match="feature_idx is past the 4 features"):
        load(model, "pickle")


# -- neighbours, sparse, libsvm, k-means ------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
@pytest.mark.parametrize(
    ("position", "edit", "field"),
    [
        (1, lambda a: a.__setitem__(0, 10**6), "idx_array"),
        (2, lambda a: a["idx_end"].__setitem__(0, 10**6), "node_data"),
    ],
    ids=["index", "range"],
)
def test_a_broken_neighbour_tree_fails_load(algorithm: str, position: int, edit, field: str):
    model = KNeighborsClassifier(algorithm=algorithm, leaf_size=5).fit(X, Y)
    state = list(model._tree.__getstate__())
    state[position] = state[position].copy()
    edit(state[position])
    model._tree.__setstate__(tuple(state))
    with pytest.raises(InvalidStructure, match=field):
        load(model, "joblib")


def test_a_sparse_matrix_with_indices_out_of_range_fails_load():
    matrix = scipy.sparse.csr_matrix(np.eye(3))
    matrix.indices[0] = 7  # a column past the shape
    with pytest.raises(InvalidStructure, match="csr_matrix: indices/indptr"):
        load({"weights": matrix}, "joblib")


def test_libsvm_counts_must_match_the_support_vectors():
    model = SVC().fit(X, Y)
    model._n_support = np.array([1, 1, 1], dtype=np.int32)
    with pytest.raises(InvalidStructure, match="_n_support"):
        load(model, "joblib")


def test_kmeans_centers_must_have_the_models_width():
    model = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    model.cluster_centers_ = np.zeros((3, 2))
    with pytest.raises(InvalidStructure, match="cluster_centers_"):
        load(model, "pickle")


# -- call and BUILD rules -------------------------------------------------------------------------------


def test_a_function_on_the_allowlist_is_called_only_with_its_argument_rule():
    encode = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x06\x00\x00\x00utf-16\x86R."
    with pytest.raises(RefusedCall, match="encode only latin1"):
        load_model_stream(io.BytesIO(encode), "model.pkl")
    latin1 = encode.replace(b"X\x06\x00\x00\x00utf-16", b"X\x06\x00\x00\x00latin1")
    assert load_model_stream(io.BytesIO(latin1), "model.pkl").model == b"x"


def test_a_referenced_only_type_is_not_called():
    call = b"\x80\x02cnumpy\nfloat64\nG@\x14\x00\x00\x00\x00\x00\x00\x85R."
    with pytest.raises(RefusedCall, match=r"numpy\.float64 may be referenced but not called"):
        load_model_stream(io.BytesIO(call), "model.pkl")


def test_an_instance_attribute_shadowing_a_method_is_refused():
    model = SVC().fit(X, Y)
    model.__dict__["predict_proba"] = None
    with pytest.raises(RefusedCall, match="sets 'predict_proba', which shadows"):
        load(model, "joblib")


def test_available_if_methods_count_as_absent_when_unavailable(tmp_path: Path):
    # SVC.predict_proba exists on the class and raises on a model fitted without probability=True.
    artifact = pack_model_tar_gz({"model.joblib": joblib_bytes(SVC().fit(X, Y))})
    result = inspect_artifact(
        "s3://t/svc.tar.gz", lambda: io.BytesIO(artifact), InspectConfig(sample_input=[[5.1, 3.5, 1.4, 0.2]])
    )
    assert result.verdict == "pass", result.checks


# -- what the validators prevent: the same objects, unvalidated, crash or hang the child ----------------


@pytest.fixture(scope="module")
def unvalidated() -> Sandbox:
    hooks = {"s3://t/segv.tar.gz": "unpack:no-validation", "s3://t/loop.tar.gz": "unpack:no-validation"}
    sandbox = Sandbox(test_hooks=hooks)
    yield sandbox
    sandbox.close()


def _inspect(artifact: bytes, uri: str, tmp_path: Path, sandbox: Sandbox | None = None, **config):
    result = inspect_artifact(
        uri,
        lambda: io.BytesIO(artifact),
        InspectConfig(sample_input=[[5.1, 3.5, 1.4, 0.2]], **config),
        sandbox=sandbox,
        work_root=tmp_path,
    )
    return result, {c.name: c for c in result.checks}


def test_a_tree_child_out_of_range_is_refused_and_unvalidated_it_segfaults(tmp_path: Path, unvalidated):
    def far_child(nodes, state):
        nodes["left_child"][0] = nodes["right_child"][0] = 10**12

    artifact = pack_model_tar_gz({"model.joblib": joblib_bytes(edit_tree(fitted_tree(), far_child))})
    result, checks = _inspect(artifact, "s3://t/segv.tar.gz", tmp_path)
    assert checks["load"].status == CheckStatus.FAIL and "invalid Tree: left of node 0" in checks["load"].detail
    result, checks = _inspect(artifact, "s3://t/segv.tar.gz", tmp_path, unvalidated)
    assert result.verdict == "reject"
    assert checks["smoke_prediction"].detail == "smoke_prediction: crashed with SIGSEGV"
    assert list(tmp_path.iterdir()) == []


def test_a_self_looping_tree_is_refused_and_unvalidated_it_hangs_until_killed(tmp_path: Path, unvalidated):
    artifact = pack_model_tar_gz({"model.joblib": joblib_bytes(edit_tree(fitted_tree(), _self_loop))})
    result, checks = _inspect(artifact, "s3://t/loop.tar.gz", tmp_path)
    assert "invalid Tree: left of node 0" in checks["load"].detail
    result, checks = _inspect(artifact, "s3://t/loop.tar.gz", tmp_path, unvalidated, time_limit_s=2)
    assert result.verdict == "reject"
    assert checks["smoke_prediction"].detail.startswith("smoke_prediction: killed after 2 s (time limit")
    assert list(tmp_path.iterdir()) == []
