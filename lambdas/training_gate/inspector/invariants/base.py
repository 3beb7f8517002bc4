"""Helpers the invariant checks share: a failure naming class and field, typed reads of arrays and integers
(by exact type: a subclass of ndarray or int is not what C code was written for), and the tree walk."""

from __future__ import annotations

from typing import Any

import numpy as np

from training_gate.inspector.restricted.errors import InvalidStructure

TREE_LEAF = -1


def fail(obj: Any, field: str, problem: str) -> InvalidStructure:
    return InvalidStructure(type(obj).__name__, field, problem)


def array(obj: Any, field: str, value: Any, ndim: int | None = None, kind: str | None = None) -> np.ndarray:
    if type(value) is not np.ndarray:
        raise fail(obj, field, f"is {type(value).__name__}, not an array")
    if ndim is not None and value.ndim != ndim:
        raise fail(obj, field, f"has {value.ndim} dimensions, not {ndim}")
    if kind is not None and value.dtype.kind not in kind:
        raise fail(obj, field, f"has dtype {value.dtype}")
    return value


def integer(obj: Any, field: str, value: Any, low: int = 0, high: int | None = None) -> int:
    if type(value) is not int and not (isinstance(value, np.integer) and type(value) is not np.bool_):
        raise fail(obj, field, f"is {type(value).__name__}, not an integer")
    if value < low or (high is not None and value > high):
        raise fail(obj, field, f"is {value}, outside [{low}, {high if high is not None else 'inf'}]")
    return int(value)


def attribute(obj: Any, field: str) -> Any:
    """A fitted attribute the relation needs: missing is a failure, never a skipped check."""
    try:
        return vars(obj)[field]
    except KeyError:
        raise fail(obj, field, "is missing: the relation it carries cannot be checked") from None


def width(obj: Any) -> int:
    return integer(obj, "n_features_in_", attribute(obj, "n_features_in_"), 1)


def tree_links(obj: Any, left: np.ndarray, right: np.ndarray, leaf: np.ndarray, prefix: str) -> np.ndarray:
    """Children of node i lie after i and inside the array, and every node but the root has exactly
    one parent: a tree, so every descent ends at a leaf. Returns each node's depth."""
    count = len(left)
    index = np.arange(count)
    inner = ~leaf
    for field, child in (("left", left), ("right", right)):
        bad = inner & ((child <= index) | (child >= count))
        if bad.any():
            node = int(np.flatnonzero(bad)[0])
            raise fail(obj, f"{prefix}{field}", f"of node {node} is {int(child[node])}, not a later node < {count}")
    parents = np.zeros(count, dtype=np.int64)
    np.add.at(parents, left[inner].astype(np.int64), 1)
    np.add.at(parents, right[inner].astype(np.int64), 1)
    if (count and parents[0] != 0) or (parents[1:] != 1).any():
        raise fail(obj, f"{prefix}children", "do not form a tree: a node has no parent or two")
    depth = np.zeros(count, dtype=np.int64)
    frontier, level = np.zeros(1, dtype=np.int64), 0
    while frontier.size:
        depth[frontier] = level
        split = frontier[inner[frontier]]
        frontier = np.concatenate([left[split], right[split]]).astype(np.int64)
        level += 1
    return depth


def members(value: Any) -> list[Any]:
    """The estimators of a list, tuple or object array, flattened."""
    if type(value) is np.ndarray:
        return list(value.ravel())
    if type(value) in (list, tuple):
        return list(value)
    return []
