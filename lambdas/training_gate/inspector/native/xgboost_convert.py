"""A validated XGBoost model written as XGBoost JSON, for a current libxgboost to load.

XGBoost 3.1 removed the old binary reader (3.0.5 is the last that reads it), so a 0.90-1.7 built-in
model reaches a current reader only through JSON. Writing the JSON from what the gate's parser read
and validated also means libxgboost never parses bytes the gate did not write: the converter is the
only producer of what the reader sees, whatever format the artifact held.

The document follows XGBoost 2.1's schema (the version stamped below; 3.x reads it without the
deprecation path for JSON written before 1.6). Base scores are written in probability space as 1.0+
writes them: a 0.x binary's margin goes through the objective's inverse link, so the margin, and every
prediction, is the one the original library computed. A 3.1+ model's per-output intercepts (a vector
base score, which readers before 3.1 ignore but for its first value) become one intercept plus a last
iteration of single-leaf trees holding each output's difference. Trees keep their node numbering unless
some nodes are unreachable (deleted by pruning), in which case the reachable ones are renumbered in order.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

from training_gate.inspector.native.xgboost_model import (
    INVALID_NODE,
    OBJECTIVES,
    Tree,
    XGBoostModel,
    base_margins,
    objective_name,
    validate,
)

WRITTEN_VERSION = [2, 1, 4]
ROOT_PARENT = 2147483647  # how XGBoost writes the root's parent (kInvalidNodeId without its sign bit)
# Attributes the loaders consume rather than keep (src/learner.cc, LoadModel of the old binary).
_CONSUMED_ATTRIBUTES = ("objective", "metrics", "count_poisson_max_delta_step")


def _f32(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _number(value: float) -> str:
    return repr(float(value))


# Names a current reader warns about (and may drop) for objectives that compute the same thing.
_RENAMED = {"reg:linear": "reg:squarederror"}


def _objective(model: XGBoostModel) -> dict[str, Any]:
    name = objective_name(model.objective)
    if model.objective_config.get("name") in (name, model.objective):
        return {**model.objective_config, "name": _RENAMED.get(name, name)}
    name = _RENAMED.get(name, name)
    # No configuration saved (0.x binaries): the defaults each objective's LoadConfig reads.
    config: dict[str, Any] = {"name": name}
    if name.startswith("multi:"):
        config["softmax_multiclass_param"] = {"num_class": str(model.num_class)}
    elif name == "count:poisson":
        step = model.attributes.get("count_poisson_max_delta_step", "0.7")
        config["poisson_regression_param"] = {"max_delta_step": step}
    elif name == "reg:tweedie":
        config["tweedie_regression_param"] = {"tweedie_variance_power": "1.5"}
    elif name == "reg:pseudohubererror":
        config["pseudo_huber_param"] = {"huber_slope": "1"}
    elif name == "survival:aft":
        config["aft_loss_param"] = {"aft_loss_distribution": "normal", "aft_loss_distribution_scale": "1"}
    elif name.startswith(("reg:", "binary:logistic", "binary:logitraw")):
        config["reg_loss_param"] = {"scale_pos_weight": "1"}
    return config


def _probability_space(model: XGBoostModel) -> list[float]:
    if not model.base_score_is_margin or objective_name(model.objective).startswith("multi:"):
        return list(model.base_score)
    transform = OBJECTIVES[objective_name(model.objective)]
    if transform == "sigmoid":
        return [1 / (1 + math.exp(-m)) for m in model.base_score]
    if transform == "exp":
        return [math.exp(m) for m in model.base_score]
    return list(model.base_score)


def _reachable(tree: Tree) -> list[int]:
    order, stack = [], [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if tree.left[node] != INVALID_NODE:
            stack += [tree.right[node], tree.left[node]]
    return sorted(order)


def _tree(tree: Tree, index: int, num_feature: int) -> dict[str, Any]:
    kept = _reachable(tree)
    new = {old: position for position, old in enumerate(kept)}
    parent_of = {0: ROOT_PARENT}
    for old in kept:
        if tree.left[old] != INVALID_NODE:
            parent_of[new[tree.left[old]]] = new[old]
            parent_of[new[tree.right[old]]] = new[old]
    left, right, indices, conditions, default_left = [], [], [], [], []
    for old in kept:
        leaf = tree.left[old] == INVALID_NODE
        left.append(INVALID_NODE if leaf else new[tree.left[old]])
        right.append(INVALID_NODE if leaf else new[tree.right[old]])
        indices.append(0 if leaf else tree.split_index[old])
        # A categorical node's condition is unused (the category set decides) and XGBoost writes NaN there.
        conditions.append(0.0 if tree.is_categorical(old) else tree.split_condition[old])
        default_left.append(0 if leaf else int(tree.default_left[old]))
    categorical = [new[node] for node in tree.categories_nodes if node in new]
    segments, sizes, categories = [], [], []
    for node, begin, size in zip(tree.categories_nodes, tree.categories_segments, tree.categories_sizes, strict=True):
        if node in new:
            segments.append(len(categories))
            sizes.append(size)
            categories += tree.categories[begin : begin + size]
    return {
        "base_weights": [_f32(tree.base_weight[old]) for old in kept],
        "categories": categories,
        "categories_nodes": categorical,
        "categories_segments": segments,
        "categories_sizes": sizes,
        "default_left": default_left,
        "id": index,
        "left_children": left,
        "loss_changes": [_f32(tree.loss_change[old]) for old in kept],
        "parents": [parent_of[position] for position in range(len(kept))],
        "right_children": right,
        "split_conditions": conditions,
        "split_indices": indices,
        "split_type": [1 if tree.is_categorical(old) else 0 for old in kept],
        "sum_hessian": [_f32(tree.sum_hessian[old]) for old in kept],
        "tree_param": {
            "num_deleted": "0",
            "num_feature": str(num_feature),
            "num_nodes": str(len(kept)),
            "size_leaf_vector": "1",
        },
    }


def _margin_of(transform: str, margin: float) -> float:
    """The base score (probability space, as JSON holds it) whose margin is `margin`."""
    if transform == "sigmoid":
        return 1 / (1 + math.exp(-margin))
    if transform == "exp":
        return math.exp(margin)
    return margin


def _leaf(value: float) -> Tree:
    return Tree(
        left=[INVALID_NODE], right=[INVALID_NODE], split_index=[0], split_condition=[value], default_left=[False],
        deleted=[False], base_weight=[value], loss_change=[0.0], sum_hessian=[0.0], parents=[ROOT_PARENT],
    )  # fmt: skip


def _one_intercept(model: XGBoostModel) -> XGBoostModel:
    """3.1 and later give each output its own intercept (a vector base_score), which readers before 3.1 do
    not apply: the model with one intercept, each output's difference from it added as one more iteration
    of single-leaf trees (or to a linear model's bias), so every reader predicts the same margins."""
    margins = base_margins(model)
    if len(model.base_score) == 1 or len(set(margins)) == 1:
        return model
    transform = OBJECTIVES[objective_name(model.objective)]
    common = margins[0]
    scalar = (
        common
        if model.base_score_is_margin or objective_name(model.objective).startswith("multi:")
        else (_margin_of(transform if transform in ("sigmoid", "exp") else "identity", common))
    )
    shifts = [margin - common for margin in margins]
    if model.booster == "gblinear":
        weights = list(model.linear_weights or [])
        for group, shift in enumerate(shifts):
            weights[model.num_feature * model.num_groups + group] += shift
        return replace(model, base_score=[scalar], linear_weights=weights)
    trees, info = list(model.trees), list(model.tree_info)
    for group, shift in enumerate(shifts):
        for parallel in range(model.num_parallel_tree):
            trees.append(_leaf(shift if parallel == 0 else 0.0))
            info.append(group)
    added = len(trees) - len(model.trees)
    weight_drop = [*model.weight_drop, *([1.0] * added)] if model.weight_drop is not None else None
    indptr = None  # rewritten from the tree count below
    return replace(
        model, base_score=[scalar], trees=trees, tree_info=info, weight_drop=weight_drop, iteration_indptr=indptr
    )


def first_trees(model: XGBoostModel, per_output: int) -> XGBoostModel:
    """The model's first `per_output` trees of each output (`ntree_limit`, iterations times parallel trees):
    what a scikit-learn wrapper predicts with after early stopping, where a Booster predicts with every tree."""
    if model.booster == "gblinear" or per_output <= 0:
        return model
    end = per_output * model.num_groups
    if end >= len(model.trees):
        return model
    drops = model.weight_drop[:end] if model.weight_drop is not None else None
    return replace(
        model, trees=model.trees[:end], tree_info=model.tree_info[:end], weight_drop=drops, iteration_indptr=None
    )


def to_document(model: XGBoostModel) -> dict[str, Any]:
    """The model as an XGBoost JSON document; the model is validated first (a refusal propagates)."""
    validate(model)
    model = _one_intercept(model)
    validate(model)
    scores = _probability_space(model)
    base_score = _number(scores[0]) if len(scores) == 1 else "[" + ",".join(_number(s) for s in scores) + "]"
    if model.booster == "gblinear":
        booster: dict[str, Any] = {
            "name": "gblinear",
            "model": {"boosted_rounds": 0, "weights": list(model.linear_weights or [])},
        }
    else:
        per_iteration = model.num_parallel_tree * model.num_groups
        trees = {
            "gbtree_model_param": {
                "num_parallel_tree": str(model.num_parallel_tree),
                "num_trees": str(len(model.trees)),
            },
            "iteration_indptr": list(range(0, len(model.trees) + 1, per_iteration)),
            "tree_info": list(model.tree_info),
            "trees": [_tree(tree, i, model.num_feature) for i, tree in enumerate(model.trees)],
        }
        booster = {"name": "gbtree", "model": trees}
        if model.booster == "dart":
            booster = {"name": "dart", "gbtree": booster, "weight_drop": list(model.weight_drop or [])}
    attributes = {
        key: value
        for key, value in model.attributes.items()
        if key not in _CONSUMED_ATTRIBUTES and not key.startswith("SAVED_PARAM_")
    }
    return {
        "learner": {
            "attributes": attributes,
            "feature_names": list(model.feature_names),
            "feature_types": list(model.feature_types),
            "gradient_booster": booster,
            "learner_model_param": {
                "base_score": base_score,
                "boost_from_average": str(model.boost_from_average),
                "num_class": str(model.num_class),
                "num_feature": str(model.num_feature),
                "num_target": str(model.num_target),
            },
            "objective": _objective(model),
        },
        "version": list(WRITTEN_VERSION),
    }


def to_json(model: XGBoostModel) -> bytes:
    """`to_document` serialised; non-finite numbers cannot occur (validated) and are refused by json."""
    return json.dumps(to_document(model), allow_nan=False, separators=(",", ":")).encode()
