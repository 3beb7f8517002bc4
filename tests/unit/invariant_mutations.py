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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tests.unit.invariant_edits import (
    array_short_bytes,
    ball_tree_class,
    buffer_short,
    category_past_255,
    dtype_field_past_itemsize,
    edit,
    empty_bitsets,
    gradient_boosting,
    hgb_categorical,
    isotonic,
    kd_tree_class,
    libsvm,
    loss_with_text_parameter,
    make,
    masked_short_mask,
    metric_class,
    minkowski_weights,
    multiclass_init_on_two_classes,
    narrow_density_tree,
    narrow_fit_x,
    narrow_preprocessor,
    neighbours,
    nodes,
    partial_of_other_function,
    predictor_child,
    predictor_feature,
    random_state_short_key,
    short_bspline,
    short_dual_coefficients,
    short_norms,
    short_thresholds,
    short_weights,
    sparse_index_out_of_range,
    state_edit,
    tree,
    tree_class,
    tree_without_features,
    widen_stages,
    wider_member,
    wrapper_negative_shape,
)
from tests.unit.zoo_data import Y_BINARY

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


def mutations() -> list[Mutation]:
    tree_ = tree
    kd, ball = kd_tree_class, ball_tree_class
    return [
        # -- construction rows: crafted files (skops has no such bytes: numpy reads its .npy itself) --
        Mutation(
            "numpy-dtype-canonical",
            "numpy's constructor does not build",
            dtype_field_past_itemsize,
            ("joblib", "pickle"),
        ),
        Mutation("numpy-array-bytes", "array bytes that are not exactly", array_short_bytes, ("joblib", "pickle")),
        Mutation("numpy-buffer-size", "buffer exactly the size", buffer_short, ("joblib", "pickle")),
        Mutation(
            "numpy-masked-state", "mask that is not one byte per element", masked_short_mask, ("joblib", "pickle")
        ),
        Mutation("joblib-array-header", "joblib array header", wrapper_negative_shape, ("joblib", "pickle")),
        Mutation(
            "numpy-random-state",
            "state whose 'state' is not shaped as numpy writes it|RandomState state with other fields",
            lambda: {"rng": np.random.RandomState(0)},
            forge=(np.random.RandomState, random_state_short_key, "RandomStateNode"),
        ),
        Mutation("partial-check-array", "partial wraps check_array only", partial_of_other_function),
        Mutation(
            "tree-constructor",
            "Tree takes",
            tree_,
            forge=(tree_class(), tree_without_features, "TreeNode"),
            benign=tree_,
        ),
        Mutation(
            "cython-loss-parameters",
            "takes no argument or one finite float",
            loss_with_text_parameter,
            ("joblib", "pickle"),
        ),
        # -- state rows --
        Mutation(
            "tree-node-count",
            "invalid Tree: node_count is",
            tree_,
            forge=(tree_class(), state_edit("node_count", lambda n: n + 5), "TreeNode"),
            benign=tree_,
        ),
        Mutation(
            "tree-values-shape",
            "invalid Tree: values has shape",
            tree_,
            forge=(tree_class(), state_edit("values", lambda v: np.ascontiguousarray(v[:, :, :1])), "TreeNode"),
            benign=tree_,
        ),
        Mutation(
            "tree-children",
            "invalid Tree: left of node 0 is",
            tree_,
            forge=(
                tree_class(),
                state_edit("nodes", nodes(lambda n: n["left_child"].__setitem__(0, 10**9))),
                "TreeNode",
            ),
            benign=tree_,
        ),
        Mutation(
            "tree-features",
            "invalid Tree: feature of a split is outside",
            tree_,
            forge=(tree_class(), state_edit("nodes", nodes(lambda n: n["feature"].__setitem__(0, 4))), "TreeNode"),
            benign=tree_,
        ),
        Mutation(
            "tree-max-depth",
            "invalid Tree: max_depth is 1",
            tree_,
            forge=(tree_class(), state_edit("max_depth", lambda d: 1), "TreeNode"),
            benign=tree_,
        ),
        Mutation(
            "binary-tree-data",
            "idx_array is not a permutation",
            lambda: neighbours("kd_tree"),
            forge=(kd(), state_edit(1, lambda a: np.where(np.arange(len(a)) == 0, 10**6, a)), "ObjectNode"),
            benign=lambda: neighbours("kd_tree"),
        ),
        Mutation(
            "binary-tree-nodes",
            "node_data has a sample range outside the data",
            lambda: neighbours("ball_tree"),
            forge=(ball(), state_edit(2, nodes(lambda n: n["idx_end"].__setitem__(0, 10**6))), "ObjectNode"),
            benign=lambda: neighbours("ball_tree"),
        ),
        Mutation(
            "binary-tree-bounds",
            r"node_bounds has shape \(1, .*\), not \(2, ",
            lambda: neighbours("kd_tree"),
            forge=(kd(), state_edit(3, lambda b: np.ascontiguousarray(b[:1])), "ObjectNode"),
            benign=lambda: neighbours("kd_tree"),
        ),
        Mutation(
            "binary-tree-metric",
            "dist_metric.vec has 2 weights for 4 features",
            lambda: neighbours("ball_tree", metric="minkowski", metric_params={"w": np.ones(4)}),
            forge=(ball(), state_edit(11, lambda m: minkowski_weights(2)), "ObjectNode"),
            benign=lambda: neighbours("ball_tree", metric="minkowski", metric_params={"w": np.ones(4)}),
        ),
        Mutation(
            "distance-metric-state",
            "p is -1.0, not a positive float",
            lambda: neighbours("ball_tree"),
            forge=(metric_class(), state_edit(0, lambda p: -1.0), "ObjectNode"),
            benign=lambda: neighbours("ball_tree"),
        ),
        Mutation(
            "sparse-indices", "csr_matrix: indices/indptr fail scipy's full format check", sparse_index_out_of_range
        ),
        Mutation("isotonic-thresholds", "y_thresholds_ has", edit(isotonic, short_thresholds), benign=isotonic),
        # -- model rows: object mutations --
        Mutation(
            "tree-estimator-width",
            "tree_.n_features is 4, the estimator has 3",
            edit(tree_, lambda m: setattr(m, "n_features_in_", 3)),
            benign=tree_,
        ),
        Mutation(
            "ensemble-member-width",
            r"estimators_\[1\]\.tree_\.n_features is 8, not 4",
            edit(
                lambda: make("sklearn.ensemble.RandomForestClassifier", n_estimators=2, random_state=0)(),
                wider_member,
            ),
            benign=make("sklearn.ensemble.RandomForestClassifier", n_estimators=2, random_state=0),
        ),
        Mutation(
            "gradient-boosting-stages",
            "estimators_ has 3 trees a stage, n_trees_per_iteration_ is 1",
            edit(lambda: gradient_boosting(Y_BINARY), widen_stages),
            benign=lambda: gradient_boosting(Y_BINARY),
        ),
        Mutation(
            "gradient-boosting-init",
            r"init_\.classes_ do not match",
            edit(gradient_boosting, multiclass_init_on_two_classes),
            benign=gradient_boosting,
        ),
        Mutation(
            "hgb-predictor-nodes",
            r"TreePredictor: nodes\.left of node",
            edit(hgb_categorical, predictor_child),
            benign=hgb_categorical,
        ),
        Mutation(
            "hgb-predictor-bitsets",
            r"nodes\.bitset_idx is past the 0 raw_left_cat_bitsets",
            edit(hgb_categorical, empty_bitsets),
            benign=hgb_categorical,
        ),
        Mutation(
            "hgb-bin-mapper-categories",
            r"bin_thresholds_\[\d+\] holds a category outside 0\.\.255",
            edit(hgb_categorical, category_past_255),
            benign=hgb_categorical,
        ),
        Mutation(
            "hgb-feature-width",
            r"_predictors\.nodes\.feature_idx is past the 5 features",
            edit(hgb_categorical, predictor_feature),
            benign=hgb_categorical,
        ),
        Mutation(
            "hgb-preprocessor-width",
            "do not use each input column exactly once|_preprocessor is not an attribute the library writes",
            edit(hgb_categorical, narrow_preprocessor),
            benign=hgb_categorical,
        ),
        Mutation(
            "neighbors-fit-data",
            "_fit_X has 2 columns for 4 features",
            edit(lambda: neighbours("brute"), narrow_fit_x),
            benign=lambda: neighbours("brute"),
        ),
        Mutation(
            "neighbors-metric-parameters",
            r"effective_metric_params_\['w'\] has shape \(2,\), not \(4,\)",
            edit(lambda: neighbours("brute", metric="minkowski", metric_params={"w": np.ones(4)}), short_weights),
            benign=lambda: neighbours("brute", metric="minkowski", metric_params={"w": np.ones(4)}),
        ),
        Mutation(
            "kernel-density-tree",
            "tree_.data has 2 columns for 4 features",
            edit(make("sklearn.neighbors.KernelDensity"), narrow_density_tree),
            benign=make("sklearn.neighbors.KernelDensity"),
        ),
        Mutation(
            "libsvm-model",
            r"_dual_coef_ has shape \(1, \d+\), not \(1, \d+\)",
            edit(libsvm, short_dual_coefficients),
            benign=libsvm,
        ),
        Mutation(
            "kmeans-centers",
            r"cluster_centers_ has shape \(3, 2\) for 4 features",
            edit(
                make("sklearn.cluster.KMeans", n_clusters=3, n_init=1, random_state=0),
                lambda m: setattr(m, "cluster_centers_", np.zeros((3, 2))),
            ),
            benign=make("sklearn.cluster.KMeans", n_clusters=3, n_init=1, random_state=0),
        ),
        Mutation(
            "bisecting-tree-centers",
            r"_bisecting_tree\.center has 1 values for 4 features",
            edit(
                make("sklearn.cluster.BisectingKMeans", n_clusters=3, random_state=0),
                lambda m: setattr(m._bisecting_tree.left, "center", np.zeros(1)),
            ),
            benign=make("sklearn.cluster.BisectingKMeans", n_clusters=3, random_state=0),
        ),
        Mutation(
            "bspline-knots",
            "invalid _?BSpline: t has 4 knots",
            edit(make("sklearn.preprocessing.SplineTransformer"), short_bspline),
            benign=make("sklearn.preprocessing.SplineTransformer"),
        ),
        Mutation(
            "birch-subcluster-norms",
            "_subcluster_norms has 1 norms",
            edit(make("sklearn.cluster.Birch", n_clusters=3), short_norms),
            ("joblib", "pickle"),
            benign=make("sklearn.cluster.Birch", n_clusters=3),
            note="skops cannot save Birch",
        ),
    ]
