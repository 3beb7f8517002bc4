"""Invariants of nearest neighbours: the KD and Ball trees' arrays, the distance metrics they hold, and
the estimators' fitted data and metric parameters (brute force hands `_fit_X` to Cython distance loops
that read as many columns as the query has)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import sparse

from training_gate.inspector.invariants import invariant
from training_gate.inspector.invariants.base import array, attribute, fail, integer, width

_TREE_STATE_LENGTH = 13


def _classes(module: str, names: tuple[str, ...]) -> dict[int, tuple[type, str]]:
    """id -> (class, its name in this table): the classes these rules apply to, known by identity."""
    import importlib

    found: dict[int, tuple[type, str]] = {}
    loaded = importlib.import_module(module)
    for name in names:
        for suffix in ("", "64", "32"):
            cls = getattr(loaded, f"{name}{suffix}", None)
            if isinstance(cls, type):
                found[id(cls)] = (cls, name)
    return found


def _kind(obj: Any, table: dict[int, tuple[type, str]]) -> str | None:
    entry = table.get(id(type(obj)))
    return entry[1] if entry is not None and entry[0] is type(obj) else None


_KD = ("sklearn.neighbors._kd_tree", ("KDTree",))
_BALL = ("sklearn.neighbors._ball_tree", ("BallTree",))
_SIZED_METRICS = (
    "MinkowskiDistance",
    "WMinkowskiDistance",
    "SEuclideanDistance",
    "MahalanobisDistance",
    "HaversineDistance",
)
_CACHE: dict[str, dict[int, tuple[type, str]]] = {}


def _table(key: str) -> dict[int, tuple[type, str]]:
    if key not in _CACHE:
        _CACHE[key] = {
            "kd": lambda: _classes(*_KD),
            "ball": lambda: _classes(*_BALL),
            "metric": lambda: _classes("sklearn.metrics._dist_metrics", _SIZED_METRICS),
        }[key]()
    return _CACHE[key]


def _tree_state(tree: Any, state: tuple) -> tuple:
    if len(state) != _TREE_STATE_LENGTH:
        raise fail(tree, "state", f"has {len(state)} fields, not the {_TREE_STATE_LENGTH} the library writes")
    return state


def _data(tree: Any, state: tuple) -> np.ndarray:
    data = array(tree, "data", _tree_state(tree, state)[0], 2, "f")
    if data.dtype != np.float64 or not data.flags.c_contiguous or not data.shape[0] or not data.shape[1]:
        raise fail(tree, "data", f"is {data.shape} {data.dtype}: not non-empty contiguous float64 rows")
    return data


def _node_count(tree: Any, state: tuple) -> int:
    n_levels = integer(tree, "n_levels", state[5], 1, 62)
    n_nodes = integer(tree, "n_nodes", state[6], 1)
    nodes = array(tree, "node_data", state[2], 1)
    if n_nodes != 2**n_levels - 1 or len(nodes) != n_nodes:
        raise fail(tree, "node_data", f"has {len(nodes)} nodes, n_nodes {n_nodes}, for {n_levels} levels")
    return n_nodes


@invariant("binary-tree-data")
def binary_tree_data(tree: Any, state: tuple) -> None:
    n_samples = len(_data(tree, state))
    idx = array(tree, "idx_array", state[1], 1, "i")
    if idx.dtype != np.intp or len(idx) != n_samples or not np.array_equal(np.sort(idx), np.arange(n_samples)):
        raise fail(tree, "idx_array", "is not a permutation of the samples")
    integer(tree, "leaf_size", state[4], 1)
    for position, field in enumerate(("n_trims", "n_leaves", "n_splits", "n_calls"), start=7):
        integer(tree, field, state[position], 0)
    weights = state[12]
    if weights is not None:
        weights = array(tree, "sample_weight", weights, 1, "f")
        if weights.dtype != np.float64 or len(weights) != n_samples:
            raise fail(tree, "sample_weight", "is not one float64 weight per sample")


@invariant("binary-tree-nodes")
def binary_tree_nodes(tree: Any, state: tuple) -> None:
    from sklearn.neighbors._kd_tree import KDTree

    n_samples = len(_data(tree, state))
    n_nodes = _node_count(tree, state)
    nodes = state[2]
    expected = KDTree(np.zeros((1, 1))).__getstate__()[2].dtype
    if nodes.dtype != expected:
        raise fail(tree, "node_data", f"has dtype {nodes.dtype}, not the library's node record")
    start, end = nodes["idx_start"], nodes["idx_end"]
    if (start < 0).any() or (end > n_samples).any() or (start > end).any():
        raise fail(tree, "node_data", "has a sample range outside the data")
    # Children of node i are 2i+1 and 2i+2, implied, not stored: an inner node must have them.
    inner = np.flatnonzero(nodes["is_leaf"] == 0)
    if len(inner) and 2 * int(inner.max()) + 2 >= n_nodes:
        raise fail(tree, "node_data.is_leaf", "marks a node without children as inner")


@invariant("binary-tree-bounds")
def binary_tree_bounds(tree: Any, state: tuple) -> None:
    """A KD tree keeps a lower and an upper corner per node, a Ball tree one centroid."""
    data = _data(tree, state)
    n_nodes = _node_count(tree, state)
    corners = 2 if _kind(tree, _table("kd")) else 1
    bounds = array(tree, "node_bounds", state[3], 3, "f")
    expected = (corners, n_nodes, data.shape[1])
    if bounds.shape != expected or bounds.dtype != np.float64 or not bounds.flags.c_contiguous:
        raise fail(tree, "node_bounds", f"has shape {bounds.shape}, not {expected} for a {type(tree).__name__}")


@invariant("binary-tree-metric")
def binary_tree_metric(tree: Any, state: tuple) -> None:
    """The tree calls its metric with its own width; the metric reads that many weights or rows."""
    from sklearn.metrics import DistanceMetric

    metric = _tree_state(tree, state)[11]
    if not isinstance(metric, DistanceMetric):
        raise fail(tree, "dist_metric", f"is {type(metric).__name__}, not a distance metric")
    metric_width(tree, metric, _data(tree, state).shape[1])


def _metric_arrays(metric: Any) -> tuple[float, np.ndarray, np.ndarray]:
    p, vec, mat = metric.__getstate__()[:3]
    return p, vec, mat


def metric_width(owner: Any, metric: Any, n_features: int) -> None:
    name = _kind(metric, _table("metric"))
    _p, vec, mat = _metric_arrays(metric)
    if name in ("MinkowskiDistance", "WMinkowskiDistance") and len(vec) not in (0, n_features):
        raise fail(owner, "dist_metric.vec", f"has {len(vec)} weights for {n_features} features")
    if name == "SEuclideanDistance" and len(vec) != n_features:
        raise fail(owner, "dist_metric.vec", f"has {len(vec)} variances for {n_features} features")
    if name == "MahalanobisDistance" and mat.shape != (n_features, n_features):
        raise fail(owner, "dist_metric.mat", f"has shape {mat.shape} for {n_features} features")
    if name == "HaversineDistance" and n_features != 2:
        raise fail(owner, "data", f"has {n_features} features; haversine reads exactly 2")


@invariant("distance-metric-state")
def distance_metric_state(metric: Any, state: tuple) -> None:
    """A metric's size is read from its vector; Mahalanobis sizes its buffer from its matrix."""
    if len(state) != 3:
        raise fail(metric, "state", "is not (p, vec, mat)")
    p, vec, mat = state
    if type(p) is not float or not (p > 0):
        raise fail(metric, "p", f"is {p!r}, not a positive float")
    for field, value, ndim in (("vec", vec, 1), ("mat", mat, 2)):
        value = array(metric, field, value, ndim, "f")
        if value.dtype != np.float64 or not value.flags.c_contiguous:
            raise fail(metric, field, f"is {value.dtype}, not contiguous float64")
    name = _kind(metric, _table("metric"))
    if name == "MinkowskiDistance" and (not math.isfinite(p) or p < 1):
        raise fail(metric, "p", f"is {p}, not a finite p >= 1")
    if name == "MahalanobisDistance" and (mat.shape[0] != mat.shape[1] or not mat.shape[0]):
        raise fail(metric, "mat", f"has shape {mat.shape}, not square")
    if name == "SEuclideanDistance" and not len(vec):
        raise fail(metric, "vec", "is empty")


# -- the estimators --------------------------------------------------------------------------------------

_METRIC_PARAMETERS = {"p", "w", "V", "VI"}


@invariant("neighbors-fit-data")
def neighbors_fit_data(estimator: Any) -> None:
    """kneighbors hands `_fit_X` and the query to distance code that reads as many columns as the query
    has: the stored rows must be exactly the model's width, and a tree must index those same rows."""
    if "_fit_method" not in vars(estimator):
        return
    method = attribute(estimator, "_fit_method")
    n_features = width(estimator)
    fit_x = attribute(estimator, "_fit_X")
    if sparse.issparse(fit_x):
        if method != "brute":
            raise fail(estimator, "_fit_X", "is sparse for a tree search")
    else:
        fit_x = array(estimator, "_fit_X", fit_x, 2, "fiub")
    if fit_x.shape[1] != n_features:
        raise fail(estimator, "_fit_X", f"has {fit_x.shape[1]} columns for {n_features} features")
    tree = vars(estimator).get("_tree")
    fits = {"brute": tree is None, "kd_tree": _kind(tree, _table("kd")), "ball_tree": _kind(tree, _table("ball"))}
    if not fits.get(method):
        raise fail(estimator, "_tree", f"is {type(tree).__name__} for the {method!r} search")
    if tree is not None and tree.data.shape != fit_x.shape:
        raise fail(estimator, "_tree.data", f"has shape {tree.data.shape}, _fit_X {fit_x.shape}")


@invariant("neighbors-metric-parameters")
def neighbors_metric_parameters(estimator: Any) -> None:
    """Brute force rebuilds its metric from `effective_metric_params_` at each query: weights and
    (inverse) covariances must be sized to the model's width."""
    if "effective_metric_params_" not in vars(estimator):
        return
    n_features = width(estimator)
    params = attribute(estimator, "effective_metric_params_")
    if type(params) is not dict or not set(params) <= _METRIC_PARAMETERS:
        raise fail(estimator, "effective_metric_params_", f"holds {sorted(params)!r:.80}, not metric parameters")
    if not isinstance(attribute(estimator, "effective_metric_"), str):
        raise fail(estimator, "effective_metric_", "is not a metric name")
    for key, value in params.items():
        if value is None and key == "w":
            continue
        if key == "p":
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
                raise fail(estimator, "effective_metric_params_['p']", f"is {value!r}")
            continue
        shape = (n_features, n_features) if key == "VI" else (n_features,)
        if key == "V" and np.ndim(value) == 2:
            shape = (n_features, n_features)
        if np.shape(value) != shape:
            raise fail(estimator, f"effective_metric_params_[{key!r}]", f"has shape {np.shape(value)}, not {shape}")


@invariant("kernel-density-tree")
def kernel_density_tree(estimator: Any) -> None:
    if "tree_" not in vars(estimator):
        return
    tree = attribute(estimator, "tree_")
    if not (_kind(tree, _table("kd")) or _kind(tree, _table("ball"))):
        raise fail(estimator, "tree_", f"is {type(tree).__name__}, not a KD or Ball tree")
    if tree.data.shape[1] != width(estimator):
        raise fail(estimator, "tree_.data", f"has {tree.data.shape[1]} columns for {width(estimator)} features")
