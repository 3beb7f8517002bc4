"""The edits behind each invariant mutation (invariant_mutations.py): benign models, the changes that
break one relation of theirs, and the files crafted opcode by opcode."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.unit.zoo_data import X_CATEGORICAL, Y_BINARY, X, Y


class RawFile(bytes):
    """A file written byte by byte, saved as it is on every path."""


class Forge:
    """An object that pickles as the given reduce tuple: how a crafted file is written with pickle."""

    def __init__(self, *reduce: Any):
        self.reduce = reduce

    def __reduce__(self) -> tuple:
        return self.reduce


# -- benign models ------------------------------------------------------------------------------------------


def tree() -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(random_state=0).fit(X, Y)


def neighbours(algorithm: str, **params: Any) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(algorithm=algorithm, leaf_size=5, **params).fit(X, Y)


def hgb_categorical() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    # The category column is the class itself, so the trees split on it.
    rows = np.c_[X_CATEGORICAL[:, :4], Y]
    return HistGradientBoostingClassifier(categorical_features=[4], max_iter=5, random_state=0).fit(rows, Y)


def gradient_boosting(target: np.ndarray = Y) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(n_estimators=3, random_state=0).fit(X, target)


def edit(make: Callable[[], Any], change: Callable[[Any], None]) -> Callable[[], Any]:
    def build() -> Any:
        model = make()
        change(model)
        return model

    return build


def state_edit(key: Any, change: Callable[[Any], Any]) -> Callable[[tuple, Any], tuple[tuple, Any]]:
    """An edit of one entry of a dict or tuple state."""

    def edit(args: tuple, state: Any) -> tuple[tuple, Any]:
        if isinstance(state, dict):
            return args, {**state, key: change(state[key])}
        items = list(state)
        items[key] = change(items[key])
        return args, tuple(items)

    return edit


def nodes(change: Callable[[np.ndarray], None]) -> Callable[[Any], Any]:
    def edit(nodes: np.ndarray) -> np.ndarray:
        nodes = nodes.copy()
        change(nodes)
        return nodes

    return edit


def kd_tree_class() -> type:
    return type(neighbours("kd_tree")._tree)


def ball_tree_class() -> type:
    return type(neighbours("ball_tree")._tree)


def tree_class() -> type:
    from sklearn.tree._tree import Tree

    return Tree


def metric_class() -> type:
    return type(neighbours("ball_tree")._tree.__getstate__()[11])


def widen_stages(model: Any) -> None:
    # A binary model has one tree a stage; its stage array is widened to three with copies of that tree.
    model.estimators_ = np.concatenate([model.estimators_] * 3, axis=1)


def multiclass_init_on_two_classes(model: Any) -> None:
    from sklearn.dummy import DummyClassifier

    model.init_ = DummyClassifier(strategy="prior").fit(X, Y_BINARY)


def inner_node(predictor: Any) -> int:
    return int(np.flatnonzero(~predictor.nodes["is_leaf"].astype(bool))[0])


def predictor_child(model: Any) -> None:
    predictor = model._predictors[0][0]
    predictor.nodes = predictor.nodes.copy()
    predictor.nodes["left"][inner_node(predictor)] = 10_000


def predictor_feature(model: Any) -> None:
    predictor = model._predictors[0][0]
    predictor.nodes = predictor.nodes.copy()
    predictor.nodes["feature_idx"][inner_node(predictor)] = 99


def categorical_split(model: Any) -> Any:
    for iteration in model._predictors:
        for predictor in iteration:
            nodes = predictor.nodes
            split = np.flatnonzero(~nodes["is_leaf"].astype(bool) & nodes["is_categorical"].astype(bool))
            if len(split):
                return predictor
    raise AssertionError("no categorical split in the benign model")


def empty_bitsets(model: Any) -> None:
    predictor = categorical_split(model)
    predictor.raw_left_cat_bitsets = predictor.raw_left_cat_bitsets[:0].copy()


def category_past_255(model: Any) -> None:
    # The preprocessor puts categorical columns first: the bin mapper's categorical feature is column 0.
    index = int(np.flatnonzero(model._bin_mapper.is_categorical_)[0])
    model._bin_mapper.bin_thresholds_[index] = np.array([0.0, 300.0])


def narrow_preprocessor(model: Any) -> None:
    # The numerical columns lose one: the preprocessor's output is one column short of the predictors'.
    if "_preprocessor" not in vars(model):  # scikit-learn < 1.4 writes none: a file adding one
        from sklearn.compose import ColumnTransformer

        model._preprocessor = ColumnTransformer([("narrow", "passthrough", [0, 1])]).fit(X_CATEGORICAL)
        return
    name, transformer, columns = model._preprocessor.transformers_[1]
    narrowed = np.asarray(columns).copy()
    narrowed[np.flatnonzero(narrowed)[0]] = False
    model._preprocessor.transformers_[1] = (name, transformer, narrowed)
    model._preprocessor._transformer_to_input_indices[name] = list(np.flatnonzero(narrowed))


def narrow_fit_x(model: Any) -> None:
    model._fit_X = np.ascontiguousarray(model._fit_X[:, :2])


def short_weights(model: Any) -> None:
    model.effective_metric_params_ = {**model.effective_metric_params_, "w": np.ones(2)}


def narrow_density_tree(model: Any) -> None:
    from sklearn.neighbors import KDTree

    model.tree_ = KDTree(X[:, :2])


def short_dual_coefficients(model: Any) -> None:
    model._dual_coef_ = np.ascontiguousarray(model._dual_coef_[:, :-1])


def short_bspline(model: Any) -> None:
    spline = model.bsplines_[0]
    knots = spline.t[:4]
    if "_t" in vars(spline):
        spline._t = knots
    else:
        spline.t = knots


def short_norms(model: Any) -> None:
    model._subcluster_norms = model._subcluster_norms[:1].copy()


def short_thresholds(model: Any) -> None:
    model.y_thresholds_ = model.y_thresholds_[:-1].copy()


def sparse_index_out_of_range() -> Any:
    import scipy.sparse

    matrix = scipy.sparse.csr_matrix(np.eye(3))
    matrix.indices[0] = 7
    return {"weights": matrix}


def libsvm() -> Any:
    from sklearn.svm import SVR

    return SVR().fit(X, X[:, 0])


def isotonic() -> Any:
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression().fit(X[:, 0], X[:, 1])


def make(name: str, *args: Any, **kwargs: Any) -> Callable[[], Any]:
    def make() -> Any:
        import importlib

        module, _, attr = name.rpartition(".")
        estimator = getattr(importlib.import_module(module), attr)(*args, **kwargs)
        rows, target = (X, Y) if "Classifier" in attr else (X, None)
        return estimator.fit(rows) if target is None else estimator.fit(rows, target)

    return make


# -- crafted files --------------------------------------------------------------------------------------------


def dtype_field_past_itemsize() -> Any:
    state = np.dtype({"names": ["a"], "formats": ["<f8"], "offsets": [0], "itemsize": 8}).__reduce__()[2]
    return Forge(np.dtype, ("V8", False, True), (*state[:4], {"a": (np.dtype("<f8"), 4)}, *state[5:]))


def array_short_bytes() -> Any:
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy's _reconstruct, under numpy 1 or 2

    return Forge(reconstruct, (np.ndarray, (0,), b"b"), (1, (10,), np.dtype("f8"), False, b"\0" * 8))


def buffer_short() -> Any:
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # numpy's _frombuffer, under numpy 1 or 2

    return Forge(frombuffer, (bytes(8), np.dtype("f8"), (10,), "C"))


def masked_short_mask() -> Any:
    from numpy.ma.core import _mareconstruct

    data = np.arange(4.0).tobytes()
    return Forge(
        _mareconstruct, (np.ma.MaskedArray, np.ndarray, (0,), b"b"), (1, (4,), np.dtype("f8"), False, data, b"\0", None)
    )


def wrapper_negative_shape() -> Any:
    # joblib's array header: NEWOBJ NumpyArrayWrapper, then its fields by BUILD (here a negative shape).
    import pickle

    state = {"subclass": np.ndarray, "shape": (-1,), "order": "C", "dtype": np.dtype("f8"), "allow_mmap": False}
    fields = pickle.dumps(state, protocol=2)[2:-1]
    return RawFile(b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81" + fields + b"b.")


def random_state_short_key(args: tuple, state: Any) -> tuple[tuple, Any]:
    return args, {**state, "state": {**state["state"], "key": state["state"]["key"][:10].copy()}}


def partial_of_other_function() -> Any:
    from sklearn.feature_selection import f_classif
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(functools.partial(f_classif)).fit(X)


def loss_with_text_parameter() -> Any:
    from sklearn._loss._loss import CyHalfTweedieLoss

    return Forge(CyHalfTweedieLoss, ("1.5",))


def tree_without_features(args: tuple, state: Any) -> tuple[tuple, Any]:
    return (0, args[1], args[2]), state


def wider_member(model: Any) -> None:
    from sklearn.tree import DecisionTreeClassifier

    model.estimators_[1].tree_ = DecisionTreeClassifier(random_state=0).fit(np.c_[X, X], Y).tree_


def minkowski_weights(count: int) -> Any:
    from sklearn.metrics import DistanceMetric

    return DistanceMetric.get_metric("minkowski", p=2, w=np.ones(count))
