"""The invariants C code relies on, as a table (`table.json`): one row per relation between an object's
arrays (or between objects) that compiled code indexes without checking, each with the check that
enforces it here and, in the tests, a mutation that breaks exactly it.

A row names the classes (or the callables) it applies to, and its level:
- "construction": checked by the gate's builder of numpy and core objects on the arguments or state it
  is given (a dtype's fields, an array's bytes), always, before anything is built from them.
- "state": checked on the state a file gives an object, before the object's own code (a Cython
  `__setstate__`) sees it; the check gets the object (built empty by the gate) and that state.
- "model": checked on the finished object graph, before anything calls the model; the check gets the
  object. These are the relations between objects (an estimator's width and its tree's).

Rows whose classes do not exist in this scikit-learn are inactive; a check registered under no row, or a
row without a check, fails the table's test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("table.json")

Check = Callable[..., None]
CHECKS: dict[str, Check] = {}


def invariant(row_id: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        if row_id in CHECKS:
            raise ValueError(f"two checks for invariant {row_id}")
        CHECKS[row_id] = check
        return check

    return register


@dataclass(frozen=True)
class Row:
    id: str
    level: str  # "state" or "model"
    classes: tuple[str, ...]
    rule: str  # the relation, in words
    indexed_by: str  # the compiled code that relies on it


def rows() -> list[Row]:
    data = json.loads(TABLE.read_text())
    return [Row(r["id"], r["level"], tuple(r["classes"]), r["rule"], r["indexed_by"]) for r in data["invariants"]]


def _register_all() -> None:
    # The checks live in these modules; importing them fills CHECKS.
    from training_gate.inspector.invariants import hist, neighbors, other, trees  # noqa: F401
    from training_gate.inspector.restricted import numpy_builders, sklearn_builders  # noqa: F401


_enabled = [True]


def disable_for_tests() -> None:
    """Only the sandbox's test hooks call this: it lets a test show what an unvalidated object does."""
    _enabled[0] = False


class Invariants:
    """The table compiled against this environment: class identity -> the checks of each level."""

    def __init__(self, resolve: Callable[[str], Any]):
        _register_all()
        self._state: dict[int, list[tuple[Row, Check]]] = {}
        self._model: dict[int, list[tuple[Row, Check]]] = {}
        self._classes: dict[int, Any] = {}
        self.active: list[Row] = []
        for row in rows():
            check = CHECKS[row.id]
            if row.level == "construction":  # called by the builder that applies it, always
                self.active.append(row)
                continue
            target = self._state if row.level == "state" else self._model
            present = [cls for cls in map(resolve, row.classes) if cls is not None]
            for cls in present:
                self._classes[id(cls)] = cls
                target.setdefault(id(cls), []).append((row, check))
            if present:
                self.active.append(row)

    def _for(self, table: dict[int, list[tuple[Row, Check]]], obj: Any) -> list[tuple[Row, Check]]:
        cls = type(obj)
        if self._classes.get(id(cls)) is not cls:
            return []
        return table.get(id(cls), [])

    def check_state(self, obj: Any, state: Any) -> None:
        if _enabled[0]:
            for _row, check in self._for(self._state, obj):
                check(obj, state)

    def check_model(self, obj: Any) -> None:
        if _enabled[0]:
            for _row, check in self._for(self._model, obj):
                check(obj)

    def has_model_rows(self, obj: Any) -> bool:
        return bool(self._for(self._model, obj))
