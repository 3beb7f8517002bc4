"""Invariants of scipy.sparse matrices, libsvm models, k-means centres, splines, Birch's subcluster norms and
the isotonic interpolator."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from training_gate.inspector.invariants import invariant
from training_gate.inspector.invariants.base import array, attribute, fail, integer, width

# -- scipy.sparse (checked on a scratch copy before the state is set: sparsetools trusts indices) --------------


@invariant("sparse-indices")
def sparse_indices(matrix: Any, state: dict[str, Any]) -> None:
    scratch = object.__new__(type(matrix))
    scratch.__dict__.update(state)
    try:
        if scratch.format in ("csr", "csc"):
            scratch.check_format(full_check=True)
        elif scratch.format == "coo":
            scratch._check()
            for axis, (coords, bound) in enumerate(zip(scratch.coords, scratch.shape, strict=True)):
                coords = array(matrix, f"coords[{axis}]", coords, 1, "iu")
                if len(coords) != scratch.nnz or (len(coords) and (coords.min() < 0 or coords.max() >= bound)):
                    raise ValueError(f"coords[{axis}] index outside the shape")
        else:
            raise ValueError(f"format {scratch.format!r} is not one the gate checks")
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise fail(matrix, "indices/indptr", f"fail scipy's full format check: {exc}") from exc


def check_sparse(owner: Any, field: str, value: Any) -> None:
    """A sparse attribute was built by the gate, so its indices were checked then; here only its kind."""
    if not sparse.issparse(value) or value.format not in ("csr", "csc", "coo"):
        raise fail(owner, field, f"is {type(value).__name__}, not a checked sparse matrix")


# -- libsvm --------------------------------------------------------------------------------------------------

_IMPLEMENTATIONS = {
    "SVC": "c_svc",
    "NuSVC": "nu_svc",
    "OneClassSVM": "one_class",
    "SVR": "epsilon_svr",
    "NuSVR": "nu_svr",
}
_KERNELS = ("linear", "poly", "rbf", "sigmoid", "precomputed")


def _implementation(model: Any) -> str:
    from sklearn import svm

    for name, impl in _IMPLEMENTATIONS.items():
        if type(model) is getattr(svm, name):
            return impl
    raise fail(model, "_impl", "belongs to a class libsvm does not serve")


@invariant("libsvm-model")
def libsvm_model(model: Any) -> None:
    """predict copies these arrays into libsvm's model struct, sized by one another, and libsvm reads
    them by the svm type `_impl` names: that type must be the class's own."""
    if "support_vectors_" not in vars(model):
        return
    impl = _implementation(model)
    if vars(model).get("_impl", impl) != impl:
        raise fail(model, "_impl", f"is {vars(model).get('_impl')!r}, the class is {impl!r}")
    kernel = attribute(model, "kernel")
    if kernel not in _KERNELS:
        raise fail(model, "kernel", f"is {kernel!r}")
    integer(model, "degree", attribute(model, "degree"), 0, 1 << 10)
    vectors = attribute(model, "support_vectors_")
    sparse_model = bool(attribute(model, "_sparse"))
    if sparse_model != sparse.issparse(vectors):
        raise fail(model, "_sparse", "does not say how support_vectors_ are stored")
    if sparse_model:
        check_sparse(model, "support_vectors_", vectors)
    elif array(model, "support_vectors_", vectors, 2, "f").dtype != np.float64:
        raise fail(model, "support_vectors_", "is not float64")
    support = array(model, "support_", attribute(model, "support_"), 1, "i")
    # A precomputed kernel keeps no vectors: the support indexes the kernel's columns.
    n_sv = len(support) if kernel == "precomputed" else vectors.shape[0]
    fit_shape = attribute(model, "shape_fit_")
    if type(fit_shape) is not tuple or len(fit_shape) != 2:
        raise fail(model, "shape_fit_", "is not a (rows, columns) pair")
    if len(support) != n_sv or (n_sv and (support.min() < 0 or support.max() >= fit_shape[0])):
        raise fail(model, "support_", "does not index the training rows once per support vector")
    if kernel != "precomputed" and n_sv and vectors.shape[1] != width(model):
        raise fail(model, "support_vectors_", f"has {vectors.shape[1]} columns for {width(model)} features")
    classifier = impl in ("c_svc", "nu_svc")
    n_class = len(attribute(model, "classes_")) if classifier else 2
    pairs = n_class * (n_class - 1) // 2 if classifier else 1
    n_support = array(model, "_n_support", attribute(model, "_n_support"), 1, "i")
    if len(n_support) != n_class or (n_support < 0).any() or (classifier and int(n_support.sum()) != n_sv):
        raise fail(model, "_n_support", f"does not split the {n_sv} support vectors over {n_class} classes")
    dual = attribute(model, "_dual_coef_")
    expected = ((n_class - 1) if classifier else 1, n_sv)
    if sparse_model:
        check_sparse(model, "_dual_coef_", dual)
    else:
        array(model, "_dual_coef_", dual, 2, "f")
    if dual.shape != expected:
        raise fail(model, "_dual_coef_", f"has shape {dual.shape}, not {expected}")
    if len(array(model, "_intercept_", attribute(model, "_intercept_"), 1, "f")) != pairs:
        raise fail(model, "_intercept_", f"does not have {pairs} entries")
    for field in ("_probA", "_probB"):
        if len(array(model, field, attribute(model, field), 1, "f")) not in (0, pairs):
            raise fail(model, field, f"does not have 0 or {pairs} entries")
    weights = vars(model).get("class_weight_")
    if classifier and weights is not None and len(weights) != n_class:
        raise fail(model, "class_weight_", f"does not have {n_class} entries")


# -- k-means ---------------------------------------------------------------------------------------------------


@invariant("kmeans-centers")
def kmeans_centers(model: Any) -> None:
    """predict hands the centres to Cython that reads as many columns of each as X has."""
    if "cluster_centers_" not in vars(model):
        return
    centers = array(model, "cluster_centers_", attribute(model, "cluster_centers_"), 2, "f")
    if centers.shape[1] != width(model) or not centers.flags.c_contiguous or not len(centers):
        raise fail(model, "cluster_centers_", f"has shape {centers.shape} for {width(model)} features")


@invariant("bisecting-tree-centers")
def bisecting_tree_centers(model: Any) -> None:
    """BisectingKMeans.predict stacks a node's two child centres for the Cython label routine: every
    centre must be as wide as the data. A node has two children or none, and is reached once."""
    from sklearn.cluster._bisect_k_means import _BisectingTree

    if "_bisecting_tree" not in vars(model):
        return
    n_features = width(model)
    seen: set[int] = set()
    pending = [attribute(model, "_bisecting_tree")]
    while pending:
        node = pending.pop()
        if type(node) is not _BisectingTree:
            raise fail(model, "_bisecting_tree", f"holds a {type(node).__name__}, not a _BisectingTree")
        if id(node) in seen:
            raise fail(model, "_bisecting_tree", "reaches a node twice: not a tree")
        seen.add(id(node))
        center = attribute(node, "center")
        if type(center) is np.matrix and center.shape[0] == 1:
            center = np.asarray(center).ravel()  # a sparse fit keeps 1 x n matrices
        center = array(model, "_bisecting_tree.center", center, 1, "f")
        if len(center) != n_features:
            raise fail(model, "_bisecting_tree.center", f"has {len(center)} values for {n_features} features")
        left, right = attribute(node, "left"), attribute(node, "right")
        if (left is None) != (right is None):
            raise fail(model, "_bisecting_tree", "has a node with one child")
        if left is None:
            integer(model, "_bisecting_tree.label", attribute(node, "label"), 0)
        else:
            pending.extend((left, right))


# -- splines, Birch, isotonic ------------------------------------------------------------------------------------


@invariant("bspline-knots")
def bspline_knots(spline: Any) -> None:
    """scipy's spline evaluation (C) finds a knot interval in t and reads k+1 coefficients from it:
    BSpline's constructor checks t against k and c, unpickling does not. Its `t` and `c` are attributes
    in older scipy, properties over `_t` and `_c` in newer; scipy >= 1.18 delegates to a `_BSpline`
    holding them, checked by this same row."""
    state = vars(spline)
    if "_delegate_to" in state and not {"t", "_t"} & set(state):
        from scipy.interpolate import _bsplines

        if type(state["_delegate_to"]) is not getattr(_bsplines, "_BSpline", None):
            raise fail(spline, "_delegate_to", "is not the spline implementation scipy delegates to")
        return
    k = integer(spline, "k", state.get("k"), 0, 1 << 10)
    knots = array(spline, "t", state.get("t", state.get("_t")), 1, "f")
    coefficients = array(spline, "c", state.get("c", state.get("_c")), None, "fc")
    n = len(knots) - k - 1
    if n < k + 1:
        raise fail(spline, "t", f"has {len(knots)} knots, fewer than 2k+2 = {2 * k + 2}")
    if not np.isfinite(knots).all() or (np.diff(knots) < 0).any():
        raise fail(spline, "t", "is not finite and non-decreasing")
    if coefficients.ndim < 1 or coefficients.shape[0] < n:
        raise fail(spline, "c", f"has shape {coefficients.shape}, fewer than the {n} coefficients t and k need")
    integer(spline, "axis", state.get("axis"), 0, max(coefficients.ndim - 1, 0))
    if state.get("extrapolate") not in (True, False, "periodic"):
        raise fail(spline, "extrapolate", f"is {state.get('extrapolate')!r}")


@invariant("birch-subcluster-norms")
def birch_subcluster_norms(model: Any) -> None:
    """predict passes the squared norms to the Cython argmin as the centres' own: one per centre."""
    if "subcluster_centers_" not in vars(model):
        return
    centers = array(model, "subcluster_centers_", attribute(model, "subcluster_centers_"), 2, "f")
    norms = array(model, "_subcluster_norms", attribute(model, "_subcluster_norms"), 1, "f")
    if len(norms) != len(centers) or centers.shape[1] != width(model):
        raise fail(model, "_subcluster_norms", f"has {len(norms)} norms for centres of shape {centers.shape}")


@invariant("isotonic-thresholds")
def isotonic_thresholds(model: Any, state: dict[str, Any]) -> None:
    """The isotonic interpolator is rebuilt from these two arrays while loading."""
    if "X_thresholds_" not in state and "y_thresholds_" not in state:
        return
    x = array(model, "X_thresholds_", state.get("X_thresholds_"), 1, "fiu")
    y = array(model, "y_thresholds_", state.get("y_thresholds_"), 1, "fiu")
    if len(x) != len(y) or not len(x):
        raise fail(model, "y_thresholds_", f"has {len(y)} values for {len(x)} thresholds")
