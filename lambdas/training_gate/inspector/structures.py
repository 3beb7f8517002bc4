"""The walk over a loaded model: every object reachable from the root is visited once, and each of a class
with model-level invariants (`invariants/table.json`) is checked, before anything calls the model.

The states themselves were checked while the gate built each object (the schema of the state the library
writes, and the state-level invariants): what is left for the finished graph are the relations between
objects, such as an estimator's width and its tree's.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy import sparse

from training_gate.inspector import invariants
from training_gate.inspector.restricted.errors import InvalidStructure
from training_gate.inspector.schema.patterns import is_function

__all__ = ["MAX_OBJECTS", "InvalidStructure", "disable_for_tests", "validate_model"]

# Walking a model visits each object once; a pickle that claims more objects than this is refused.
MAX_OBJECTS = 5_000_000
# Nothing to check inside: scalars, classes, and modules (scipy's splines keep their array namespace).
_LEAVES = (str, bytes, int, float, complex, bool, type(None), type, np.generic, np.dtype, types.ModuleType)


def disable_for_tests() -> None:
    """Only the sandbox's test hooks call this: it lets a test show what an unvalidated object does."""
    invariants.disable_for_tests()


def validate_model(root: Any, checks: invariants.Invariants) -> None:
    """Visit every object reachable from `root` once and run the model-level invariants of each."""
    seen: set[int] = set()
    pending: list[Any] = [root]
    while pending:
        obj = pending.pop()
        if isinstance(obj, _LEAVES) or is_function(obj):
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if len(seen) > MAX_OBJECTS:
            raise InvalidStructure("model", "object graph", f"has more than {MAX_OBJECTS} objects")
        checks.check_model(obj)
        pending.extend(_children(obj))


def _children(obj: Any) -> Iterable[Any]:
    if isinstance(obj, dict):
        return [
            *obj.values(),
            *obj.keys(),
            *(vars(obj).values() if type(obj) is not dict and hasattr(obj, "__dict__") else ()),
        ]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return obj
    if isinstance(obj, np.ndarray):
        return obj.ravel().tolist() if obj.dtype.hasobject else ()
    if hasattr(obj, "__dict__") and not sparse.issparse(obj):  # a sparse matrix was checked whole
        return list(vars(obj).values())
    return ()  # an extension type (its state was checked when it was built), or a leaf
