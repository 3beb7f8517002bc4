"""LightGBM's text model (`Booster.save_model`, `model_to_string`), read and validated before its C loader.

LightGBM's loader (src/boosting/gbdt_model_text.cpp, src/io/tree.cpp) scans for `=` without an end
check, jumps to `tree_sizes` offsets it never compares with the buffer, divides by
`num_tree_per_iteration`, and follows `left_child`/`right_child`, `split_feature` and categorical
`threshold` indices unchecked at prediction. This parser reads the same layout (a `key=value` header
up to the first `Tree=`, then one block of at most 22 `key=value` lines per tree, each ended by an
empty line, then `end of trees`) and refuses what would take the C code out of bounds: a NUL byte
(C stops reading there, so it would see another model), a tree block it would read differently, a
`tree_sizes` entry that does not land on the next `Tree=`, a child index outside the tree, a node
reached twice, a feature past `max_feature_idx`, a categorical threshold outside `cat_boundaries`,
a non-finite leaf, threshold or shrinkage.

Pickled Boosters (JumpStart) hold this text under `_handle` (4.x) or `handle` (3.x): `from_booster_state`.
The scikit-learn API's estimators (`LGBMClassifier`, `LGBMRegressor`, `LGBMRanker`, with `pickle` or
uncompressed `joblib`) hold such a Booster under `_Booster`, and their labels under `_classes`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from training_gate.inspector.native import pickle_data
from training_gate.inspector.native.errors import Reason, refuse

BOOSTER_CLASS = "lightgbm.basic.Booster"
WRAPPER_CLASSES = frozenset(
    f"lightgbm.sklearn.{name}" for name in ("LGBMModel", "LGBMClassifier", "LGBMRegressor", "LGBMRanker")
)
# LGBMClassifier keeps a fitted LabelEncoder (`_le`): read as data, its `classes_` beside `_classes`.
LABEL_ENCODERS = frozenset({"sklearn.preprocessing._label.LabelEncoder", "sklearn.preprocessing.label.LabelEncoder"})
MAX_FEATURES = 1 << 24
MAX_CLASSES = 1 << 16
MAX_LEAVES = 1 << 24
MAX_TREE_LINES = 22  # Tree::Tree(const char*) reads at most this many lines per tree
OBJECTIVES = {
    "regression": "identity",
    "regression_l1": "identity",
    "quantile": "identity",
    "huber": "identity",
    "fair": "identity",
    "mape": "identity",
    "poisson": "exp",
    "gamma": "exp",
    "tweedie": "exp",
    "binary": "sigmoid",
    "cross_entropy": "sigmoid",
    "cross_entropy_lambda": "log1p_exp",
    "multiclass": "softmax",
    "multiclassova": "sigmoid",
    "lambdarank": "identity",
    "rank_xendcg": "identity",
    "custom": "identity",
}
_INT = re.compile(r"-?[0-9]{1,19}")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?:nan|inf|NaN|Inf|-nan\(ind\))")
_CATEGORICAL, _DEFAULT_LEFT = 1, 2
_ZERO_THRESHOLD = 1e-35


@dataclass
class LightGBMTree:
    num_leaves: int
    num_cat: int
    leaf_value: list[float]
    shrinkage: float = 1.0
    split_feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    decision_type: list[int] = field(default_factory=list)
    left_child: list[int] = field(default_factory=list)
    right_child: list[int] = field(default_factory=list)
    cat_boundaries: list[int] = field(default_factory=list)
    cat_threshold: list[int] = field(default_factory=list)
    is_linear: bool = False
    leaf_const: list[float] = field(default_factory=list)
    leaf_features: list[list[int]] = field(default_factory=list)
    leaf_coeff: list[list[float]] = field(default_factory=list)


@dataclass
class LightGBMModel:
    version: str
    num_class: int
    num_tree_per_iteration: int
    max_feature_idx: int
    objective: str
    objective_params: dict[str, str]
    feature_names: list[str]
    average_output: bool
    trees: list[LightGBMTree]
    source_format: str = "text"
    # The validated model text: exactly what LightGBM's loader is given.
    text: bytes = b""
    # A scikit-learn wrapper's facts (`class`, `classes`) when the file pickled one, else None.
    estimator: dict[str, Any] | None = None
    # The iteration a pickled Booster predicts up to by default (its `best_iteration` after early stopping);
    # 0: every one. A text model saves only the iterations it predicts with.
    best_iteration: int = 0

    @property
    def num_feature(self) -> int:
        return self.max_feature_idx + 1

    @property
    def iterations(self) -> int:
        return len(self.trees) // max(self.num_tree_per_iteration, 1)

    def describe(self) -> dict[str, Any]:
        return {
            "framework": "lightgbm",
            "format": self.source_format,
            "writer_version": self.version,
            "objective": self.objective,
            "num_feature": self.num_feature,
            "num_class": self.num_class,
            "num_trees": len(self.trees),
            **({"estimator": self.estimator["class"]} if self.estimator else {}),
        }


def _int(text: str, what: str, low: int = 0, high: int = 1 << 31) -> int:
    if not _INT.fullmatch(text):
        raise refuse(Reason.MALFORMED, f"{text[:40]!r} is not an integer", what)
    value = int(text)
    if not low <= value <= high:
        raise refuse(Reason.INCONSISTENT, f"{value} is outside {low}..{high}", what)
    return value


def _float(text: str, what: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise refuse(Reason.MALFORMED, f"{text[:40]!r} is not a number", what)
    value = float(text.replace("-nan(ind)", "nan"))
    if not math.isfinite(value):
        raise refuse(Reason.NOT_FINITE, f"holds {text}", what)
    return value


def _split(text: str, count: int, what: str) -> list[str]:
    if count == 0:
        if text.strip(" "):
            raise refuse(Reason.INCONSISTENT, "holds values where none are declared", what)
        return []
    items = text.split(" ")
    if len(items) != count:
        raise refuse(Reason.INCONSISTENT, f"has {len(items)} values, {count} declared", what)
    return items


def _words(text: str, count: int, what: str) -> list[str]:
    items = text.split(" ")
    words = [item for item in items if item]
    if len(words) != count:
        raise refuse(Reason.INCONSISTENT, f"has {len(words)} values, {count} declared", what)
    return words


def _lines(text: str) -> list[str]:
    # Common::GetLine ends a line at "\n" or "\r"; SkipNewLine takes one "\r", then one "\n".
    return re.split(r"\r\n|\r|\n", text)


def read_lightgbm_text(data: bytes) -> LightGBMModel:
    if b"\x00" in data:
        raise refuse(Reason.MALFORMED, "a NUL byte (the C loader would stop reading there)", "lightgbm")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(Reason.MALFORMED, "not UTF-8 text", "lightgbm") from exc
    if not text.startswith("tree\n") and not text.startswith("tree\r"):
        raise refuse(Reason.NOT_THIS_FORMAT, "does not start with the line 'tree'", "lightgbm")
    lines = _lines(text)
    header: dict[str, str] = {}
    index = 0
    while index < len(lines) and not lines[index].startswith("Tree="):
        line = lines[index]
        index += 1
        if line == "end of trees":
            break
        if not line:
            continue
        parts = line.split("=")
        if len(parts) > 2 and parts[0] not in ("feature_names", "monotone_constraints"):
            raise refuse(Reason.MALFORMED, f"header line {line[:60]!r}", "header")
        key, value = parts[0], line[len(parts[0]) + 1 :] if len(parts) > 1 else ""
        if key in header:
            raise refuse(Reason.MALFORMED, f"{key!r} appears twice", "header")
        header[key] = value
    for required in ("num_class", "label_index", "max_feature_idx", "feature_names", "feature_infos"):
        if required not in header:
            raise refuse(Reason.MALFORMED, f"no {required}", "header")
    num_class = _int(header["num_class"], "num_class", 1, MAX_CLASSES)
    per_iteration = _int(header.get("num_tree_per_iteration", header["num_class"]), "num_tree_per_iteration", 1)
    max_feature_idx = _int(header["max_feature_idx"], "max_feature_idx", 0, MAX_FEATURES - 1)
    names = header["feature_names"].split(" ")
    if len(names) != max_feature_idx + 1:
        raise refuse(Reason.INCONSISTENT, f"{len(names)} names for {max_feature_idx + 1} features", "feature_names")
    if len(header["feature_infos"].split(" ")) != max_feature_idx + 1:
        raise refuse(Reason.INCONSISTENT, "feature_infos does not have one entry per feature", "feature_infos")
    if "monotone_constraints" in header and len(header["monotone_constraints"].split(" ")) != max_feature_idx + 1:
        raise refuse(Reason.INCONSISTENT, "monotone_constraints does not match the features", "monotone_constraints")
    objective, params = _objective(header.get("objective", "regression"), num_class)
    trees, offsets, end = _read_trees(lines, index, max_feature_idx)
    _check_trailer(lines, end)
    if "tree_sizes" in header:
        _check_tree_sizes(header["tree_sizes"], lines, offsets, end)
    if len(trees) % per_iteration:
        raise refuse(Reason.INCONSISTENT, f"{len(trees)} trees, {per_iteration} per iteration", "trees")
    if objective in ("multiclass", "multiclassova") and per_iteration != num_class:
        raise refuse(Reason.INCONSISTENT, f"{num_class} classes, {per_iteration} trees per iteration", "header")
    return LightGBMModel(
        version=header.get("version", ""),
        num_class=num_class,
        num_tree_per_iteration=per_iteration,
        max_feature_idx=max_feature_idx,
        objective=objective,
        objective_params=params,
        feature_names=names,
        average_output="average_output" in header,
        trees=trees,
        text=bytes(data),
    )


def _objective(text: str, num_class: int) -> tuple[str, dict[str, str]]:
    tokens = text.split(" ")
    name = tokens[0]
    if name not in OBJECTIVES:
        raise refuse(Reason.UNKNOWN_OBJECTIVE, f"{name!r} is not a LightGBM objective", "objective")
    params: dict[str, str] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition(":")
        if not sep:
            params[key] = ""
            continue
        _float(value, f"objective parameter {key}")
        params[key] = value
    if "num_class" in params and int(float(params["num_class"])) != num_class:
        raise refuse(Reason.INCONSISTENT, f"objective says num_class {params['num_class']}", "objective")
    return name, params


def _read_trees(lines: list[str], index: int, max_feature_idx: int) -> tuple[list[LightGBMTree], list[int], int]:
    trees: list[LightGBMTree] = []
    offsets: list[int] = []
    while index < len(lines):
        line = lines[index]
        if line == "end of trees":
            return trees, offsets, index
        if not line:
            index += 1
            continue
        if line != f"Tree={len(trees)}":
            raise refuse(Reason.MALFORMED, f"expected 'Tree={len(trees)}', found {line[:40]!r}", "trees")
        offsets.append(index)
        index += 1
        block: dict[str, str] = {}
        while index < len(lines) and lines[index]:
            if len(block) == MAX_TREE_LINES:
                raise refuse(
                    Reason.MALFORMED, f"more than {MAX_TREE_LINES} lines (LightGBM reads no more)", f"tree {len(trees)}"
                )
            key, sep, value = lines[index].partition("=")
            if not sep or key in block:
                raise refuse(Reason.MALFORMED, f"line {lines[index][:40]!r}", f"tree {len(trees)}")
            block[key] = value
            index += 1
        trees.append(_tree(block, max_feature_idx, f"tree {len(trees)}"))
    raise refuse(Reason.TRUNCATED, "no 'end of trees' line", "trees")


def _check_trailer(lines: list[str], end: int) -> None:
    """What follows `end of trees` as LightGBM writes it: a `parameters:` section closed by `end of
    parameters`, and from Python a last `pandas_categorical:<json>` line; a cut file misses either."""
    rest = lines[end + 1 :]
    if "parameters:" in rest and "end of parameters" not in rest:
        raise refuse(Reason.TRUNCATED, "the parameters section never ends", "parameters")
    tail = [line for line in rest if line.startswith("pandas_categorical:")]
    if tail:
        try:
            json.loads(tail[-1][len("pandas_categorical:") :])
        except ValueError as exc:
            raise refuse(Reason.TRUNCATED, "the pandas_categorical line is cut", "pandas_categorical") from exc


def _check_tree_sizes(text: str, lines: list[str], offsets: list[int], end: int) -> None:
    sizes = [_int(item, "tree_sizes", 0, 1 << 40) for item in text.split(" ")] if text else []
    if len(sizes) != len(offsets):
        raise refuse(Reason.INCONSISTENT, f"{len(sizes)} tree sizes for {len(offsets)} trees", "tree_sizes")
    # The loader starts tree i at the first tree plus the sizes before it, in bytes: each must land on
    # that tree's "Tree=" line, and the last one end where "end of trees" begins.
    positions = []
    total = 0
    for number, line in enumerate(lines):
        positions.append(total)
        total += len(line.encode("utf-8")) + 1
        if number == end:
            break
    start = positions[offsets[0]] if offsets else 0
    expected = [positions[o] - start for o in offsets[1:]] + ([positions[end] - start] if offsets else [])
    running = 0
    for number, size in enumerate(sizes):
        running += size
        if running != expected[number]:
            raise refuse(
                Reason.LENGTH_TOO_LARGE, f"tree {number}'s size {size} does not end at its block", "tree_sizes"
            )


def _tree(block: dict[str, str], max_feature_idx: int, where: str) -> LightGBMTree:
    if "num_leaves" not in block or "num_cat" not in block or "leaf_value" not in block:
        raise refuse(Reason.MALFORMED, "needs num_leaves, num_cat and leaf_value", where)
    leaves = _int(block["num_leaves"], f"{where} num_leaves", 1, MAX_LEAVES)
    num_cat = _int(block["num_cat"], f"{where} num_cat", 0, MAX_LEAVES)
    tree = LightGBMTree(
        num_leaves=leaves,
        num_cat=num_cat,
        leaf_value=[
            _float(v, f"{where} leaf_value") for v in _split(block["leaf_value"], leaves, f"{where} leaf_value")
        ],
        shrinkage=_float(block.get("shrinkage", "1"), f"{where} shrinkage"),
        is_linear=_int(block.get("is_linear", "0"), f"{where} is_linear", 0, 1) == 1,
    )
    inner = leaves - 1
    for optional in ("leaf_count", "leaf_weight"):
        if optional in block:
            _split(block[optional], leaves, f"{where} {optional}")
    for optional in ("split_gain", "internal_value", "internal_weight", "internal_count"):
        if optional in block and inner:
            _split(block[optional], inner, f"{where} {optional}")
    if tree.is_linear:
        _linear(tree, block, max_feature_idx, where)
    if leaves == 1:
        return tree
    for required in ("left_child", "right_child", "split_feature", "threshold"):
        if required not in block:
            raise refuse(Reason.MALFORMED, f"no {required}", where)
    tree.left_child = [
        _int(v, f"{where} left_child", -leaves, inner - 1) for v in _split(block["left_child"], inner, where)
    ]
    tree.right_child = [
        _int(v, f"{where} right_child", -leaves, inner - 1) for v in _split(block["right_child"], inner, where)
    ]
    tree.split_feature = [
        _feature(v, max_feature_idx, where) for v in _split(block["split_feature"], inner, f"{where} split_feature")
    ]
    tree.threshold = [_float(v, f"{where} threshold") for v in _split(block["threshold"], inner, f"{where} threshold")]
    decisions = block.get("decision_type")
    tree.decision_type = (
        [_int(v, f"{where} decision_type", 0, 127) for v in _split(decisions, inner, f"{where} decision_type")]
        if decisions is not None
        else [0] * inner
    )
    if num_cat:
        if "cat_boundaries" not in block or "cat_threshold" not in block:
            raise refuse(Reason.MALFORMED, "categorical splits without cat_boundaries and cat_threshold", where)
        tree.cat_boundaries = [
            _int(v, f"{where} cat_boundaries", 0, 1 << 31) for v in _split(block["cat_boundaries"], num_cat + 1, where)
        ]
        bounds = tree.cat_boundaries
        if bounds[0] != 0 or any(b < a for a, b in itertools.pairwise(bounds)):
            raise refuse(Reason.CATEGORY_OUT_OF_RANGE, "cat_boundaries do not increase from 0", where)
        tree.cat_threshold = [
            _int(v, f"{where} cat_threshold", 0, (1 << 32) - 1)
            for v in _split(block["cat_threshold"], bounds[-1], f"{where} cat_threshold")
        ]
    _check_structure(tree, where)
    return tree


def _feature(text: str, max_feature_idx: int, where: str) -> int:
    value = _int(text, f"{where} split_feature", -(1 << 31), 1 << 31)
    if not 0 <= value <= max_feature_idx:
        raise refuse(
            Reason.FEATURE_OUT_OF_RANGE, f"splits on feature {value}, max_feature_idx is {max_feature_idx}", where
        )
    return value


def _linear(tree: LightGBMTree, block: dict[str, str], max_feature_idx: int, where: str) -> None:
    leaves = tree.num_leaves
    tree.leaf_const = [_float(v, f"{where} leaf_const") for v in _split(block.get("leaf_const", ""), leaves, where)]
    counts = [
        _int(v, f"{where} num_features", 0, max_feature_idx + 1)
        for v in _split(block.get("num_features", ""), leaves, where)
    ]
    total = sum(counts)
    # Written leaf by leaf, each group followed by a space (Tree::ToString); read as `total` numbers.
    features = [_feature(v, max_feature_idx, where) for v in _words(block.get("leaf_features", ""), total, where)]
    coeffs = [_float(v, f"{where} leaf_coeff") for v in _words(block.get("leaf_coeff", ""), total, where)]
    start = 0
    for count in counts:
        tree.leaf_features.append(features[start : start + count])
        tree.leaf_coeff.append(coeffs[start : start + count])
        start += count


def _check_structure(tree: LightGBMTree, where: str) -> None:
    inner = tree.num_leaves - 1
    seen_inner = [False] * inner
    seen_leaf = [False] * tree.num_leaves
    seen_inner[0] = True
    stack = [0]
    while stack:
        node = stack.pop()
        decision = tree.decision_type[node]
        if (decision >> 2) & 3 == 3:
            raise refuse(Reason.MALFORMED, f"node {node} has missing type 3", where)
        if decision & _CATEGORICAL:
            slot = tree.threshold[node]
            if slot != int(slot) or not 0 <= slot < tree.num_cat:
                raise refuse(
                    Reason.CATEGORY_OUT_OF_RANGE, f"node {node} names category set {slot} of {tree.num_cat}", where
                )
        for child in (tree.left_child[node], tree.right_child[node]):
            if child >= 0:
                if seen_inner[child]:
                    raise refuse(Reason.NOT_A_TREE, f"node {child} is reached twice (a cycle or a shared child)", where)
                seen_inner[child] = True
                stack.append(child)
            else:
                if seen_leaf[~child]:
                    raise refuse(Reason.NOT_A_TREE, f"leaf {~child} is reached twice", where)
                seen_leaf[~child] = True
    if not all(seen_inner) or not all(seen_leaf):
        raise refuse(Reason.NOT_A_TREE, "a node or leaf is not reached from the root", where)


# ---------------------------------------------------------------------------------------------------


def from_booster_state(state: Mapping[str, Any]) -> LightGBMModel:
    """A pickled Booster's state as plain data (4.x keeps the model text under `_handle`, 3.x `handle`)."""
    text = state.get("_handle", state.get("handle"))
    if not isinstance(text, str):
        raise refuse(Reason.PICKLE_SHAPE, "the Booster's state has no model text", "pickle")
    model = read_lightgbm_text(text.encode("utf-8"))
    model.source_format = "pickle"
    return model


def read_lightgbm(data: bytes) -> LightGBMModel:
    """A LightGBM text model, a pickled Booster or a pickled scikit-learn wrapper, by content."""
    if data[:1] == b"\x80":
        classes = frozenset({BOOSTER_CLASS}) | WRAPPER_CLASSES | LABEL_ENCODERS
        value = pickle_data.read_pickle(data, classes, "lightgbm pickle", arrays=True)
        if isinstance(value, pickle_data.PickledObject) and value.cls in WRAPPER_CLASSES:
            return from_wrapper_state(value)
        return from_booster_state(pickle_data.object_state(value, BOOSTER_CLASS, "pickle"))
    return read_lightgbm_text(data)


def from_wrapper_state(wrapper: pickle_data.PickledObject) -> LightGBMModel:
    state = wrapper.state
    model = from_booster_state(pickle_data.object_state(state.get("_Booster"), BOOSTER_CLASS, "pickle _Booster"))
    model.source_format = "sklearn-pickle"
    classes: list[Any] | None = None
    labels = state.get("_classes")
    if isinstance(labels, pickle_data.PickledArray) and labels.built and len(labels.shape) == 1:
        classes = list(labels.values)
        expected = 2 if model.objective in ("binary", "cross_entropy") else model.num_class
        if model.objective in ("binary", "multiclass", "multiclassova") and len(classes) != expected:
            raise refuse(
                Reason.INCONSISTENT, f"the estimator lists {len(classes)} classes, its Booster predicts {expected}"
            )
    model.estimator = {"class": wrapper.cls.rsplit(".", 1)[-1], "classes": classes}
    return model


def _decide(tree: LightGBMTree, node: int, value: float) -> int:
    decision = tree.decision_type[node]
    if decision & _CATEGORICAL:
        if value != value or value < 0:
            return tree.right_child[node]
        slot = int(tree.threshold[node])
        begin, end = tree.cat_boundaries[slot], tree.cat_boundaries[slot + 1]
        word, bit = divmod(int(value), 32)
        if word < end - begin and (tree.cat_threshold[begin + word] >> bit) & 1:
            return tree.left_child[node]
        return tree.right_child[node]
    missing = (decision >> 2) & 3
    if value != value and missing != 2:
        value = 0.0
    if (missing == 1 and -_ZERO_THRESHOLD <= value <= _ZERO_THRESHOLD) or (missing == 2 and value != value):
        return tree.left_child[node] if decision & _DEFAULT_LEFT else tree.right_child[node]
    return tree.left_child[node] if value <= tree.threshold[node] else tree.right_child[node]


def _leaf_output(tree: LightGBMTree, row: list[float]) -> float:
    leaf = 0
    if tree.num_leaves > 1:
        node = 0
        while node >= 0:
            node = _decide(tree, node, row[tree.split_feature[node]])
        leaf = ~node
    if tree.is_linear:
        features = tree.leaf_features[leaf]
        if any(row[f] != row[f] for f in features):
            return tree.leaf_value[leaf]
        return tree.leaf_const[leaf] + sum(c * row[f] for f, c in zip(features, tree.leaf_coeff[leaf], strict=True))
    return tree.leaf_value[leaf]


def predict_raw(model: LightGBMModel, rows: list[list[float]]) -> list[list[float]]:
    per = model.num_tree_per_iteration
    out = []
    for row in rows:
        if len(row) != model.num_feature:
            raise refuse(Reason.INPUT_WIDTH, f"a row has {len(row)} values, the model reads {model.num_feature}")
        raw = [0.0] * per
        for index, tree in enumerate(model.trees):
            raw[index % per] += _leaf_output(tree, row)
        if model.average_output and model.trees:
            raw = [r / (len(model.trees) // per) for r in raw]
        out.append(raw)
    return out


def predict(model: LightGBMModel, rows: list[list[float]]) -> list[list[float]]:
    transform = OBJECTIVES[model.objective]
    sigmoid = float(model.objective_params.get("sigmoid", "1") or 1)
    result = []
    for raw in predict_raw(model, rows):
        if transform == "sigmoid":
            values = [1 / (1 + math.exp(min(max(-sigmoid * r, -700), 700))) for r in raw]
        elif transform == "softmax":
            top = max(raw)
            exps = [math.exp(r - top) for r in raw]
            values = [e / sum(exps) for e in exps]
        elif transform == "exp":
            values = [math.exp(min(r, 700)) for r in raw]
        elif transform == "log1p_exp":
            values = [math.log1p(math.exp(min(r, 700))) for r in raw]
        else:
            values = list(raw)
        result.append(values)
    return result
