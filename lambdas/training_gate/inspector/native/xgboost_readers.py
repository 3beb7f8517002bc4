"""The gate's own readers for every format XGBoost writes, each producing an `XGBoostModel` (not yet validated).

- old binary (`binf`, `Booster.save_model` before 2.0 and the 0.90 pickle's state): the 136-byte
  LearnerModelParam, objective and booster names, GBTreeModelParam (160 bytes), per tree a TreeParam
  (148 bytes), its nodes (20 bytes each) and RTreeNodeStat (16 bytes each), tree_info, dart weights or
  gblinear weights, then the optional attributes (and, from 0.x, the Poisson max_delta_step and eval
  metric names). Layouts: include/xgboost/tree_model.h, src/gbm/gbtree_model.h, src/learner.cc of
  v0.90 and v1.7.6.
- memory snapshot (1.0-1.2 pickles): `CONFIG-offset:`, an int64 offset, the old binary model, then the
  JSON configuration.
- JSON and UBJSON models (1.0+ / 1.6+) and the `{"Model", "Config"}` snapshot later pickles hold.

Every length is checked against the bytes present before it is read; JSON objects with a repeated key
are refused (two readers would pick different values).
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any

from training_gate.inspector.native import ubjson
from training_gate.inspector.native._bytes import Reader
from training_gate.inspector.native.errors import NativeRefusal, Reason, refuse
from training_gate.inspector.native.xgboost_model import (
    DELETED_MARKER,
    MAX_NODES_PER_TREE,
    Tree,
    XGBoostModel,
)

SNAPSHOT_HEADER = b"CONFIG-offset:"
_LEARNER_PARAM = struct.Struct("<fIiiiIIIi25i")  # 136 bytes, LearnerModelParam(Legacy)
_GBTREE_PARAM = struct.Struct("<iiiiqii32i")  # 160 bytes
_TREE_PARAM = struct.Struct("<iiiiii31i")  # 148 bytes
_GBLINEAR_PARAM = struct.Struct("<Ii32i")  # 136 bytes
_NODE = struct.Struct("<iiiIf")  # parent, left, right, split index (top bit: default left), leaf value/split
_STAT = struct.Struct("<fffi")  # loss_chg, sum_hess, base_weight, leaf_child_cnt
MAX_NAME = 256
MAX_ATTRIBUTES = 100_000
MAX_ATTRIBUTE_BYTES = 1 << 20


def detect(data: bytes) -> str:
    """The format of XGBoost model bytes by their content (names are a user's choice)."""
    head = bytes(data[:16])
    if head.startswith(SNAPSHOT_HEADER):
        return "snapshot"
    if head[:1] == b"{":
        rest = head[1:].lstrip()
        if rest[:1] == b'"' or rest[:1] == b"}":
            return "json"
        if head[1:2] == b"L":
            return "ubjson"
    if head[:1] == b"\x80":
        return "pickle"
    if head[:4] == b"bs64":
        return "base64"
    return "old-binary"


# ---------------------------------------------------------------------------------------------------
# Old binary


def read_old_binary(data: bytes, where: str = "old binary") -> XGBoostModel:
    reader = Reader(data, where)
    if bytes(data[:4]) == b"binf":
        reader.take(4, "header")
    elif bytes(data[:4]) == b"bs64":
        raise refuse(Reason.UNSUPPORTED, "base64 models are read by no XGBoost since 0.7", where)
    fields = _LEARNER_PARAM.unpack(reader.take(_LEARNER_PARAM.size, "LearnerModelParam"))
    base_score, num_feature, num_class, extra_attrs, eval_metrics, major, minor, num_target, from_average = fields[:9]
    objective = reader.string("objective name", MAX_NAME)
    booster = reader.string("booster name", MAX_NAME)
    model = XGBoostModel(
        source_format="old-binary",
        writer_version=(major, minor) if major else None,
        objective=objective,
        objective_config={},
        booster=booster,
        base_score=[base_score],
        num_feature=num_feature,
        num_class=num_class,
        num_target=num_target or 1,
        base_score_is_margin=major == 0,
        boost_from_average=from_average,
    )
    if booster in ("gbtree", "dart"):
        _read_gbtree(reader, model)
        if booster == "dart" and model.trees:
            count = reader.length("dart weight_drop", 4, len(model.trees))
            model.weight_drop = list(reader.array("f", count, "dart weight_drop"))
    elif booster == "gblinear":
        reader.take(_GBLINEAR_PARAM.size, "GBLinearModelParam")
        count = reader.length("gblinear weights", 4)
        model.linear_weights = list(reader.array("f", count, "gblinear weights"))
    else:
        raise refuse(Reason.UNSUPPORTED, f"booster {booster!r}", where)
    if extra_attrs:
        count = reader.length("attributes", 16, MAX_ATTRIBUTES)
        for _ in range(count):
            key = reader.string("attribute name", MAX_ATTRIBUTE_BYTES)
            value = reader.string("attribute value", MAX_ATTRIBUTE_BYTES)
            if key in model.attributes:
                raise refuse(Reason.MALFORMED, f"attribute {key!r} appears twice", where)
            model.attributes[key] = value
    if major == 0 and objective == "count:poisson":
        model.attributes.setdefault("count_poisson_max_delta_step", reader.string("max_delta_step", MAX_NAME))
    if eval_metrics:
        count = reader.length("eval metrics", 8, MAX_ATTRIBUTES)
        for _ in range(count):
            reader.string("eval metric name", MAX_NAME)
    if reader.remaining:
        raise refuse(Reason.TRAILING_BYTES, f"{reader.remaining} bytes after the model", where)
    if "objective" in model.attributes:
        model.objective_config = _object(
            parse_json(model.attributes["objective"].encode(), "objective attribute"), "objective attribute"
        )
    return model


def _read_gbtree(reader: Reader, model: XGBoostModel) -> None:
    fields = _GBTREE_PARAM.unpack(reader.take(_GBTREE_PARAM.size, "GBTreeModelParam"))
    num_trees, num_roots_or_parallel, _, _, _, num_output_group, size_leaf_vector = fields[:7]
    if num_trees < 0:
        raise refuse(Reason.MALFORMED, f"num_trees is {num_trees}", reader.where)
    if num_trees * (_TREE_PARAM.size + _NODE.size + _STAT.size + 4) > reader.remaining:
        raise refuse(Reason.LENGTH_TOO_LARGE, f"{num_trees} trees cannot fit in {reader.remaining} bytes", reader.where)
    if num_output_group not in (0, model.num_groups):
        raise refuse(
            Reason.INCONSISTENT,
            f"num_output_group is {num_output_group}, num_class {model.num_class} means {model.num_groups}",
            reader.where,
        )
    if size_leaf_vector not in (0, 1):
        raise refuse(Reason.UNSUPPORTED, f"size_leaf_vector {size_leaf_vector}", reader.where)
    # 0.x called this slot num_roots (always 1); 1.x stores num_parallel_tree there.
    model.num_parallel_tree = num_roots_or_parallel if model.writer_version else 1
    for index in range(num_trees):
        model.trees.append(_read_tree(reader, f"{reader.where}: tree {index}"))
    model.tree_info = list(reader.array("i", num_trees, "tree_info"))


def _read_tree(reader: Reader, where: str) -> Tree:
    num_roots, num_nodes, num_deleted, _, tree_num_feature, size_leaf_vector = _TREE_PARAM.unpack(
        reader.take(_TREE_PARAM.size, f"{where} TreeParam")
    )[:6]
    if num_roots != 1:
        raise refuse(Reason.UNSUPPORTED, f"{num_roots} roots (XGBoost wrote 1 since 0.7)", where)
    if not 0 < num_nodes <= MAX_NODES_PER_TREE:
        raise refuse(Reason.LENGTH_TOO_LARGE, f"num_nodes is {num_nodes}", where)
    if num_nodes * (_NODE.size + _STAT.size) > reader.remaining:
        raise refuse(
            Reason.LENGTH_TOO_LARGE, f"{num_nodes} nodes need more than the {reader.remaining} bytes left", where
        )
    nodes = list(_NODE.iter_unpack(reader.take(_NODE.size * num_nodes, f"{where} nodes")))
    stats = list(_STAT.iter_unpack(reader.take(_STAT.size * num_nodes, f"{where} stats")))
    return Tree(
        left=[n[1] for n in nodes],
        right=[n[2] for n in nodes],
        split_index=[n[3] & 0x7FFFFFFF for n in nodes],
        split_condition=[n[4] for n in nodes],
        default_left=[bool(n[3] >> 31) for n in nodes],
        deleted=[n[3] == DELETED_MARKER for n in nodes],
        base_weight=[s[2] for s in stats],
        loss_change=[s[0] for s in stats],
        sum_hessian=[s[1] for s in stats],
        num_deleted=num_deleted,
        tree_num_feature=tree_num_feature,
        size_leaf_vector=size_leaf_vector,
    )


def read_snapshot(data: bytes, where: str = "snapshot") -> XGBoostModel:
    """1.0-1.2's serialisation (pickles): header, int64 offset, old binary model, JSON config."""
    reader = Reader(data, where)
    if bytes(reader.take(len(SNAPSHOT_HEADER), "header")) != SNAPSHOT_HEADER:
        raise refuse(Reason.NOT_THIS_FORMAT, "no CONFIG-offset header", where)
    offset = reader.one("q", "config offset")
    if not 0 < offset <= reader.remaining:
        raise refuse(Reason.LENGTH_TOO_LARGE, f"config offset {offset}, {reader.remaining} bytes remain", where)
    model = read_old_binary(bytes(reader.take(offset, "binary model")), f"{where}: binary model")
    config = _object(parse_json(bytes(reader.take(reader.remaining, "config")), f"{where}: config"), "config")
    model.source_format = "snapshot"
    model.config = config
    objective = config.get("learner", {}).get("objective") if isinstance(config.get("learner"), dict) else None
    if isinstance(objective, dict):
        if objective.get("name") != model.objective:
            raise refuse(Reason.INCONSISTENT, f"config names objective {objective.get('name')!r}", where)
        model.objective_config = objective
    return model


# ---------------------------------------------------------------------------------------------------
# JSON and UBJSON


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise refuse(Reason.MALFORMED, f"key {key!r} appears twice in one object", "json")
        result[key] = value
    return result


def parse_json(data: bytes, where: str = "json") -> Any:
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except NativeRefusal:
        raise
    except RecursionError as exc:
        raise refuse(Reason.MALFORMED, "nested too deeply", where) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise refuse(Reason.MALFORMED, f"not JSON: {exc}", where) from exc


def read_json(data: bytes) -> XGBoostModel:
    return read_document(parse_json(data, "json model"), "json")


def read_ubjson(data: bytes) -> XGBoostModel:
    return read_document(ubjson.loads(data, "ubjson model"), "ubjson")


def read_document(document: Any, fmt: str) -> XGBoostModel:
    """A model document (`{"learner": ..., "version": ...}`) or a snapshot (`{"Model": ..., "Config": ...}`)."""
    document = _object(document, "document")
    if "Model" in document:
        model = read_document(document["Model"], fmt)
        model.source_format = f"{fmt}-snapshot"
        model.config = _object(document.get("Config", {}), "Config")
        return model
    version = document.get("version")
    if not (isinstance(version, list) and len(version) == 3 and all(_is_int(v) for v in version)):
        raise refuse(Reason.MALFORMED, "no version [major, minor, patch]", "document")
    learner = _object(document.get("learner"), "learner")
    params = _object(learner.get("learner_model_param"), "learner_model_param")
    objective = _object(learner.get("objective"), "objective")
    name = objective.get("name")
    if not isinstance(name, str):
        raise refuse(Reason.MALFORMED, "objective has no name", "objective")
    booster = _object(learner.get("gradient_booster"), "gradient_booster")
    model = XGBoostModel(
        source_format=fmt,
        writer_version=tuple(version),
        objective=name,
        objective_config=objective,
        booster=str(booster.get("name")),
        base_score=_base_score(params.get("base_score", "0.5")),
        num_feature=_int_text(params.get("num_feature"), "num_feature"),
        num_class=_int_text(params.get("num_class", "0"), "num_class"),
        num_target=_int_text(params.get("num_target", "1"), "num_target") or 1,
        boost_from_average=_int_text(params.get("boost_from_average", "1"), "boost_from_average"),
        attributes=_strings_map(learner.get("attributes", {}), "attributes"),
        feature_names=_strings(learner.get("feature_names", []), "feature_names"),
        feature_types=_strings(learner.get("feature_types", []), "feature_types"),
    )
    if model.booster == "gblinear":
        inner = _object(booster.get("model"), "gblinear model")
        model.linear_weights = _floats(inner.get("weights"), "gblinear weights")
        return model
    if model.booster == "dart":
        model.weight_drop = _floats(booster.get("weight_drop"), "weight_drop")
        booster = _object(booster.get("gbtree"), "dart gbtree")
    elif model.booster != "gbtree":
        raise refuse(Reason.UNSUPPORTED, f"booster {model.booster!r}", "gradient_booster")
    trees_model = _object(booster.get("model"), "gbtree model")
    tree_params = _object(trees_model.get("gbtree_model_param"), "gbtree_model_param")
    num_trees = _int_text(tree_params.get("num_trees"), "num_trees")
    model.num_parallel_tree = _int_text(tree_params.get("num_parallel_tree", "1"), "num_parallel_tree")
    trees = trees_model.get("trees")
    if not isinstance(trees, list) or len(trees) != num_trees:
        raise refuse(Reason.INCONSISTENT, f"num_trees is {num_trees}, the model lists a different number", "trees")
    model.trees = [_tree(tree, f"tree {index}") for index, tree in enumerate(trees)]
    model.tree_info = _ints(trees_model.get("tree_info"), "tree_info")
    if "iteration_indptr" in trees_model:
        model.iteration_indptr = _ints(trees_model["iteration_indptr"], "iteration_indptr")
    return model


def _tree(value: Any, where: str) -> Tree:
    tree = _object(value, where)
    params = _object(tree.get("tree_param"), f"{where} tree_param")
    num_nodes = _int_text(params.get("num_nodes"), f"{where} num_nodes")
    if not 0 < num_nodes <= MAX_NODES_PER_TREE:
        raise refuse(Reason.LENGTH_TOO_LARGE, f"num_nodes is {num_nodes}", where)
    left = _ints(tree.get("left_children"), f"{where} left_children")
    if len(left) != num_nodes:
        raise refuse(Reason.INCONSISTENT, f"{len(left)} left children for {num_nodes} nodes", where)
    split_index = _ints(tree.get("split_indices"), f"{where} split_indices")
    default_left = [bool(v) for v in _ints(tree.get("default_left"), f"{where} default_left", flags=True)]
    has_categories = "split_type" in tree
    return Tree(
        left=left,
        right=_ints(tree.get("right_children"), f"{where} right_children"),
        parents=_ints(tree.get("parents"), f"{where} parents"),
        split_index=split_index,
        split_condition=_floats(tree.get("split_conditions"), f"{where} split_conditions"),
        default_left=default_left,
        # A deleted node is written as split index 2^31-1 with the default-left bit (SaveModel).
        deleted=[i == 0x7FFFFFFF and d for i, d in zip(split_index, default_left, strict=False)],
        base_weight=_floats(tree.get("base_weights"), f"{where} base_weights"),
        loss_change=_floats(tree.get("loss_changes"), f"{where} loss_changes"),
        sum_hessian=_floats(tree.get("sum_hessian"), f"{where} sum_hessian"),
        num_deleted=_int_text(params.get("num_deleted", "0"), f"{where} num_deleted"),
        tree_num_feature=_int_text(params.get("num_feature", "0"), f"{where} num_feature"),
        size_leaf_vector=_int_text(params.get("size_leaf_vector", "0"), f"{where} size_leaf_vector"),
        split_type=_ints(tree.get("split_type"), f"{where} split_type") if has_categories else None,
        categories=_ints(tree.get("categories", []), f"{where} categories"),
        categories_nodes=_ints(tree.get("categories_nodes", []), f"{where} categories_nodes"),
        categories_segments=_ints(tree.get("categories_segments", []), f"{where} categories_segments"),
        categories_sizes=_ints(tree.get("categories_sizes", []), f"{where} categories_sizes"),
    )


_INT_TEXT = re.compile(r"-?[0-9]{1,20}")
_FLOAT_TEXT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?:nan|NaN|inf|Inf|infinity)")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise refuse(Reason.MALFORMED, f"{what} is {type(value).__name__}, not an object", what)
    return value


def _int_text(value: Any, what: str) -> int:
    """XGBoost stores parameters as decimal strings ("7"); a JSON integer is taken too."""
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    raise refuse(Reason.MALFORMED, f"{value!r} is not an integer", what)


def _float_text(value: Any, what: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value):
        return float(value)
    raise refuse(Reason.MALFORMED, f"{value!r} is not a number", what)


def _base_score(value: Any) -> list[float]:
    # 3.x writes a vector as text ("[5E-1]"); earlier versions one number ("5E-1").
    if isinstance(value, str) and value.startswith("["):
        items = value[1:-1].split(",") if value.endswith("]") else None
        if not items or len(items) > 1 << 16:
            raise refuse(Reason.MALFORMED, f"base_score {value[:40]!r}", "base_score")
        return [_float_text(item.strip(), "base_score") for item in items]
    return [_float_text(value, "base_score")]


def _ints(value: Any, what: str, flags: bool = False) -> list[int]:
    if not isinstance(value, list):
        raise refuse(Reason.MALFORMED, f"{what} is {type(value).__name__}, not an array", what)
    if isinstance(value, ubjson.TypedArray) and value.kind not in ("d", "D"):
        return list(value)
    for item in value:
        if not (_is_int(item) or (flags and isinstance(item, bool))):
            raise refuse(Reason.MALFORMED, f"{what} holds {type(item).__name__} {item!r}, not an integer", what)
    return [int(v) for v in value]


def _floats(value: Any, what: str) -> list[float]:
    if not isinstance(value, list):
        raise refuse(Reason.MALFORMED, f"{what} is {type(value).__name__}, not an array", what)
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise refuse(Reason.MALFORMED, f"{what} holds {type(item).__name__}, not a number", what)
        out.append(float(item))
    return out


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise refuse(Reason.MALFORMED, f"{what} is not a list of strings", what)
    return list(value)


def _strings_map(value: Any, what: str) -> dict[str, str]:
    value = _object(value, what)
    if not all(isinstance(v, str) for v in value.values()):
        raise refuse(Reason.MALFORMED, f"{what} has a value that is not a string", what)
    return dict(value)
