"""An XGBoost model as plain data, the rules that make it safe for libxgboost, and a reference evaluator.

Every reader in `xgboost_readers` (old binary, memory snapshot, JSON, UBJSON, pickled Booster state)
produces an `XGBoostModel`; `validate` then checks what libxgboost's loaders and predictors trust
without checking (src/tree/tree_model.cc, src/predictor/): child and parent indices inside the tree
and every node reached once from the root (a cycle makes prediction loop forever), split features
below `num_feature`, finite leaves, split conditions and base score, the tree and group counts
consistent, the objective one XGBoost knows. Only a validated model is converted (`xgboost_convert`)
or handed to libxgboost.

`predict` evaluates the model in Python the way XGBoost's CPU predictor does (`fvalue < split_cond`
goes left, a missing value takes the default direction), for tests and for a second opinion.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from training_gate.inspector.native.errors import Reason, refuse

# libxgboost's markers (include/xgboost/tree_model.h): a leaf's left child, a deleted node's split index.
INVALID_NODE = -1
DELETED_MARKER = 0xFFFFFFFF
# Caps the gate sets: far above any model SageMaker trains, far below what exhausts memory in C.
MAX_FEATURES = 1 << 24
MAX_CLASSES = 1 << 16
MAX_NODES_PER_TREE = 1 << 24
MAX_TOTAL_NODES = 1 << 27
MAX_CATEGORY = 1 << 24
MAX_PARALLEL_TREES = 1 << 16

# Objectives each version registers (XGBOOST_REGISTER_OBJECTIVE in src/objective/, 0.90 to 3.x), with
# the transform prediction applies to the margin.
OBJECTIVES: dict[str, str] = {
    "reg:squarederror": "identity",
    "reg:linear": "identity",
    "reg:squaredlogerror": "identity",
    "reg:pseudohubererror": "identity",
    "reg:absoluteerror": "identity",
    "reg:quantileerror": "identity",
    "reg:expectileerror": "identity",
    "reg:logistic": "sigmoid",
    "binary:logistic": "sigmoid",
    "binary:logitraw": "identity",
    "binary:hinge": "hinge",
    "count:poisson": "exp",
    "reg:gamma": "exp",
    "reg:tweedie": "exp",
    "survival:cox": "exp",
    "survival:aft": "exp",
    "multi:softmax": "argmax",
    "multi:softprob": "softmax",
    "rank:pairwise": "identity",
    "rank:ndcg": "identity",
    "rank:map": "identity",
}
# 0.x's GPU objective names; later versions read them under the plain name.
LEGACY_GPU_OBJECTIVES = {
    f"gpu:{name}": name for name in ("reg:linear", "reg:logistic", "binary:logistic", "binary:logitraw")
}
BOOSTERS = ("gbtree", "dart", "gblinear")
# DMatrix feature types XGBoost saves: quantitative, integer, float, indicator, categorical.
FEATURE_TYPES = frozenset({"q", "int", "float", "i", "c"})
# ProbToMargin of each objective family (src/objective/regression_loss.h and friends): the JSON's
# base_score is in probability space, the margin starts from its transform.
_MARGIN_OF_BASE = {"sigmoid": "logit", "exp": "log"}


def objective_name(name: str) -> str:
    return LEGACY_GPU_OBJECTIVES.get(name, name)


@dataclass
class Tree:
    """One regression tree, node-indexed arrays as libxgboost holds them."""

    left: list[int]
    right: list[int]
    split_index: list[int]
    split_condition: list[float]
    default_left: list[bool]
    deleted: list[bool]
    base_weight: list[float]
    loss_change: list[float]
    sum_hessian: list[float]
    parents: list[int] | None = None
    num_deleted: int = 0
    tree_num_feature: int = 0
    size_leaf_vector: int = 0
    split_type: list[int] | None = None
    categories: list[int] = field(default_factory=list)
    categories_nodes: list[int] = field(default_factory=list)
    categories_segments: list[int] = field(default_factory=list)
    categories_sizes: list[int] = field(default_factory=list)

    @property
    def num_nodes(self) -> int:
        return len(self.left)

    def is_categorical(self, node: int) -> bool:
        return bool(self.split_type) and self.split_type[node] == 1  # type: ignore[index]


@dataclass
class XGBoostModel:
    """What the gate read. `base_score` holds one value per output group in probability space (the JSON
    convention, 1.0+); a 0.x binary stores the margin, said by `base_score_is_margin`."""

    source_format: str
    writer_version: tuple[int, ...] | None
    objective: str
    objective_config: dict[str, Any]
    booster: str
    base_score: list[float]
    num_feature: int
    num_class: int
    num_target: int = 1
    base_score_is_margin: bool = False
    boost_from_average: int = 1
    trees: list[Tree] = field(default_factory=list)
    tree_info: list[int] = field(default_factory=list)
    num_parallel_tree: int = 1
    iteration_indptr: list[int] | None = None
    weight_drop: list[float] | None = None
    linear_weights: list[float] | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    feature_names: list[str] = field(default_factory=list)
    feature_types: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None
    # A scikit-learn wrapper's facts (`class`, `classes`) when the file pickled one, else None.
    estimator: dict[str, Any] | None = None

    @property
    def num_groups(self) -> int:
        return max(self.num_class, self.num_target, 1)

    def describe(self) -> dict[str, Any]:
        return {
            "framework": "xgboost",
            "format": self.source_format,
            # 0.x wrote no version into the old binary format (its margin base score says it is 0.x).
            "writer_version": ".".join(map(str, self.writer_version))
            if self.writer_version
            else ("0.x" if self.base_score_is_margin else None),
            "objective": self.objective,
            "booster": self.booster,
            "num_feature": self.num_feature,
            "num_class": self.num_class,
            "num_trees": len(self.trees),
            "num_parallel_tree": self.num_parallel_tree,
            **({"estimator": self.estimator["class"]} if self.estimator else {}),
        }


def _finite(value: float, what: str, where: str) -> None:
    if not math.isfinite(value):
        raise refuse(Reason.NOT_FINITE, f"{what} is {value}", where)


def validate(model: XGBoostModel) -> XGBoostModel:
    """Refuses (NativeRefusal) a model libxgboost would read out of bounds, loop on, or mispredict."""
    objective = objective_name(model.objective)
    if objective not in OBJECTIVES:
        raise refuse(Reason.UNKNOWN_OBJECTIVE, f"{model.objective!r} is not an XGBoost objective", "objective")
    if model.booster not in BOOSTERS:
        raise refuse(Reason.UNSUPPORTED, f"booster {model.booster!r} is not one of {', '.join(BOOSTERS)}", "booster")
    if not 0 < model.num_feature <= MAX_FEATURES:
        raise refuse(
            Reason.INCONSISTENT, f"num_feature is {model.num_feature}, not in 1..{MAX_FEATURES}", "num_feature"
        )
    if not 0 <= model.num_class <= MAX_CLASSES:
        raise refuse(Reason.INCONSISTENT, f"num_class is {model.num_class}, not in 0..{MAX_CLASSES}", "num_class")
    if not 1 <= model.num_target <= MAX_CLASSES:
        raise refuse(Reason.INCONSISTENT, f"num_target is {model.num_target}", "num_target")
    for what, names in (("feature_names", model.feature_names), ("feature_types", model.feature_types)):
        if len(names) not in (0, model.num_feature):
            raise refuse(Reason.INCONSISTENT, f"{len(names)} {what} for {model.num_feature} features", what)
    unknown_types = set(model.feature_types) - FEATURE_TYPES
    if unknown_types:
        raise refuse(Reason.UNSUPPORTED, f"feature types {sorted(unknown_types)}", "feature_types")
    transform = OBJECTIVES[objective]
    if objective.startswith("multi:") and model.num_class < 2:
        raise refuse(Reason.INCONSISTENT, f"{objective} with num_class {model.num_class}", "num_class")
    if not objective.startswith("multi:") and model.num_class > 1:
        raise refuse(Reason.INCONSISTENT, f"{objective} is not multi-class but num_class is {model.num_class}")
    if len(model.base_score) not in (1, model.num_groups):
        raise refuse(Reason.INCONSISTENT, f"{len(model.base_score)} base scores for {model.num_groups} outputs")
    for value in model.base_score:
        _finite(value, "base_score", "base_score")
        if model.base_score_is_margin or objective.startswith("multi:"):
            continue
        # ProbToMargin: logit needs (0, 1), log needs > 0; XGBoost checks it only when training.
        if transform == "sigmoid" and not 0 < value < 1:
            raise refuse(Reason.NOT_FINITE, f"base_score {value} has no logit ({objective})", "base_score")
        if transform == "exp" and not value > 0:
            raise refuse(Reason.NOT_FINITE, f"base_score {value} has no log ({objective})", "base_score")
    if model.booster == "gblinear":
        _validate_linear(model)
    else:
        _validate_trees(model)
    return model


def _validate_linear(model: XGBoostModel) -> None:
    weights = model.linear_weights or []
    expected = (model.num_feature + 1) * model.num_groups
    if len(weights) != expected:
        raise refuse(
            Reason.INCONSISTENT,
            f"{len(weights)} weights for {model.num_feature} features and {model.num_groups} outputs "
            f"(needs {expected})",
            "gblinear",
        )
    for index, weight in enumerate(weights):
        _finite(weight, f"weight {index}", "gblinear")
    if model.trees:
        raise refuse(Reason.INCONSISTENT, "a gblinear model holds trees", "gblinear")


def _validate_trees(model: XGBoostModel) -> None:
    count = len(model.trees)
    vectors = next((tree.size_leaf_vector for tree in model.trees if tree.size_leaf_vector > 1), None)
    if vectors is not None:
        raise refuse(
            Reason.UNSUPPORTED,
            f"vector leaves of {vectors} outputs (multi_strategy=multi_output_tree, experimental in XGBoost): "
            "the gate validates one output per tree",
            "trees",
        )
    if len(model.tree_info) != count:
        raise refuse(Reason.INCONSISTENT, f"{len(model.tree_info)} tree_info entries for {count} trees", "tree_info")
    for index, group in enumerate(model.tree_info):
        if not 0 <= group < model.num_groups:
            raise refuse(
                Reason.INCONSISTENT, f"tree {index} belongs to output {group}, the model has {model.num_groups}"
            )
    if not 1 <= model.num_parallel_tree <= MAX_PARALLEL_TREES:
        raise refuse(Reason.INCONSISTENT, f"num_parallel_tree is {model.num_parallel_tree}", "gbtree_model_param")
    per_iteration = model.num_parallel_tree * model.num_groups
    if count % per_iteration:
        raise refuse(
            Reason.INCONSISTENT,
            f"{count} trees is not a whole number of iterations of {per_iteration} "
            f"({model.num_groups} outputs x {model.num_parallel_tree} parallel trees)",
            "gbtree_model_param",
        )
    if model.iteration_indptr is not None:
        indptr = model.iteration_indptr
        if not indptr or indptr[0] != 0 or indptr[-1] != count or any(b < a for a, b in itertools.pairwise(indptr)):
            raise refuse(Reason.INCONSISTENT, f"iteration_indptr does not partition {count} trees", "iteration_indptr")
    if model.booster == "dart":
        drops = model.weight_drop
        if drops is None or len(drops) != count:
            raise refuse(Reason.INCONSISTENT, f"dart needs {count} tree weights, has {len(drops or [])}", "weight_drop")
        for index, weight in enumerate(drops):
            _finite(weight, f"weight_drop[{index}]", "dart")
    total = 0
    for index, tree in enumerate(model.trees):
        total += tree.num_nodes
        if total > MAX_TOTAL_NODES:
            raise refuse(Reason.LENGTH_TOO_LARGE, f"more than {MAX_TOTAL_NODES} nodes in all", "trees")
        validate_tree(tree, model.num_feature, f"tree {index}")


def validate_tree(tree: Tree, num_feature: int, where: str) -> None:
    n = tree.num_nodes
    if not 0 < n <= MAX_NODES_PER_TREE:
        raise refuse(Reason.INCONSISTENT, f"{n} nodes", where)
    arrays = {
        "right_children": tree.right,
        "split_indices": tree.split_index,
        "split_conditions": tree.split_condition,
        "default_left": tree.default_left,
        "deleted": tree.deleted,
        "base_weights": tree.base_weight,
        "loss_changes": tree.loss_change,
        "sum_hessian": tree.sum_hessian,
    }
    if tree.parents is not None:
        arrays["parents"] = tree.parents
    if tree.split_type is not None:
        arrays["split_type"] = tree.split_type
    for name, values in arrays.items():
        if len(values) != n:
            raise refuse(Reason.INCONSISTENT, f"{name} has {len(values)} entries for {n} nodes", where)
    if tree.size_leaf_vector > 1:
        raise refuse(Reason.UNSUPPORTED, f"vector leaves (size_leaf_vector {tree.size_leaf_vector})", where)
    deleted = sum(tree.deleted[1:])
    if deleted != tree.num_deleted:
        raise refuse(Reason.INCONSISTENT, f"num_deleted is {tree.num_deleted}, {deleted} nodes are deleted", where)
    categorical = _validate_categories(tree, where)
    # Every node reached from the root exactly once: a tree, so prediction ends at a leaf.
    parent_of = [INVALID_NODE] * n
    seen = [False] * n
    seen[0] = True
    stack = [0]
    while stack:
        node = stack.pop()
        if tree.deleted[node]:
            raise refuse(Reason.NOT_A_TREE, f"node {node} is deleted but reachable", where)
        if tree.left[node] == INVALID_NODE:
            _finite(tree.split_condition[node], f"leaf value of node {node}", where)
            continue
        feature = tree.split_index[node]
        if not 0 <= feature < num_feature:
            raise refuse(
                Reason.FEATURE_OUT_OF_RANGE,
                f"node {node} splits on feature {feature}, num_feature is {num_feature}",
                where,
            )
        if node not in categorical:
            _finite(tree.split_condition[node], f"split condition of node {node}", where)
        for child in (tree.left[node], tree.right[node]):
            if not 0 <= child < n:
                raise refuse(Reason.CHILD_OUT_OF_RANGE, f"node {node} has child {child}, the tree has {n} nodes", where)
            if seen[child]:
                raise refuse(Reason.NOT_A_TREE, f"node {child} is reached twice (a cycle or a shared child)", where)
            seen[child] = True
            parent_of[child] = node
            stack.append(child)
    if tree.parents is not None:
        # libxgboost's JSON loader dereferences parents[i] for every node i > 0 (RegTree::LoadModel).
        for node in range(1, n):
            parent = tree.parents[node]
            if not 0 <= parent < n:
                raise refuse(Reason.CHILD_OUT_OF_RANGE, f"node {node} has parent {parent}", where)
            if seen[node] and parent != parent_of[node]:
                raise refuse(Reason.NOT_A_TREE, f"node {node} names parent {parent}, not {parent_of[node]}", where)


def _validate_categories(tree: Tree, where: str) -> set[int]:
    if tree.split_type is None:
        if tree.categories or tree.categories_nodes:
            raise refuse(Reason.INCONSISTENT, "categories without split types", where)
        return set()
    nodes = tree.categories_nodes
    if len(tree.categories_segments) != len(nodes) or len(tree.categories_sizes) != len(nodes):
        raise refuse(Reason.INCONSISTENT, "categories_nodes, _segments and _sizes differ in length", where)
    if any(b <= a for a, b in itertools.pairwise(nodes)) or any(not 0 <= v < tree.num_nodes for v in nodes):
        raise refuse(Reason.CATEGORY_OUT_OF_RANGE, "categories_nodes are not increasing node indices", where)
    listed = set(nodes)
    for node, kind in enumerate(tree.split_type):
        if kind not in (0, 1) or (kind == 1) != (node in listed):
            raise refuse(Reason.INCONSISTENT, f"node {node} has split type {kind}", where)
    for node, begin, size in zip(nodes, tree.categories_segments, tree.categories_sizes, strict=True):
        if size <= 0 or begin < 0 or begin + size > len(tree.categories):
            raise refuse(Reason.CATEGORY_OUT_OF_RANGE, f"node {node}: categories [{begin}, +{size}) outside", where)
    for value in tree.categories:
        if not 0 <= value < MAX_CATEGORY:
            raise refuse(Reason.CATEGORY_OUT_OF_RANGE, f"category {value} is outside 0..{MAX_CATEGORY - 1}", where)
    return listed


# ---------------------------------------------------------------------------------------------------
# Reference evaluation (Python; float64 sums of float32 values, so equal to XGBoost's within 1e-5).


def base_margins(model: XGBoostModel) -> list[float]:
    scores = model.base_score * (model.num_groups if len(model.base_score) == 1 else 1)
    objective = objective_name(model.objective)
    if model.base_score_is_margin or objective.startswith("multi:"):
        return list(scores)
    kind = _MARGIN_OF_BASE.get(OBJECTIVES[objective])
    if kind == "logit":
        return [math.log(s / (1 - s)) for s in scores]
    if kind == "log":
        return [math.log(s) for s in scores]
    return list(scores)


def _leaf(tree: Tree, row: list[float]) -> float:
    node = 0
    while tree.left[node] != INVALID_NODE:
        value = row[tree.split_index[node]]
        if value != value:
            node = tree.left[node] if tree.default_left[node] else tree.right[node]
        elif tree.is_categorical(node):
            node = tree.right[node] if _in_categories(tree, node, value) else tree.left[node]
        else:
            node = tree.left[node] if value < tree.split_condition[node] else tree.right[node]
    return tree.split_condition[node]


def _in_categories(tree: Tree, node: int, value: float) -> bool:
    slot = tree.categories_nodes.index(node)
    begin, size = tree.categories_segments[slot], tree.categories_sizes[slot]
    return value >= 0 and int(value) in tree.categories[begin : begin + size]


def predict_margin(model: XGBoostModel, rows: list[list[float]]) -> list[list[float]]:
    groups = model.num_groups
    starts = base_margins(model)
    out = []
    for row in rows:
        if len(row) != model.num_feature:
            raise refuse(Reason.INPUT_WIDTH, f"a row has {len(row)} values, the model reads {model.num_feature}")
        margin = list(starts)
        if model.booster == "gblinear":
            weights = model.linear_weights or []
            for g in range(groups):
                total = weights[model.num_feature * groups + g]
                for f, value in enumerate(row):
                    if value == value:
                        total += value * weights[f * groups + g]
                margin[g] += total
        else:
            for index, tree in enumerate(model.trees):
                scale = model.weight_drop[index] if model.booster == "dart" and model.weight_drop else 1.0
                margin[model.tree_info[index]] += scale * _leaf(tree, row)
        out.append(margin)
    return out


def predict(model: XGBoostModel, rows: list[list[float]]) -> list[list[float]]:
    """Predictions as `Booster.predict` gives them (one list per row; one value for a single output)."""
    transform = OBJECTIVES[objective_name(model.objective)]
    result = []
    for margin in predict_margin(model, rows):
        if transform == "sigmoid":
            values = [1 / (1 + math.exp(-m)) if m > -700 else 0.0 for m in margin]
        elif transform == "exp":
            values = [math.exp(min(m, 700)) for m in margin]
        elif transform == "hinge":
            values = [1.0 if m > 0 else 0.0 for m in margin]
        elif transform == "softmax":
            top = max(margin)
            exps = [math.exp(m - top) for m in margin]
            values = [e / sum(exps) for e in exps]
        elif transform == "argmax":
            values = [float(margin.index(max(margin)))]
        else:
            values = list(margin)
        result.append(values)
    return result
