"""Structural validation of the objects whose arrays C or Cython code indexes without checking.

scikit-learn's Cython objects trust their state: a tree child index out of range reads (or writes)
outside an array, a node pointing back up loops forever, a support-vector count larger than the
array is read past its end. An allowlist decides which classes may be built; it does not make their
state safe. So every loaded model is walked before anything predicts, and each object of a class on
`VALIDATORS` is checked field by field; a failure names the class and the field, and fails `load`.

The audit, in code: `VALIDATORS` lists every allowlisted class whose state C code indexes (the
Cython objects and the estimators that hand arrays to C), and `NO_INDEXED_STATE` lists the other
allowlisted extension types with the reason they need no check. A test keeps both in step with the
allowlist: an extension type on neither list fails it, and such a class must leave the allowlist.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from scipy import sparse

TREE_LEAF = -1
# Walking a model visits each object once; a pickle that claims more objects than this is refused.
MAX_OBJECTS = 5_000_000


class InvalidStructure(ValueError):
    """An object's state would make C code read or write outside its arrays, or loop."""

    def __init__(self, cls: str, field: str, problem: str):
        super().__init__(f"invalid {cls}: {field} {problem}")
        self.cls = cls
        self.field = field


def _fail(obj: Any, field: str, problem: str) -> InvalidStructure:
    return InvalidStructure(type(obj).__name__, field, problem)


def _array(obj: Any, field: str, value: Any, ndim: int | None = None, kind: str | None = None) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise _fail(obj, field, f"is {type(value).__name__}, not an array")
    if ndim is not None and value.ndim != ndim:
        raise _fail(obj, field, f"has {value.ndim} dimensions, not {ndim}")
    if kind is not None and value.dtype.kind not in kind:
        raise _fail(obj, field, f"has dtype {value.dtype}")
    return value


def _int(obj: Any, field: str, value: Any, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _fail(obj, field, f"is {type(value).__name__}, not an integer")
    if value < low or (high is not None and value > high):
        raise _fail(obj, field, f"is {value}, outside [{low}, {high if high is not None else 'inf'}]")
    return int(value)


def _check_tree_links(obj: Any, left: np.ndarray, right: np.ndarray, leaf: np.ndarray, prefix: str) -> np.ndarray:
    """Children of node i lie after i and inside the array, and every node but the root has exactly
    one parent: a tree, so every descent ends at a leaf. Returns each node's depth."""
    count = len(left)
    index = np.arange(count)
    inner = ~leaf
    for field, child in (("left", left), ("right", right)):
        bad = inner & ((child <= index) | (child >= count))
        if bad.any():
            node = int(np.flatnonzero(bad)[0])
            raise _fail(obj, f"{prefix}{field}", f"of node {node} is {int(child[node])}, not a later node < {count}")
    parents = np.zeros(count, dtype=np.int64)
    np.add.at(parents, left[inner].astype(np.int64), 1)
    np.add.at(parents, right[inner].astype(np.int64), 1)
    if (count and parents[0] != 0) or (parents[1:] != 1).any():
        raise _fail(obj, f"{prefix}children", "do not form a tree: a node has no parent or two")
    # Level by level from the root: a proper tree (checked above), so each node is reached once.
    depth = np.zeros(count, dtype=np.int64)
    frontier, level = np.zeros(1, dtype=np.int64), 0
    while frontier.size:
        depth[frontier] = level
        split = frontier[inner[frontier]]
        frontier = np.concatenate([left[split], right[split]]).astype(np.int64)
        level += 1
    return depth


# -- scikit-learn Tree -------------------------------------------------------------------------------


def validate_tree(tree: Any) -> None:
    state = tree.__getstate__()
    n_features = _int(tree, "n_features", tree.n_features, 1)
    n_outputs = _int(tree, "n_outputs", tree.n_outputs, 1)
    n_classes = _array(tree, "n_classes", tree.n_classes, 1, "iu")
    if len(n_classes) != n_outputs or (n_classes < 1).any():
        raise _fail(tree, "n_classes", f"has {len(n_classes)} entries for {n_outputs} outputs, or a count < 1")
    nodes = _array(tree, "nodes", state["nodes"], 1)
    node_count = _int(tree, "node_count", state["node_count"], 1)
    if len(nodes) != node_count:
        raise _fail(tree, "node_count", f"is {node_count} for {len(nodes)} nodes")
    values = _array(tree, "values", state["values"], 3)
    if values.shape != (node_count, n_outputs, int(n_classes.max())):
        raise _fail(tree, "values", f"has shape {values.shape}")
    left, right = nodes["left_child"], nodes["right_child"]
    leaf = left == TREE_LEAF
    if (right[leaf] != TREE_LEAF).any():
        raise _fail(tree, "right_child", "of a leaf is not TREE_LEAF")
    depth = _check_tree_links(tree, left, right, leaf, "")
    feature = nodes["feature"][~leaf]
    if ((feature < 0) | (feature >= n_features)).any():
        raise _fail(tree, "feature", f"of a split is outside [0, {n_features})")
    # decision_path sizes its output by max_depth: a deeper path would write past it.
    max_depth = _int(tree, "max_depth", state["max_depth"], 0)
    if int(depth.max()) > max_depth:
        raise _fail(tree, "max_depth", f"is {max_depth}, the tree is {int(depth.max())} deep")


def validate_tree_holder(estimator: Any) -> None:
    """A single tree estimator predicts with X checked against its n_features_in_ only."""
    tree = getattr(estimator, "tree_", None)
    n_features = getattr(estimator, "n_features_in_", None)
    if tree is not None and n_features is not None and getattr(tree, "n_features", None) != n_features:
        raise _fail(estimator, "tree_.n_features", f"is {tree.n_features}, the estimator has {n_features}")


def validate_ensemble(estimator: Any) -> None:
    """Ensembles pass X to their trees without checking it again (check_input=False, or Cython)."""
    members = getattr(estimator, "estimators_", None)
    n_features = getattr(estimator, "n_features_in_", None)
    if members is None or n_features is None:
        return
    flat = list(np.asarray(members, dtype=object).ravel()) if isinstance(members, np.ndarray) else list(members)
    subsets = getattr(estimator, "estimators_features_", None)
    for position, member in enumerate(flat):
        width = n_features
        if subsets is not None:
            features = _array(estimator, "estimators_features_", np.asarray(subsets[position]), 1, "iu")
            if len(features) and (features.min() < 0 or features.max() >= n_features):
                raise _fail(estimator, "estimators_features_", f"of member {position} index outside the features")
            width = len(features)
        tree = getattr(member, "tree_", None)
        if tree is not None and tree.n_features != width:
            raise _fail(estimator, f"estimators_[{position}].tree_.n_features", f"is {tree.n_features}, not {width}")


# -- histogram gradient boosting -------------------------------------------------------------------------


def validate_predictor(predictor: Any) -> None:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE, X_BITSET_INNER_DTYPE

    nodes = _array(predictor, "nodes", predictor.nodes, 1)
    if nodes.dtype != PREDICTOR_RECORD_DTYPE or not len(nodes):
        raise _fail(predictor, "nodes", f"has dtype {nodes.dtype} or no node")
    leaf = nodes["is_leaf"].astype(bool)
    _check_tree_links(predictor, nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), leaf, "nodes.")
    if (nodes["feature_idx"][~leaf] < 0).any():
        raise _fail(predictor, "nodes.feature_idx", "is negative")
    for field in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        bitsets = _array(predictor, field, getattr(predictor, field), 2)
        if bitsets.dtype != X_BITSET_INNER_DTYPE or bitsets.shape[1] != 8 or not bitsets.flags.c_contiguous:
            raise _fail(predictor, field, f"has shape {bitsets.shape} and dtype {bitsets.dtype}")
        categorical = ~leaf & nodes["is_categorical"].astype(bool)
        if (nodes["bitset_idx"][categorical] >= len(bitsets)).any():
            raise _fail(predictor, "nodes.bitset_idx", f"is past the {len(bitsets)} {field}")


def validate_bin_mapper(mapper: Any) -> None:
    categorical = getattr(mapper, "is_categorical_", None)
    thresholds = getattr(mapper, "bin_thresholds_", None)
    if categorical is None or thresholds is None:
        return
    categorical = _array(mapper, "is_categorical_", categorical, 1)
    if len(thresholds) != len(categorical):
        raise _fail(mapper, "bin_thresholds_", f"has {len(thresholds)} entries for {len(categorical)} features")
    for index in np.flatnonzero(categorical):
        # Categories become bit positions in 8 x 32-bit words: 256 values at most.
        values = _array(mapper, f"bin_thresholds_[{index}]", np.asarray(thresholds[index]), 1)
        if len(values) and (values.min() < 0 or values.max() >= 256 or (values != np.floor(values)).any()):
            raise _fail(mapper, f"bin_thresholds_[{index}]", "holds a category outside 0..255")


def validate_hist_gradient_boosting(estimator: Any) -> None:
    n_features = getattr(estimator, "n_features_in_", None)
    predictors = getattr(estimator, "_predictors", None)
    if n_features is None or predictors is None:
        return
    mapper = getattr(estimator, "_bin_mapper", None)
    categorical = getattr(mapper, "is_categorical_", None)
    if categorical is not None and len(categorical) != n_features:
        raise _fail(estimator, "_bin_mapper.is_categorical_", f"has {len(categorical)} entries for {n_features}")
    for iteration in predictors:
        for predictor in iteration:
            nodes = predictor.nodes
            inner = ~nodes["is_leaf"].astype(bool)
            if (nodes["feature_idx"][inner] >= n_features).any():
                raise _fail(estimator, "_predictors.nodes.feature_idx", f"is past the {n_features} features")
            uses = inner & nodes["is_categorical"].astype(bool)
            if uses.any() and (categorical is None or not categorical[nodes["feature_idx"][uses]].all()):
                raise _fail(
                    estimator, "_predictors.nodes.is_categorical", "splits on a feature that is not categorical"
                )


# -- neighbours ----------------------------------------------------------------------------------------


def validate_binary_tree(tree: Any) -> None:
    state = tree.__getstate__()
    data, idx_array, node_data, node_bounds = state[0], state[1], state[2], state[3]
    leaf_size, n_levels = state[4], state[5]
    metric, sample_weight = state[-2], state[-1]
    data = _array(tree, "data", data, 2, "f")
    n_samples, n_features = data.shape
    if not n_samples or not n_features:
        raise _fail(tree, "data", "is empty")
    idx = _array(tree, "idx_array", idx_array, 1, "iu")
    if len(idx) != n_samples or not np.array_equal(np.bincount(idx, minlength=n_samples), np.ones(n_samples)):
        raise _fail(tree, "idx_array", "is not a permutation of the samples")
    _int(tree, "leaf_size", leaf_size, 1)
    n_levels = _int(tree, "n_levels", n_levels, 1, 62)
    nodes = _array(tree, "node_data", node_data, 1)
    n_nodes = len(nodes)
    if n_nodes != 2**n_levels - 1:
        raise _fail(tree, "node_data", f"has {n_nodes} nodes, not 2**n_levels - 1 for {n_levels} levels")
    start, end = nodes["idx_start"], nodes["idx_end"]
    if (start < 0).any() or (end > n_samples).any() or (start > end).any():
        raise _fail(tree, "node_data", "has a sample range outside the data")
    # Children of node i are 2i+1 and 2i+2, implied, not stored: an inner node must have them.
    inner = np.flatnonzero(nodes["is_leaf"] == 0)
    if len(inner) and 2 * int(inner.max()) + 2 >= n_nodes:
        raise _fail(tree, "node_data.is_leaf", "marks a node without children as inner")
    bounds = _array(tree, "node_bounds", node_bounds, 3, "f")
    if bounds.shape[1:] != (n_nodes, n_features) or bounds.shape[0] not in (1, 2):
        raise _fail(tree, "node_bounds", f"has shape {bounds.shape}")
    if sample_weight is not None and len(_array(tree, "sample_weight", sample_weight, 1, "f")) != n_samples:
        raise _fail(tree, "sample_weight", "does not have one weight per sample")
    validate_metric(metric, n_features, tree)


def validate_metric(metric: Any, n_features: int | None = None, owner: Any = None) -> None:
    name = type(metric).__name__
    allowed = _METRIC_WIDTH_RULES.get(name.rstrip("0123456789"))
    if allowed is None:
        raise _fail(owner if owner is not None else metric, "dist_metric", f"is {name}, not a validated metric")
    _p, vec, mat = metric.__reduce__()[2]
    vec = _array(metric, "vec", vec, 1, "f")
    mat = _array(metric, "mat", mat, 2, "f")
    if n_features is not None:
        allowed(metric, n_features, vec, mat)


def _width_any(metric: Any, n_features: int, vec: np.ndarray, mat: np.ndarray) -> None:
    return None


def _width_minkowski(metric: Any, n_features: int, vec: np.ndarray, mat: np.ndarray) -> None:
    if len(vec) not in (0, n_features):
        raise _fail(metric, "vec", f"has {len(vec)} weights for {n_features} features")


def _width_seuclidean(metric: Any, n_features: int, vec: np.ndarray, mat: np.ndarray) -> None:
    if len(vec) != n_features:
        raise _fail(metric, "vec", f"has {len(vec)} variances for {n_features} features")


def _width_mahalanobis(metric: Any, n_features: int, vec: np.ndarray, mat: np.ndarray) -> None:
    if mat.shape != (n_features, n_features):
        raise _fail(metric, "mat", f"has shape {mat.shape} for {n_features} features")


def _width_haversine(metric: Any, n_features: int, vec: np.ndarray, mat: np.ndarray) -> None:
    if n_features != 2:
        raise _fail(metric, "data", f"has {n_features} features; haversine reads exactly 2")


_METRIC_WIDTH_RULES: dict[str, Callable[[Any, int, np.ndarray, np.ndarray], None]] = {
    "EuclideanDistance": _width_any,
    "ManhattanDistance": _width_any,
    "ChebyshevDistance": _width_any,
    "MinkowskiDistance": _width_minkowski,
    "SEuclideanDistance": _width_seuclidean,
    "MahalanobisDistance": _width_mahalanobis,
    "HaversineDistance": _width_haversine,
    "HammingDistance": _width_any,
    "CanberraDistance": _width_any,
    "BrayCurtisDistance": _width_any,
    "JaccardDistance": _width_any,
    "MatchingDistance": _width_any,
    "DiceDistance": _width_any,
    "KulsinskiDistance": _width_any,
    "RogersTanimotoDistance": _width_any,
    "RussellRaoDistance": _width_any,
    "SokalMichenerDistance": _width_any,
    "SokalSneathDistance": _width_any,
}


# -- scipy.sparse ------------------------------------------------------------------------------------------


def validate_sparse(matrix: Any) -> None:
    try:
        if matrix.format in ("csr", "csc"):
            matrix.check_format(full_check=True)
        else:
            matrix._check()
            rows, cols = matrix.shape
            for axis, (coords, bound) in enumerate(zip(matrix.coords, (rows, cols), strict=True)):
                if len(coords) != matrix.nnz or (len(coords) and (coords.min() < 0 or coords.max() >= bound)):
                    raise ValueError(f"coords[{axis}] index outside the shape")
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise _fail(matrix, "indices/indptr", f"fail scipy's full format check: {exc}") from exc


# -- libsvm and k-means ------------------------------------------------------------------------------------


def validate_libsvm(model: Any) -> None:
    """The arrays libsvm's predict copies into its model struct, sized by each other."""
    if not hasattr(model, "support_vectors_"):
        return  # not fitted: predict raises NotFittedError before any C code
    vectors = model.support_vectors_
    if hasattr(vectors, "format"):
        validate_sparse(vectors)
    elif _array(model, "support_vectors_", vectors, 2, "f").dtype != np.float64:
        raise _fail(model, "support_vectors_", "is not float64")
    n_sv = vectors.shape[0]
    support = _array(model, "support_", model.support_, 1, "i")
    fit_shape = model.shape_fit_
    if len(support) != n_sv or (n_sv and (support.min() < 0 or support.max() >= fit_shape[0])):
        raise _fail(model, "support_", "does not index the training rows once per support vector")
    if model.kernel != "precomputed" and n_sv and vectors.shape[1] != model.n_features_in_:
        raise _fail(model, "support_vectors_", f"has {vectors.shape[1]} columns for {model.n_features_in_} features")
    if model.kernel not in ("linear", "poly", "rbf", "sigmoid", "precomputed") and not callable(model.kernel):
        raise _fail(model, "kernel", f"is {model.kernel!r}")
    n_support = _array(model, "_n_support", model._n_support, 1, "i")
    classes = getattr(model, "classes_", None)
    classifier = classes is not None and model._impl in ("c_svc", "nu_svc")
    n_class = len(classes) if classifier else 2
    pairs = n_class * (n_class - 1) // 2 if classifier else 1
    if classifier and (len(n_support) != n_class or int(n_support.sum()) != n_sv or (n_support < 0).any()):
        raise _fail(model, "_n_support", f"does not split the {n_sv} support vectors over {n_class} classes")
    dual = _array(model, "_dual_coef_", model._dual_coef_, 2, "f")
    if dual.shape != ((n_class - 1) if classifier else 1, n_sv):
        raise _fail(model, "_dual_coef_", f"has shape {dual.shape}")
    if len(_array(model, "_intercept_", model._intercept_, 1, "f")) != pairs:
        raise _fail(model, "_intercept_", f"does not have {pairs} entries")
    for field in ("_probA", "_probB"):
        if len(_array(model, field, getattr(model, field), 1, "f")) not in (0, pairs):
            raise _fail(model, field, f"does not have 0 or {pairs} entries")
    weights = getattr(model, "class_weight_", None)
    if classifier and weights is not None and len(weights) != n_class:
        raise _fail(model, "class_weight_", f"does not have {n_class} entries")


def validate_kmeans(model: Any) -> None:
    centers = getattr(model, "cluster_centers_", None)
    if centers is None:
        return
    centers = _array(model, "cluster_centers_", centers, 2, "f")
    if centers.shape[1] != model.n_features_in_ or not centers.flags.c_contiguous or not len(centers):
        raise _fail(model, "cluster_centers_", f"has shape {centers.shape} for {model.n_features_in_} features")
    tree = getattr(model, "_bisecting_tree", None)
    if tree is not None:
        _validate_bisecting_tree(model, tree, int(model.n_features_in_))


def _validate_bisecting_tree(model: Any, root: Any, n_features: int) -> None:
    """BisectingKMeans.predict stacks a node's two child centers and hands them to the Cython k-means
    label routine, which reads as many columns of them as X has: every center must be that wide. A
    node has two children or none, and is reached once (predict recurses down it)."""
    from sklearn.cluster._bisect_k_means import _BisectingTree

    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if type(node) is not _BisectingTree:
            raise _fail(model, "_bisecting_tree", f"holds a {type(node).__name__}, not a _BisectingTree")
        if id(node) in seen:
            raise _fail(model, "_bisecting_tree", "reaches a node twice: not a tree")
        seen.add(id(node))
        center = _array(model, "_bisecting_tree.center", node.center, 1, "f")
        if len(center) != n_features:
            raise _fail(model, "_bisecting_tree.center", f"has {len(center)} values for {n_features} features")
        if (node.left is None) != (node.right is None):
            raise _fail(model, "_bisecting_tree", "has a node with one child")
        if node.left is None:
            _int(model, "_bisecting_tree.label", node.label, 0)
        else:
            pending.extend((node.left, node.right))


# -- scipy splines -------------------------------------------------------------------------------------------


def validate_bspline(spline: Any) -> None:
    """scipy's spline evaluation (C) finds a knot interval in t and reads k+1 coefficients from it:
    BSpline's constructor checks t against k and c, unpickling does not (SplineTransformer keeps one
    spline per feature). Its `t` and `c` are attributes in older scipy, properties in newer."""
    k = _int(spline, "k", spline.k, 0, 1 << 10)
    knots = _array(spline, "t", spline.t, 1, "f")
    coefficients = _array(spline, "c", spline.c, None, "fc")
    n = len(knots) - k - 1
    if n < k + 1:
        raise _fail(spline, "t", f"has {len(knots)} knots, fewer than 2k+2 = {2 * k + 2}")
    if not np.isfinite(knots).all() or (np.diff(knots) < 0).any():
        raise _fail(spline, "t", "is not finite and non-decreasing")
    if coefficients.ndim < 1 or coefficients.shape[0] < n:
        raise _fail(spline, "c", f"has shape {coefficients.shape}, fewer than the {n} coefficients t and k need")
    _int(spline, "axis", spline.axis, 0, max(coefficients.ndim - 1, 0))
    if spline.extrapolate not in (True, False, "periodic"):
        raise _fail(spline, "extrapolate", f"is {spline.extrapolate!r}")


# -- the registry ------------------------------------------------------------------------------------------

_TREE_ESTIMATORS = (
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._classes.ExtraTreeRegressor",
)
_ENSEMBLES = (
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
    "sklearn.ensemble._forest.RandomTreesEmbedding",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.ensemble._gb.GradientBoostingRegressor",
    "sklearn.ensemble._bagging.BaggingClassifier",
    "sklearn.ensemble._bagging.BaggingRegressor",
    "sklearn.ensemble._iforest.IsolationForest",
    "sklearn.ensemble._weight_boosting.AdaBoostClassifier",
    "sklearn.ensemble._weight_boosting.AdaBoostRegressor",
)
_METRICS = tuple(f"sklearn.metrics._dist_metrics.{name}{bits}" for name in _METRIC_WIDTH_RULES for bits in ("64", "32"))

VALIDATORS: dict[str, Callable[[Any], None]] = {
    "sklearn.tree._tree.Tree": validate_tree,
    **dict.fromkeys(_TREE_ESTIMATORS, validate_tree_holder),
    **dict.fromkeys(_ENSEMBLES, validate_ensemble),
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": validate_predictor,
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper": validate_bin_mapper,
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier": (
        validate_hist_gradient_boosting
    ),
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor": (
        validate_hist_gradient_boosting
    ),
    "sklearn.neighbors._kd_tree.KDTree": validate_binary_tree,
    "sklearn.neighbors._kd_tree.KDTree64": validate_binary_tree,
    "sklearn.neighbors._kd_tree.KDTree32": validate_binary_tree,
    "sklearn.neighbors._ball_tree.BallTree": validate_binary_tree,
    "sklearn.neighbors._ball_tree.BallTree64": validate_binary_tree,
    "sklearn.neighbors._ball_tree.BallTree32": validate_binary_tree,
    **dict.fromkeys(_METRICS, validate_metric),
    **{
        f"scipy.sparse._{fmt}.{fmt}_{kind}": validate_sparse
        for fmt in ("csr", "csc", "coo")
        for kind in ("matrix", "array")
    },
    **dict.fromkeys(
        (f"sklearn.svm._classes.{name}" for name in ("SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM")),
        validate_libsvm,
    ),
    "scipy.interpolate._bsplines.BSpline": validate_bspline,
    **dict.fromkeys(
        (
            "sklearn.cluster._kmeans.KMeans",
            "sklearn.cluster._kmeans.MiniBatchKMeans",
            "sklearn.cluster._bisect_k_means.BisectingKMeans",
        ),
        validate_kmeans,
    ),
}

# scikit-learn's losses: each exists as a Python class, as a Cython class, and as its unpickle function.
LOSS_NAMES = (
    "AbsoluteError",
    "ExponentialLoss",
    "HalfBinomialLoss",
    "HalfGammaLoss",
    "HalfMultinomialLoss",
    "HalfPoissonLoss",
    "HalfSquaredError",
    "HalfTweedieLoss",
    "HalfTweedieLossIdentity",
    "HuberLoss",
    "PinballLoss",
)

# Allowlisted extension types that need no structural check, and why.
NO_INDEXED_STATE: dict[str, str] = {
    **{
        f"sklearn._loss._loss.Cy{name}": "a Cython loss holds at most scalar parameters and indexes only its inputs"
        for name in LOSS_NAMES
    },
    **{
        f"numpy.random.{module}.{name}": "numpy checks a bit generator's state when it is set"
        for module, name in (
            ("_mt19937", "MT19937"),
            ("_pcg64", "PCG64"),
            ("_pcg64", "PCG64DXSM"),
            ("_philox", "Philox"),
            ("_sfc64", "SFC64"),
            ("bit_generator", "SeedSequence"),
            ("mtrand", "RandomState"),
            ("_generator", "Generator"),
        )
    },
    **{
        f"sklearn.linear_model._sgd_fast.{name}": (
            "an SGD loss holds at most one scalar (threshold or epsilon; its call rule checks it) and indexes "
            "only its inputs"
        )
        for name in (
            "Hinge",
            "Log",
            "ModifiedHuber",
            "SquaredLoss",
            "Huber",
            "EpsilonInsensitive",
            "SquaredEpsilonInsensitive",
            "SquaredHinge",
        )
    },
    **{
        name: "a Python core type rebuilt from scalars (its call rule checks them): no array state"
        for name in (
            "builtins.complex",
            "builtins.slice",
            "builtins.bytes",
            "__builtin__.bytes",
            "__builtin__.slice",
            "__builtin__.complex",
            "collections.OrderedDict",
        )
    },
}

# Functions a fitted model keeps as attribute values (a parameter such as score_func, or the routine fit
# chose), each with the only (class, attribute) places it may sit. The model's own code calls them, with
# arguments it builds; the same function moved to another attribute (FunctionTransformer.func, whose
# kw_args come from the file) would be called with arguments the file chose, and the k-means routines
# hand those to Cython that trusts their shapes. So a function anywhere else fails `load`.
_SCORE_FUNC_OWNERS = tuple(
    (f"sklearn.feature_selection._univariate_selection.{name}", "score_func")
    for name in ("SelectKBest", "SelectPercentile", "SelectFpr", "SelectFdr", "SelectFwe", "GenericUnivariateSelect")
)
FUNCTION_SLOTS: dict[str, frozenset[tuple[str, str]]] = {
    **{
        f"sklearn.feature_selection._univariate_selection.{name}": frozenset(_SCORE_FUNC_OWNERS)
        for name in ("f_classif", "f_regression", "chi2", "r_regression")
    },
    **{
        f"sklearn.feature_selection._mutual_info.{name}": frozenset(_SCORE_FUNC_OWNERS)
        for name in ("mutual_info_classif", "mutual_info_regression")
    },
    "numpy.mean": frozenset({("sklearn.cluster._agglomerative.FeatureAgglomeration", "pooling_func")}),
    **{
        f"sklearn.cluster._kmeans.{name}": frozenset(
            {("sklearn.cluster._bisect_k_means.BisectingKMeans", "_kmeans_single")}
        )
        for name in ("_kmeans_single_lloyd", "_kmeans_single_elkan")
    },
    # scipy >= 1.15 keeps the array namespace's asarray on each spline.
    "scipy._lib.array_api_compat.numpy._aliases.asarray": frozenset(
        {("scipy.interpolate._bsplines.BSpline", "_asarray")}
    ),
    # A scorer built from a scoring name (GridSearchCV(scoring="f1"), TunedThresholdClassifierCV's
    # balanced accuracy) keeps the metric; only fit and score call it.
    **{
        name: frozenset(
            {
                ("sklearn.metrics._scorer._Scorer", "_score_func"),
                ("sklearn.metrics._scorer._CurveScorer", "_score_func"),
            }
        )
        for name in (
            *(
                f"sklearn.metrics._classification.{metric}"
                for metric in (
                    "accuracy_score",
                    "balanced_accuracy_score",
                    "brier_score_loss",
                    "f1_score",
                    "jaccard_score",
                    "log_loss",
                    "matthews_corrcoef",
                    "precision_score",
                    "recall_score",
                )
            ),
            *(
                f"sklearn.metrics._ranking.{metric}"
                for metric in ("average_precision_score", "roc_auc_score", "top_k_accuracy_score")
            ),
            *(
                f"sklearn.metrics._regression.{metric}"
                for metric in (
                    "explained_variance_score",
                    "max_error",
                    "mean_absolute_error",
                    "mean_absolute_percentage_error",
                    "mean_gamma_deviance",
                    "mean_poisson_deviance",
                    "mean_squared_error",
                    "mean_squared_log_error",
                    "median_absolute_error",
                    "r2_score",
                    "root_mean_squared_error",
                    "root_mean_squared_log_error",
                )
            ),
        )
    },
    # Only inside the partial below, never held directly.
    "sklearn.utils.validation.check_array": frozenset(),
}
# HistGradientBoosting with categorical features runs its numeric columns through
# FunctionTransformer(partial(check_array, dtype=..., ensure_all_finite=False)): the partial may sit
# there only, and holds only check_array with keyword arguments of plain values (`validate_partial`).
PARTIAL_SLOTS = frozenset({("sklearn.preprocessing._function_transformer.FunctionTransformer", "func")})
# Functions scikit-learn's own __setstate__ puts back while loading (IsotonicRegression rebuilds its
# interp1d, which keeps the interpolation routine it chose): never in a file, so not on the allowlist.
_BUILT_WHILE_LOADING: dict[str, frozenset[tuple[str, str]]] = {
    f"scipy.interpolate._interpolate.interp1d.{name}": frozenset({("scipy.interpolate._interpolate.interp1d", "_call")})
    for name in ("_call_linear_np", "_call_linear")
}
_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType, np.ufunc, functools.partial)


def _function_name(obj: Any) -> str | None:
    """The qualified name of a function value (numpy's dispatchers are their own type), else None."""
    if isinstance(obj, functools.partial):
        return "functools.partial"
    if isinstance(obj, _FUNCTION_TYPES) or type(obj).__name__ == "_ArrayFunctionDispatcher":
        return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"
    return None


def _check_function_slot(obj: Any, owner: Any, key: str | None) -> None:
    name = _function_name(obj) or ""
    where = (qualified_name(type(owner)), key) if owner is not None and key is not None else None
    slots = PARTIAL_SLOTS if name == "functools.partial" else FUNCTION_SLOTS.get(name, _BUILT_WHILE_LOADING.get(name))
    if where is None or where not in (slots or frozenset()):
        place = f"{type(owner).__name__}.{key}" if where else "a container"
        raise InvalidStructure(
            "model", f"function {name}", f"sits in {place}, not in the attribute that may hold it; nothing was called"
        )
    if name == "functools.partial":
        validate_partial(obj)


_CHECK_ARRAY_KEYWORDS = frozenset(
    {"dtype", "ensure_all_finite", "force_all_finite", "accept_sparse", "copy", "order", "ensure_2d"}
)


def validate_partial(value: Any) -> None:
    """A partial calls its function with the arguments it holds, which a file chooses (its state is set
    after REDUCE built it): only check_array, with plain keyword arguments, is accepted."""
    from sklearn.utils.validation import check_array

    if value.func is not check_array or value.args != () or not isinstance(value.keywords, dict):
        raise _fail(value, "func", "is not check_array with keyword arguments only")
    for key, argument in value.keywords.items():
        if key not in _CHECK_ARRAY_KEYWORDS:
            raise _fail(value, "keywords", f"name {key!r}, not a check_array option the gate knows")
        parts = argument if isinstance(argument, (list, tuple)) else [argument]
        if not all(isinstance(p, (bool, str, type(None))) or p in _NUMPY_SCALAR_TYPES for p in parts):
            raise _fail(value, f"keywords[{key!r}]", "is not a plain value or a numpy type")


_NUMPY_SCALAR_TYPES = (np.float64, np.float32, np.int64, np.int32, np.uint8)
# A C type on the allowlist, so listed with its validator (the walk calls it where the partial sits).
VALIDATORS["functools.partial"] = validate_partial


# -- the walk ----------------------------------------------------------------------------------------------

_validation_enabled = [True]


def disable_for_tests() -> None:
    """Only the sandbox's test hooks call this: it lets a test show what an unvalidated object does."""
    _validation_enabled[0] = False


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def validate_model(root: Any) -> None:
    """Visit every object reachable from `root` once and validate each one on the list."""
    if not _validation_enabled[0]:
        return
    seen: set[int] = set()
    # Each entry: an object, and the instance and attribute name that hold it (None in a container).
    pending: list[tuple[Any, Any, str | None]] = [(root, None, None)]
    while pending:
        obj, owner, key = pending.pop()
        if isinstance(obj, (str, bytes, int, float, complex, bool, type(None), type)):
            continue
        if _function_name(obj) is not None:
            _check_function_slot(obj, owner, key)  # per place: one function may sit in two allowed places
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if len(seen) > MAX_OBJECTS:
            raise InvalidStructure("model", "object graph", f"has more than {MAX_OBJECTS} objects")
        validator = VALIDATORS.get(qualified_name(type(obj)))
        if validator is not None:
            validator(obj)
        pending.extend(_children(obj))


def _children(obj: Any) -> Iterable[tuple[Any, Any, str | None]]:
    if isinstance(obj, dict):
        return [(value, None, None) for value in (*obj.values(), *obj.keys())]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(value, None, None) for value in obj]
    if isinstance(obj, np.ndarray):
        return [(value, None, None) for value in obj.ravel().tolist()] if obj.dtype.hasobject else ()
    if hasattr(obj, "__dict__") and not sparse.issparse(obj):  # a sparse matrix is validated whole
        return [(value, obj, name if isinstance(name, str) else None) for name, value in vars(obj).items()]
    return ()  # an extension type (validated above when listed: its arrays hold no objects), or a leaf
