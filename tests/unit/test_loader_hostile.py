"""Hostile files written by hand, one class of hole at a time: each is refused, and nothing it names runs.

Names are never trusted (a partial's state setting `__qualname__`, Python 2 spellings, a class named by a
module it does not live in); a call goes only to an allowlisted object with a rule for its arguments; a
state goes only to an object this load created for it, once, and only after it is checked; containers
checked as part of a state cannot change afterwards; the skops reader meets the same rules."""

from __future__ import annotations

import functools
import io
import json
import pickle
import pickletools
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.cluster._kmeans import _kmeans_single_lloyd
from sklearn.feature_selection import f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_array

from tests.unit.invariant_edits import Forge
from tests.unit.zoo_data import X, Y
from training_gate.inspector.loader import (
    InvalidStructure,
    RefusedCall,
    RefusedGlobal,
    UntrustedTypes,
    load_model_stream,
)

REFUSED = (pickle.UnpicklingError, ValueError)


def load(data: bytes, name: str = "model.pkl"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model_stream(io.BytesIO(data), name).model


def skops_bytes(obj: object) -> bytes:
    import skops.io

    return skops.io.dumps(obj)


def _memo_after(data: bytes, key: str) -> int:
    """The memo index pickle gave to the container written right after the string `key`."""
    ops = list(pickletools.genops(data))
    for i, (_op, arg, _pos) in enumerate(ops):
        if arg == key:
            for j in range(i + 1, i + 6):
                if ops[j][0].name in ("EMPTY_DICT", "EMPTY_LIST"):
                    return ops[j + 1][1]
    raise KeyError(key)


def _before_stop(data: bytes, extra: bytes) -> bytes:
    assert data.endswith(b".")
    return data[:-1] + extra + b"."


# -- identity, not names ------------------------------------------------------------------------------------


def test_a_partial_whose_state_renames_it_calls_nothing():
    # The attack that passed: a partial of a k-means routine whose namespace sets __qualname__ to an
    # allowlisted class's name. The gate never reads that name: the partial must wrap check_array.
    spoof = Forge(
        functools.partial,
        (_kmeans_single_lloyd,),
        (_kmeans_single_lloyd, (), {}, {"__qualname__": "collections.OrderedDict"}),
    )
    with pytest.raises(RefusedCall, match="partial wraps check_array only"):
        load(pickle.dumps(spoof, protocol=2))


def test_a_partial_of_check_array_with_attributes_of_its_own_is_refused():
    renamed = Forge(functools.partial, (check_array,), (check_array, (), {}, {"__qualname__": "x"}))
    with pytest.raises(RefusedCall, match="no attributes of its own"):
        load(pickle.dumps(renamed, protocol=2))
    with pytest.raises(RefusedCall, match="keyword arguments only"):
        load(pickle.dumps(Forge(functools.partial, (check_array,), (check_array, (1,), {}, None)), protocol=2))


def test_an_object_built_while_loading_is_never_called():
    built = functools.partial(check_array)
    with pytest.raises(RefusedCall, match=r"instance of functools.partial may not be called"):
        load(pickle.dumps(Forge(built, (np.zeros((2, 2)),)), protocol=4))


def test_an_allowlisted_function_is_never_called_while_loading():
    with pytest.raises(RefusedCall, match="_kmeans_single_lloyd may not be called"):
        load(pickle.dumps(Forge(_kmeans_single_lloyd, (np.zeros((2, 2)),)), protocol=2))


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00idq\x00\x85R.",
        b"\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R.",  # protocol 2's spelling of builtins
        b"\x80\x02cbuiltins\ngetattr\n.",
        b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93.",  # STACK_GLOBAL
        b"\x80\x02csklearn.tree._classes\nos\n.",  # an allowlisted module, a name it merely imports
    ],
    ids=["global", "python2-eval", "getattr", "stack-global", "module-attribute"],
)
def test_a_name_off_the_table_is_refused_before_anything_is_imported(payload: bytes):
    with pytest.raises(RefusedGlobal):
        load(payload)


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x02X\x01\x00\x00\x00aQ.",  # BINPERSID
        b"\x80\x05\x97.",  # NEXT_BUFFER (out-of-band data)
        b"\x80\x02\x82\x01.",  # EXT1 (copyreg's extension registry)
        b"\x80\x02(csklearn.svm._classes\nSVC\no.",  # OBJ (protocol 1)
    ],
    ids=["persistent-id", "out-of-band-buffer", "extension", "obj"],
)
def test_opcodes_that_reach_other_code_are_refused(payload: bytes):
    with pytest.raises(REFUSED):
        load(payload)


# -- calls and new objects ----------------------------------------------------------------------------------


def test_a_referenced_only_type_is_not_called():
    with pytest.raises(RefusedCall, match=r"numpy\.float64 may not be called"):
        load(b"\x80\x02cnumpy\nfloat64\nG@\x14\x00\x00\x00\x00\x00\x00\x85R.")


def test_a_function_on_the_allowlist_is_called_only_with_its_argument_rule():
    encode = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x06\x00\x00\x00utf-16\x86R."
    with pytest.raises(RefusedCall, match="latin1 only"):
        load(encode)
    assert load(encode.replace(b"X\x06\x00\x00\x00utf-16", b"X\x06\x00\x00\x00latin1")) == b"x"


def test_an_estimator_class_is_not_called_with_arguments_from_the_file():
    with pytest.raises(RefusedCall, match="SVC may not be called"):
        load(b"\x80\x02csklearn.svm._classes\nSVC\nG@\x14\x00\x00\x00\x00\x00\x00\x85R.")
    with pytest.raises(RefusedCall, match=r"NEWOBJ builds .*SVC only with no arguments"):
        load(b"\x80\x02csklearn.svm._classes\nSVC\nG@\x14\x00\x00\x00\x00\x00\x00\x85\x81.")


def test_new_is_refused_for_classes_the_gate_does_not_build():
    with pytest.raises(RefusedCall, match=r"numpy.ndarray is not a class the gate builds"):
        load(b"\x80\x02cnumpy\nndarray\n)\x81.")


# -- states ---------------------------------------------------------------------------------------------------


def test_build_on_a_class_is_refused():
    payload = b"\x80\x02csklearn.svm._classes\nSVC\n}X\x07\x00\x00\x00predictNsb."
    with pytest.raises(RefusedCall, match=r"BUILD on sklearn.svm._classes.SVC refused"):
        load(payload)
    assert callable(SVC.predict)


def test_a_second_state_for_the_same_object_is_refused():
    data = pickle.dumps(DecisionTreeClassifier().fit(X, Y), protocol=2)
    with pytest.raises(RefusedCall, match="a state is given once"):
        load(_before_stop(data, b"}b"))  # an empty state would delete n_features_in_


def test_build_on_an_object_without_a_dict_is_refused_unless_its_builder_expects_it():
    scalar = pickle.dumps(np.float64(1.5), protocol=2)
    with pytest.raises(RefusedCall, match="a state is given once"):
        load(_before_stop(scalar, b"}b"))
    tree = pickle.dumps(DecisionTreeClassifier().fit(X, Y).tree_, protocol=2)
    with pytest.raises(RefusedCall, match="a state is given once"):
        load(_before_stop(tree, b"}b"))


def test_a_dtype_field_past_its_item_size_is_refused():
    state = np.dtype({"names": ["a"], "formats": ["<f8"], "offsets": [0], "itemsize": 8}).__reduce__()[2]
    hostile = Forge(np.dtype, ("V8", False, True), (*state[:4], {"a": (np.dtype("<f8"), 4)}, *state[5:]))
    with pytest.raises(RefusedCall, match="numpy's constructor does not build from the same fields"):
        load(pickle.dumps(hostile, protocol=2))


def test_a_dtype_numpy_shares_is_never_given_a_state():
    hostile = Forge(np.dtype, ("f8", False, False), (3, ">", None, None, None, -1, -1, 0))
    with pytest.raises(RefusedCall, match="without copy=True"):
        load(pickle.dumps(hostile, protocol=2))
    assert np.dtype("f8").byteorder == "="


@pytest.mark.parametrize("how", ["pickle", "skops"])
def test_a_method_shadowed_by_an_attribute_is_refused_on_both_paths(how: str):
    model = SVC().fit(X, Y)
    model.__dict__["predict_proba"] = None
    data = pickle.dumps(model, protocol=4) if how == "pickle" else skops_bytes(model)
    with pytest.raises(InvalidStructure, match="predict_proba is not an attribute the library writes"):
        load(data, f"model.{'pkl' if how == 'pickle' else 'skops'}")


@pytest.mark.parametrize("how", ["pickle", "skops"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: DecisionTreeClassifier().fit(X, Y),
        lambda: KNeighborsClassifier(algorithm="brute").fit(X, Y),
        lambda: __import__("sklearn.ensemble", fromlist=["x"]).HistGradientBoostingClassifier(max_iter=3).fit(X, Y),
    ],
    ids=["tree", "brute-knn", "hgb"],
)
def test_a_fitted_model_without_n_features_in_is_refused(make, how: str):
    model = make()
    del model.n_features_in_
    data = pickle.dumps(model, protocol=4) if how == "pickle" else skops_bytes(model)
    with pytest.raises(InvalidStructure, match="n_features_in_ is missing"):
        load(data, f"model.{'pkl' if how == 'pickle' else 'skops'}")


def test_a_distance_metric_where_the_library_keeps_a_name_is_refused():
    from sklearn.metrics import DistanceMetric

    model = KNeighborsClassifier(algorithm="brute").fit(X, Y)
    model.effective_metric_ = DistanceMetric.get_metric("minkowski", p=2, w=np.ones(2))
    with pytest.raises(InvalidStructure, match=r"effective_metric_ holds a .*MinkowskiDistance"):
        load(pickle.dumps(model, protocol=4))


def test_libsvm_impl_is_the_classs_own():
    from sklearn.svm import SVR

    model = SVR().fit(X, X[:, 0])
    model._impl = "c_svc"  # a class attribute: no state the library writes sets it
    with pytest.raises(InvalidStructure, match="_impl is not an attribute the library writes"):
        load(pickle.dumps(model, protocol=4))


# -- containers checked with their owner do not change afterwards ----------------------------------------------


def test_a_dict_checked_with_its_estimator_cannot_be_filled_later():
    data = pickle.dumps(KNeighborsClassifier(algorithm="brute").fit(X, Y), protocol=2)
    memo = _memo_after(data, "effective_metric_params_")
    later = b"h" + bytes([memo]) + b"(X\x0e\x00\x00\x00Y_norm_squaredK\x01u0"
    with pytest.raises(RefusedCall, match="already checked as part of a state"):
        load(_before_stop(data, later))


def test_a_list_checked_with_its_estimator_cannot_be_appended_to_later():
    data = pickle.dumps(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y), protocol=2)
    memo = _memo_after(data, "steps")
    with pytest.raises(RefusedCall, match="already checked as part of a state"):
        load(_before_stop(data, b"h" + bytes([memo]) + b"K\x01a0"))


def test_items_go_only_into_plain_containers():
    with pytest.raises(RefusedCall, match="only a plain container takes items"):
        load(pickle.dumps(np.zeros(3), protocol=2)[:-1] + b"(K\x00K\x01u.")


# -- the top level ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [{"hidden": f_classif}, [LogisticRegression], np.array([f_classif], dtype=object)],
    ids=["function", "class", "object-array"],
)
def test_a_function_or_class_at_the_top_level_is_refused(obj: object):
    with pytest.raises(InvalidStructure, match="top level"):
        load(pickle.dumps(obj, protocol=4))


def test_a_list_that_contains_itself_is_refused_without_recursing_forever():
    with pytest.raises(InvalidStructure, match="nests deeper than any state"):
        load(b"\x80\x02]q\x00h\x00a.")


def test_an_object_created_and_never_given_its_state_is_judged_empty():
    with pytest.raises(InvalidStructure, match="is missing"):
        load(b"\x80\x02csklearn.tree._classes\nDecisionTreeClassifier\n)\x81.")


# -- skops: the same construction ---------------------------------------------------------------------------------


def _edit_skops(data: bytes, edit) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    edit(schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            target.writestr(entry, json.dumps(schema) if entry.filename == "schema.json" else source.read(entry))
    return out.getvalue()


def _nodes(schema, loader: str):
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("__loader__") == loader:
                yield node
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)


def test_skops_names_are_resolved_through_the_same_table():
    data = _edit_skops(
        skops_bytes(LogisticRegression().fit(X, Y)), lambda s: s.update({"__module__": "os", "__class__": "system"})
    )
    with pytest.raises(UntrustedTypes, match=r"os.system"):
        load(data, "model.skops")


@pytest.mark.parametrize("loader", ["MethodNode", "OperatorFuncNode", "DefaultDictNode"])
def test_skops_nodes_the_gate_does_not_build_are_refused(loader: str):
    data = _edit_skops(skops_bytes(LogisticRegression().fit(X, Y)), lambda s: s.update({"__loader__": loader}))
    with pytest.raises(RefusedCall, match=f"the '{loader}' node is not one the gate builds"):
        load(data, "model.skops")


def test_a_skops_partial_of_another_function_is_refused_like_a_pickled_one():
    from sklearn.preprocessing import FunctionTransformer

    data = skops_bytes(FunctionTransformer(functools.partial(f_classif)).fit(X))
    with pytest.raises(RefusedCall, match="partial wraps check_array only"):
        load(data, "model.skops")


def test_a_skops_array_shorter_than_its_header_is_refused(tmp_path: Path):
    source = zipfile.ZipFile(io.BytesIO(skops_bytes({"w": np.arange(10.0)})))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            body = source.read(entry)
            target.writestr(entry, body[:-8] if entry.filename.endswith(".npy") else body)
    with pytest.raises(RefusedCall, match="whose bytes are not exactly"):
        load(out.getvalue(), "model.skops")


def test_a_skops_tree_with_a_state_the_library_does_not_write_is_refused():
    def edit(schema):
        for node in _nodes(schema, "TreeNode"):
            node["content"]["content"]["max_depth"]["content"] = "1"

    data = _edit_skops(skops_bytes(DecisionTreeClassifier(random_state=0).fit(X, Y)), edit)
    with pytest.raises(InvalidStructure, match="invalid Tree: max_depth is 1"):
        load(data, "model.skops")


def test_joblib_and_plain_pickle_of_a_benign_model_load_alike():
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    for data, name in (
        (buffer.getvalue(), "model.joblib"),
        (pickle.dumps(model, protocol=2), "model.pkl"),
        (skops_bytes(model), "model.skops"),
    ):
        assert np.array_equal(load(data, name).predict(X[:5]), model.predict(X[:5])), name


def _npy(header: dict, body: bytes) -> bytes:
    text = repr(header).encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + body


@pytest.mark.parametrize(
    ("header", "refusal"),
    [
        ({"descr": "|O", "fortran_order": False, "shape": (1,)}, "dtype '|O'"),
        ({"descr": [("a", ("<f8", (2,)))], "fortran_order": False, "shape": (1,)}, "not \\(name, type code\\)"),
        ({"descr": "<f8", "fortran_order": False, "shape": (1,), "extra": 1}, "other fields than numpy writes"),
        ({"descr": "<f8", "fortran_order": False, "shape": (-1,)}, "shape \\(-1,\\)"),
    ],
    ids=["object", "subarray", "extra-field", "negative-shape"],
)
def test_a_skops_array_header_is_checked_as_data_before_numpy_builds_its_dtype(header: dict, refusal: str):
    source = zipfile.ZipFile(io.BytesIO(skops_bytes({"w": np.arange(1.0)})))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            body = _npy(header, b"\0" * 16) if entry.filename.endswith(".npy") else source.read(entry)
            target.writestr(entry, body)
    with pytest.raises(RefusedCall, match=refusal):
        load(out.getvalue(), "model.skops")
