"""One mutation per row of the invariant table (lambdas/training_gate/inspector/invariants/table.json): a
benign model, or a crafted file, that breaks exactly that row, and the refusal it must meet.

Three kinds of mutation:
- an object mutation edits a fitted model's Python attributes, then it is saved by each path;
- a forged state makes pickle and skops write a Cython object (Tree, KD/Ball tree, metric, loss, random
  state) with an edited state, which the object itself would not hold in this process;
- a crafted file is written opcode by opcode (numpy's and joblib's own objects).
"""

from __future__ import annotations

import copyreg
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tests.unit.zoo_data import X_CATEGORICAL, Y_BINARY, X, Y

ALL_PATHS = ("joblib", "pickle", "skops")


@dataclass
class Mutation:
    row: str
    expect: str  # a regex the refusal's message matches
    build: Callable[[], Any]  # the mutated object (or a Forge) to save
    paths: tuple[str, ...] = ALL_PATHS
    forge: tuple[type, Callable[[tuple, Any], tuple[tuple, Any]], str] | None = None  # (class, edit, skops loader)
    benign: Callable[[], Any] | None = None  # the same model unmutated: it must load
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class RawFile(bytes):
    """A file written byte by byte, saved as it is on every path."""


class Forge:
    """An object that pickles as the given reduce tuple: how a crafted file is written with pickle."""

    def __init__(self, *reduce: Any):
        self.reduce = reduce

    def __reduce__(self) -> tuple:
        return self.reduce


@contextmanager
def forged(cls: type, edit: Callable[[tuple, Any], tuple[tuple, Any]], loader: str) -> Iterator[None]:
    """While saving, objects of `cls` are written with their (args, state) passed through `edit`: by
    pickle and joblib (copyreg's dispatch table) and by skops (its state dispatcher)."""
    from skops.io import _utils
    from skops.io._utils import get_module, get_state

    def reduce(obj: Any) -> tuple:
        parts = obj.__reduce__()
        args, state = edit(parts[1], parts[2] if len(parts) > 2 else None)
        return (parts[0], args, state)

    def skops_state(obj: Any, context: Any) -> dict[str, Any]:
        parts = obj.__reduce__()
        args, state = edit(parts[1], parts[2] if len(parts) > 2 else None)
        node = {"__class__": cls.__name__, "__module__": get_module(cls), "__loader__": loader}
        if loader == "ObjectNode":
            node["content"] = get_state(state, context)
        else:
            node["__reduce__"] = {"args": get_state(args, context)}
            node["content"] = get_state(state if state is not None else {}, context)
        return node

    previous_copyreg = copyreg.dispatch_table.get(cls)
    previous_skops = _utils._get_state.dispatch(cls)
    copyreg.pickle(cls, reduce)
    _utils._get_state.register(cls, skops_state)
    try:
        yield
    finally:
        if previous_copyreg is None:
            copyreg.dispatch_table.pop(cls, None)
        else:
            copyreg.dispatch_table[cls] = previous_copyreg
        _utils._get_state.register(cls, previous_skops)


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


def _edit(make: Callable[[], Any], change: Callable[[Any], None]) -> Callable[[], Any]:
    def build() -> Any:
        model = make()
        change(model)
        return model

    return build


def _state_edit(key: Any, change: Callable[[Any], Any]) -> Callable[[tuple, Any], tuple[tuple, Any]]:
    """An edit of one entry of a dict or tuple state."""

    def edit(args: tuple, state: Any) -> tuple[tuple, Any]:
        if isinstance(state, dict):
            return args, {**state, key: change(state[key])}
        items = list(state)
        items[key] = change(items[key])
        return args, tuple(items)

    return edit


def _nodes(change: Callable[[np.ndarray], None]) -> Callable[[Any], Any]:
    def edit(nodes: np.ndarray) -> np.ndarray:
        nodes = nodes.copy()
        change(nodes)
        return nodes

    return edit


def _kd_tree_class() -> type:
    return type(neighbours("kd_tree")._tree)


def _ball_tree_class() -> type:
    return type(neighbours("ball_tree")._tree)


def _tree_class() -> type:
    from sklearn.tree._tree import Tree

    return Tree


def _metric_class() -> type:
    return type(neighbours("ball_tree")._tree.__getstate__()[11])


def _widen_stages(model: Any) -> None:
    # A binary model has one tree a stage; its stage array is widened to three with copies of that tree.
    model.estimators_ = np.concatenate([model.estimators_] * 3, axis=1)


def _multiclass_init_on_two_classes(model: Any) -> None:
    from sklearn.dummy import DummyClassifier

    model.init_ = DummyClassifier(strategy="prior").fit(X, Y_BINARY)


def _inner_node(predictor: Any) -> int:
    return int(np.flatnonzero(~predictor.nodes["is_leaf"].astype(bool))[0])


def _predictor_child(model: Any) -> None:
    predictor = model._predictors[0][0]
    predictor.nodes = predictor.nodes.copy()
    predictor.nodes["left"][_inner_node(predictor)] = 10_000


def _predictor_feature(model: Any) -> None:
    predictor = model._predictors[0][0]
    predictor.nodes = predictor.nodes.copy()
    predictor.nodes["feature_idx"][_inner_node(predictor)] = 99


def _categorical_split(model: Any) -> Any:
    for iteration in model._predictors:
        for predictor in iteration:
            nodes = predictor.nodes
            split = np.flatnonzero(~nodes["is_leaf"].astype(bool) & nodes["is_categorical"].astype(bool))
            if len(split):
                return predictor
    raise AssertionError("no categorical split in the benign model")


def _empty_bitsets(model: Any) -> None:
    predictor = _categorical_split(model)
    predictor.raw_left_cat_bitsets = predictor.raw_left_cat_bitsets[:0].copy()


def _category_past_255(model: Any) -> None:
    # The preprocessor puts categorical columns first: the bin mapper's categorical feature is column 0.
    index = int(np.flatnonzero(model._bin_mapper.is_categorical_)[0])
    model._bin_mapper.bin_thresholds_[index] = np.array([0.0, 300.0])


def _narrow_preprocessor(model: Any) -> None:
    # The numerical columns lose one: the preprocessor's output is one column short of the predictors'.
    name, transformer, columns = model._preprocessor.transformers_[1]
    narrowed = np.asarray(columns).copy()
    narrowed[np.flatnonzero(narrowed)[0]] = False
    model._preprocessor.transformers_[1] = (name, transformer, narrowed)
    model._preprocessor._transformer_to_input_indices[name] = list(np.flatnonzero(narrowed))


def _narrow_fit_x(model: Any) -> None:
    model._fit_X = np.ascontiguousarray(model._fit_X[:, :2])


def _short_weights(model: Any) -> None:
    model.effective_metric_params_ = {**model.effective_metric_params_, "w": np.ones(2)}


def _narrow_density_tree(model: Any) -> None:
    from sklearn.neighbors import KDTree

    model.tree_ = KDTree(X[:, :2])


def _short_dual_coefficients(model: Any) -> None:
    model._dual_coef_ = np.ascontiguousarray(model._dual_coef_[:, :-1])


def _short_bspline(model: Any) -> None:
    spline = model.bsplines_[0]
    knots = spline.t[:4]
    if "_t" in vars(spline):
        spline._t = knots
    else:
        spline.t = knots


def _short_norms(model: Any) -> None:
    model._subcluster_norms = model._subcluster_norms[:1].copy()


def _short_thresholds(model: Any) -> None:
    model.y_thresholds_ = model.y_thresholds_[:-1].copy()


def _sparse_index_out_of_range() -> Any:
    import scipy.sparse

    matrix = scipy.sparse.csr_matrix(np.eye(3))
    matrix.indices[0] = 7
    return {"weights": matrix}


def _libsvm() -> Any:
    from sklearn.svm import SVR

    return SVR().fit(X, X[:, 0])


def _isotonic() -> Any:
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression().fit(X[:, 0], X[:, 1])


def _make(name: str, *args: Any, **kwargs: Any) -> Callable[[], Any]:
    def make() -> Any:
        import importlib

        module, _, attr = name.rpartition(".")
        estimator = getattr(importlib.import_module(module), attr)(*args, **kwargs)
        rows, target = (X, Y) if "Classifier" in attr else (X, None)
        return estimator.fit(rows) if target is None else estimator.fit(rows, target)

    return make


# -- crafted files --------------------------------------------------------------------------------------------


def _dtype_field_past_itemsize() -> Any:
    state = np.dtype({"names": ["a"], "formats": ["<f8"], "offsets": [0], "itemsize": 8}).__reduce__()[2]
    return Forge(np.dtype, ("V8", False, True), (*state[:4], {"a": (np.dtype("<f8"), 4)}, *state[5:]))


def _array_short_bytes() -> Any:
    from numpy._core.multiarray import _reconstruct

    return Forge(_reconstruct, (np.ndarray, (0,), b"b"), (1, (10,), np.dtype("f8"), False, b"\0" * 8))


def _buffer_short() -> Any:
    from numpy._core.numeric import _frombuffer

    return Forge(_frombuffer, (bytes(8), np.dtype("f8"), (10,), "C"))


def _masked_short_mask() -> Any:
    from numpy.ma.core import _mareconstruct

    data = np.arange(4.0).tobytes()
    return Forge(
        _mareconstruct, (np.ma.MaskedArray, np.ndarray, (0,), b"b"), (1, (4,), np.dtype("f8"), False, data, b"\0", None)
    )


def _wrapper_negative_shape() -> Any:
    # joblib's array header: NEWOBJ NumpyArrayWrapper, then its fields by BUILD (here a negative shape).
    import pickle

    state = {"subclass": np.ndarray, "shape": (-1,), "order": "C", "dtype": np.dtype("f8"), "allow_mmap": False}
    fields = pickle.dumps(state, protocol=2)[2:-1]
    return RawFile(b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81" + fields + b"b.")


def _random_state_short_key(args: tuple, state: Any) -> tuple[tuple, Any]:
    return args, {**state, "state": {**state["state"], "key": state["state"]["key"][:10].copy()}}


def _partial_of_other_function() -> Any:
    from sklearn.feature_selection import f_classif
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(functools.partial(f_classif)).fit(X)


def _loss_with_text_parameter() -> Any:
    from sklearn._loss._loss import CyHalfTweedieLoss

    return Forge(CyHalfTweedieLoss, ("1.5",))


def _tree_without_features(args: tuple, state: Any) -> tuple[tuple, Any]:
    return (0, args[1], args[2]), state


def mutations() -> list[Mutation]:
    tree_ = tree
    kd, ball = _kd_tree_class, _ball_tree_class
    return [
        # -- construction rows: crafted files (skops has no such bytes: numpy reads its .npy itself) --
        Mutation(
            "numpy-dtype-canonical",
            "numpy's constructor does not build",
            _dtype_field_past_itemsize,
            ("joblib", "pickle"),
        ),
        Mutation("numpy-array-bytes", "array bytes that are not exactly", _array_short_bytes, ("joblib", "pickle")),
        Mutation("numpy-buffer-size", "buffer exactly the size", _buffer_short, ("joblib", "pickle")),
        Mutation(
            "numpy-masked-state", "mask that is not one byte per element", _masked_short_mask, ("joblib", "pickle")
        ),
        Mutation("joblib-array-header", "joblib array header", _wrapper_negative_shape, ("joblib", "pickle")),
        Mutation(
            "numpy-random-state",
            "state whose 'state' is not shaped as numpy writes it|RandomState state with other fields",
            lambda: {"rng": np.random.RandomState(0)},
            forge=(np.random.RandomState, _random_state_short_key, "RandomStateNode"),
        ),
        Mutation("partial-check-array", "partial wraps check_array only", _partial_of_other_function),
        Mutation(
            "tree-constructor",
            "Tree takes",
            tree_,
            forge=(_tree_class(), _tree_without_features, "TreeNode"),
            benign=tree_,
        ),
        Mutation(
            "cython-loss-parameters",
            "takes no argument or one finite float",
            _loss_with_text_parameter,
            ("joblib", "pickle"),
        ),
        # -- state rows --
        Mutation(
            "tree-node-count",
            "invalid Tree: node_count is",
            tree_,
            forge=(_tree_class(), _state_edit("node_count", lambda n: n + 5), "TreeNode"),
            benign=tree_,
        ),
        Mutation(
            "tree-values-shape",
            "invalid Tree: values has shape",
            tree_,
            forge=(_tree_class(), _state_edit("values", lambda v: np.ascontiguousarray(v[:, :, :1])), "TreeNode"),
            benign=tree_,
        ),
        Mutation(
            "tree-children",
            "invalid Tree: left of node 0 is",
            tree_,
            forge=(
                _tree_class(),
                _state_edit("nodes", _nodes(lambda n: n["left_child"].__setitem__(0, 10**9))),
                "TreeNode",
            ),
            benign=tree_,
        ),
        Mutation(
            "tree-features",
            "invalid Tree: feature of a split is outside",
            tree_,
            forge=(_tree_class(), _state_edit("nodes", _nodes(lambda n: n["feature"].__setitem__(0, 4))), "TreeNode"),
            benign=tree_,
        ),
        Mutation(
            "tree-max-depth",
            "invalid Tree: max_depth is 1",
            tree_,
            forge=(_tree_class(), _state_edit("max_depth", lambda d: 1), "TreeNode"),
            benign=tree_,
        ),
        Mutation(
            "binary-tree-data",
            "idx_array is not a permutation",
            lambda: neighbours("kd_tree"),
            forge=(kd(), _state_edit(1, lambda a: np.where(np.arange(len(a)) == 0, 10**6, a)), "ObjectNode"),
            benign=lambda: neighbours("kd_tree"),
        ),
        Mutation(
            "binary-tree-nodes",
            "node_data has a sample range outside the data",
            lambda: neighbours("ball_tree"),
            forge=(ball(), _state_edit(2, _nodes(lambda n: n["idx_end"].__setitem__(0, 10**6))), "ObjectNode"),
            benign=lambda: neighbours("ball_tree"),
        ),
        Mutation(
            "binary-tree-bounds",
            r"node_bounds has shape \(1, .*\), not \(2, ",
            lambda: neighbours("kd_tree"),
            forge=(kd(), _state_edit(3, lambda b: np.ascontiguousarray(b[:1])), "ObjectNode"),
            benign=lambda: neighbours("kd_tree"),
        ),
        Mutation(
            "binary-tree-metric",
            "dist_metric.vec has 2 weights for 4 features",
            lambda: neighbours("ball_tree", metric="minkowski", metric_params={"w": np.ones(4)}),
            forge=(ball(), _state_edit(11, lambda m: _minkowski_weights(2)), "ObjectNode"),
            benign=lambda: neighbours("ball_tree", metric="minkowski", metric_params={"w": np.ones(4)}),
        ),
        Mutation(
            "distance-metric-state",
            "p is -1.0, not a positive float",
            lambda: neighbours("ball_tree"),
            forge=(_metric_class(), _state_edit(0, lambda p: -1.0), "ObjectNode"),
            benign=lambda: neighbours("ball_tree"),
        ),
        Mutation(
            "sparse-indices", "csr_matrix: indices/indptr fail scipy's full format check", _sparse_index_out_of_range
        ),
        Mutation("isotonic-thresholds", "y_thresholds_ has", _edit(_isotonic, _short_thresholds), benign=_isotonic),
        # -- model rows: object mutations --
        Mutation(
            "tree-estimator-width",
            "tree_.n_features is 4, the estimator has 3",
            _edit(tree_, lambda m: setattr(m, "n_features_in_", 3)),
            benign=tree_,
        ),
        Mutation(
            "ensemble-member-width",
            r"estimators_\[1\]\.tree_\.n_features is 8, not 4",
            _edit(
                lambda: _make("sklearn.ensemble.RandomForestClassifier", n_estimators=2, random_state=0)(),
                _wider_member,
            ),
            benign=_make("sklearn.ensemble.RandomForestClassifier", n_estimators=2, random_state=0),
        ),
        Mutation(
            "gradient-boosting-stages",
            "estimators_ has 3 trees a stage, n_trees_per_iteration_ is 1",
            _edit(lambda: gradient_boosting(Y_BINARY), _widen_stages),
            benign=lambda: gradient_boosting(Y_BINARY),
        ),
        Mutation(
            "gradient-boosting-init",
            r"init_\.classes_ do not match",
            _edit(gradient_boosting, _multiclass_init_on_two_classes),
            benign=gradient_boosting,
        ),
        Mutation(
            "hgb-predictor-nodes",
            r"TreePredictor: nodes\.left of node",
            _edit(hgb_categorical, _predictor_child),
            benign=hgb_categorical,
        ),
        Mutation(
            "hgb-predictor-bitsets",
            r"nodes\.bitset_idx is past the 0 raw_left_cat_bitsets",
            _edit(hgb_categorical, _empty_bitsets),
            benign=hgb_categorical,
        ),
        Mutation(
            "hgb-bin-mapper-categories",
            r"bin_thresholds_\[0\] holds a category outside 0\.\.255",
            _edit(hgb_categorical, _category_past_255),
            benign=hgb_categorical,
        ),
        Mutation(
            "hgb-feature-width",
            r"_predictors\.nodes\.feature_idx is past the 5 features",
            _edit(hgb_categorical, _predictor_feature),
            benign=hgb_categorical,
        ),
        Mutation(
            "hgb-preprocessor-width",
            "do not use each input column exactly once",
            _edit(hgb_categorical, _narrow_preprocessor),
            benign=hgb_categorical,
        ),
        Mutation(
            "neighbors-fit-data",
            "_fit_X has 2 columns for 4 features",
            _edit(lambda: neighbours("brute"), _narrow_fit_x),
            benign=lambda: neighbours("brute"),
        ),
        Mutation(
            "neighbors-metric-parameters",
            r"effective_metric_params_\['w'\] has shape \(2,\), not \(4,\)",
            _edit(lambda: neighbours("brute", metric="minkowski", metric_params={"w": np.ones(4)}), _short_weights),
            benign=lambda: neighbours("brute", metric="minkowski", metric_params={"w": np.ones(4)}),
        ),
        Mutation(
            "kernel-density-tree",
            "tree_.data has 2 columns for 4 features",
            _edit(_make("sklearn.neighbors.KernelDensity"), _narrow_density_tree),
            benign=_make("sklearn.neighbors.KernelDensity"),
        ),
        Mutation(
            "libsvm-model",
            r"_dual_coef_ has shape \(1, \d+\), not \(1, \d+\)",
            _edit(_libsvm, _short_dual_coefficients),
            benign=_libsvm,
        ),
        Mutation(
            "kmeans-centers",
            r"cluster_centers_ has shape \(3, 2\) for 4 features",
            _edit(
                _make("sklearn.cluster.KMeans", n_clusters=3, n_init=1, random_state=0),
                lambda m: setattr(m, "cluster_centers_", np.zeros((3, 2))),
            ),
            benign=_make("sklearn.cluster.KMeans", n_clusters=3, n_init=1, random_state=0),
        ),
        Mutation(
            "bisecting-tree-centers",
            r"_bisecting_tree\.center has 1 values for 4 features",
            _edit(
                _make("sklearn.cluster.BisectingKMeans", n_clusters=3, random_state=0),
                lambda m: setattr(m._bisecting_tree.left, "center", np.zeros(1)),
            ),
            benign=_make("sklearn.cluster.BisectingKMeans", n_clusters=3, random_state=0),
        ),
        Mutation(
            "bspline-knots",
            "invalid _?BSpline: t has 4 knots",
            _edit(_make("sklearn.preprocessing.SplineTransformer"), _short_bspline),
            benign=_make("sklearn.preprocessing.SplineTransformer"),
        ),
        Mutation(
            "birch-subcluster-norms",
            "_subcluster_norms has 1 norms",
            _edit(_make("sklearn.cluster.Birch", n_clusters=3), _short_norms),
            ("joblib", "pickle"),
            benign=_make("sklearn.cluster.Birch", n_clusters=3),
            note="skops cannot save Birch",
        ),
    ]


def _wider_member(model: Any) -> None:
    from sklearn.tree import DecisionTreeClassifier

    model.estimators_[1].tree_ = DecisionTreeClassifier(random_state=0).fit(np.c_[X, X], Y).tree_


def _minkowski_weights(count: int) -> Any:
    from sklearn.metrics import DistanceMetric

    return DistanceMetric.get_metric("minkowski", p=2, w=np.ones(count))
