"""Invariants of scikit-learn's Cython Tree and of the estimators that hand it their input: single trees,
forests and bagging, gradient boosting's stage array."""

from __future__ import annotations

from typing import Any

import numpy as np

from training_gate.inspector.invariants import invariant
from training_gate.inspector.invariants.base import (
    TREE_LEAF,
    array,
    attribute,
    fail,
    integer,
    members,
    tree_links,
    width,
)

# -- the Tree's own state (checked before Tree.__setstate__ copies it) ----------------------------------------


def _nodes(tree: Any, state: dict[str, Any]) -> np.ndarray:
    from sklearn.tree._tree import NODE_DTYPE

    nodes = array(tree, "nodes", state["nodes"], 1)
    if nodes.dtype != NODE_DTYPE or not nodes.flags.c_contiguous:
        raise fail(tree, "nodes", f"has dtype {nodes.dtype}, not this scikit-learn's node record, or is not contiguous")
    return nodes


@invariant("tree-node-count")
def tree_node_count(tree: Any, state: dict[str, Any]) -> None:
    nodes = _nodes(tree, state)
    node_count = integer(tree, "node_count", state["node_count"], 1)
    if len(nodes) != node_count:
        raise fail(tree, "node_count", f"is {node_count} for {len(nodes)} nodes")


@invariant("tree-values-shape")
def tree_values_shape(tree: Any, state: dict[str, Any]) -> None:
    values = array(tree, "values", state["values"], 3)
    expected = (len(_nodes(tree, state)), tree.n_outputs, int(np.max(tree.n_classes)))
    if values.shape != expected or values.dtype != np.float64 or not values.flags.c_contiguous:
        raise fail(tree, "values", f"has shape {values.shape} and dtype {values.dtype}, not {expected} float64")


def _links(tree: Any, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    left, right = nodes["left_child"], nodes["right_child"]
    leaf = left == TREE_LEAF
    if (right[leaf] != TREE_LEAF).any():
        raise fail(tree, "right_child", "of a leaf is not TREE_LEAF")
    return leaf, tree_links(tree, left, right, leaf, "")


@invariant("tree-children")
def tree_children(tree: Any, state: dict[str, Any]) -> None:
    _links(tree, _nodes(tree, state))


@invariant("tree-features")
def tree_features(tree: Any, state: dict[str, Any]) -> None:
    nodes = _nodes(tree, state)
    leaf = nodes["left_child"] == TREE_LEAF
    feature = nodes["feature"][~leaf]
    if ((feature < 0) | (feature >= tree.n_features)).any():
        raise fail(tree, "feature", f"of a split is outside [0, {tree.n_features})")


@invariant("tree-max-depth")
def tree_max_depth(tree: Any, state: dict[str, Any]) -> None:
    # decision_path sizes its output by max_depth: a deeper path would write past it.
    max_depth = integer(tree, "max_depth", state["max_depth"], 0)
    _leaf, depth = _links(tree, _nodes(tree, state))
    if int(depth.max()) > max_depth:
        raise fail(tree, "max_depth", f"is {max_depth}, the tree is {int(depth.max())} deep")


# -- estimators around trees -------------------------------------------------------------------------------


def _tree_of(owner: Any, holder: Any, field: str) -> Any:
    from sklearn.tree._tree import Tree

    tree = attribute(holder, "tree_")
    if type(tree) is not Tree:
        raise fail(owner, field, f"is {type(tree).__name__}, not a Tree")
    return tree


@invariant("tree-estimator-width")
def tree_estimator_width(estimator: Any) -> None:
    """A single tree estimator checks X against n_features_in_ only, then the tree reads X[i, feature]."""
    if not _fitted(estimator, "tree_"):
        return
    tree = _tree_of(estimator, estimator, "tree_")
    n_features = width(estimator)
    if tree.n_features != n_features:
        raise fail(estimator, "tree_.n_features", f"is {tree.n_features}, the estimator has {n_features}")
    n_outputs = integer(estimator, "n_outputs_", attribute(estimator, "n_outputs_"), 1)
    if tree.n_outputs != n_outputs:
        raise fail(estimator, "tree_.n_outputs", f"is {tree.n_outputs}, the estimator has {n_outputs}")


def _fitted(estimator: Any, field: str) -> bool:
    """An unfitted estimator has none of its fitted state; a fitted one must have all the relation needs."""
    return field in vars(estimator)


@invariant("ensemble-member-width")
def ensemble_member_width(estimator: Any) -> None:
    """Forests, bagging and isolation forests pass X to their trees without checking it again
    (check_input=False, or Cython), each member seeing its own feature subset."""
    if not _fitted(estimator, "estimators_"):
        return
    n_features = width(estimator)
    flat = members(attribute(estimator, "estimators_"))
    subsets = vars(estimator).get("estimators_features_")
    if subsets is not None and len(members(subsets)) != len(flat):
        raise fail(estimator, "estimators_features_", f"has {len(members(subsets))} subsets for {len(flat)} members")
    for position, member in enumerate(flat):
        expected = n_features
        if subsets is not None:
            features = array(estimator, "estimators_features_", members(subsets)[position], 1, "iu")
            if len(features) and (features.min() < 0 or features.max() >= n_features):
                raise fail(estimator, "estimators_features_", f"of member {position} index outside the features")
            expected = len(features)
        if "tree_" in vars(member):
            tree = _tree_of(estimator, member, f"estimators_[{position}].tree_")
            if tree.n_features != expected:
                raise fail(
                    estimator, f"estimators_[{position}].tree_.n_features", f"is {tree.n_features}, not {expected}"
                )
        if "n_features_in_" in vars(member) and width(member) != expected:
            raise fail(estimator, f"estimators_[{position}].n_features_in_", f"is {width(member)}, not {expected}")


def _trees_per_iteration(estimator: Any) -> int:
    given = vars(estimator).get("n_trees_per_iteration_")
    if given is None:  # scikit-learn < 1.4 kept it on its loss object
        given = vars(attribute(estimator, "_loss")).get("K")
    return integer(estimator, "n_trees_per_iteration_", given, 1)


@invariant("gradient-boosting-stages")
def gradient_boosting_stages(estimator: Any) -> None:
    """predict_stages adds tree k of each stage into column k of an array n_trees_per_iteration_ wide,
    and reads each tree's values as one output of one class."""
    from sklearn.tree import DecisionTreeRegressor

    if not _fitted(estimator, "estimators_"):
        return
    stages = array(estimator, "estimators_", attribute(estimator, "estimators_"), 2, "O")
    per_iteration = _trees_per_iteration(estimator)
    classes = vars(estimator).get("classes_")
    if classes is not None:
        n_classes = integer(estimator, "n_classes_", attribute(estimator, "n_classes_"), 2)
        if len(classes) != n_classes:
            raise fail(estimator, "n_classes_", f"is {n_classes} for {len(classes)} classes")
        expected = 1 if n_classes == 2 else n_classes
    else:
        expected = 1
    if per_iteration != expected or stages.shape[1] != per_iteration:
        raise fail(
            estimator,
            "estimators_",
            f"has {stages.shape[1]} trees a stage, n_trees_per_iteration_ is {per_iteration}, the classes need "
            f"{expected}",
        )
    n_features = width(estimator)
    for position, member in enumerate(stages.ravel()):
        if type(member) is not DecisionTreeRegressor:
            raise fail(estimator, f"estimators_[{position}]", f"is {type(member).__name__}, not a regression tree")
        tree = _tree_of(estimator, member, f"estimators_[{position}].tree_")
        if tree.n_features != n_features or tree.n_outputs != 1 or int(np.max(tree.n_classes)) != 1:
            raise fail(
                estimator, f"estimators_[{position}].tree_", "is not a one-output tree over the model's features"
            )


@invariant("gradient-boosting-init")
def gradient_boosting_init(estimator: Any) -> None:
    """The initial raw predictions come from `init_` and the loss: they must be as wide as a stage."""
    if not _fitted(estimator, "estimators_"):
        return
    init = attribute(estimator, "init_")
    per_iteration = _trees_per_iteration(estimator)
    if isinstance(init, str):
        if init != "zero":
            raise fail(estimator, "init_", f"is {init!r}")
        return
    loss = attribute(estimator, "_loss")
    # is_multiclass is a class attribute of scikit-learn's losses; K an attribute of the older ones
    multiclass = getattr(loss, "is_multiclass", None)
    if multiclass is None:
        multiclass = vars(loss).get("K", 1) > 1
    if vars(estimator).get("classes_") is None:
        if multiclass:
            raise fail(estimator, "_loss", "is a multiclass loss on a regressor")
        return
    if bool(multiclass) != (per_iteration > 1):
        raise fail(estimator, "_loss", f"is {'' if multiclass else 'not '}multiclass for {per_iteration} trees a stage")
    init_classes = vars(init).get("classes_")
    if init_classes is None or len(init_classes) != len(vars(estimator)["classes_"]):
        raise fail(
            estimator, "init_.classes_", "do not match the model's classes: the first raw predictions would not fit"
        )
