"""Value patterns: what an attribute of a library-written state may hold, as data.

A pattern is a JSON object; each key admits one family of values:

    {"none": true, "bool": true, "int": true, "float": true, "complex": true, "str": true, "bytes": true,
     "array": {"float": [1, 2], "V:<descr>": [1], "object": {"ndims": [1], "items": <pattern>}},
     "masked": {...as array...},
     "list": <pattern of the items>, "tuple": <...>, "set": <...>, "frozenset": <...>,
     "dict": {"keys": <pattern>, "values": <pattern>}, "odict": {...},
     "objects": ["module.Class", ...], "estimators": true, "types": [...], "functions": [...], "partial": true,
     "dtype": true, "plain": true}

"estimators" admits an instance of any allowlisted estimator class: where scikit-learn keeps whatever
estimator the user gave (a pipeline's steps, a search's best estimator), which one is not part of the
state's shape; the estimator's own state is then held to its own class's schema.

Scalars are matched by kind (a Python int and a numpy int64 are both "int"): which width a fitted
attribute has depends on the training data, and C code reads arrays, not scalars. Arrays are matched by
kind and number of dimensions; a structured dtype exactly. Classes, types and functions are named in the
data and compared by identity with the objects the allowlist resolved from those names: a value's own
`__module__` or `__qualname__` is never read to decide anything.

`describe` turns one value into the narrowest pattern that admits it (the schema generator unions them);
`Matcher` checks a value against a pattern.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

Pattern = dict[str, Any]

SCALAR_KINDS = ("bool", "int", "float", "complex", "str", "bytes")
_ARRAY_KINDS = {"b": "bool", "i": "int", "u": "int", "f": "float", "c": "complex", "U": "str", "S": "bytes"}
_CONTAINERS: dict[type, str] = {list: "list", tuple: "tuple", set: "set", frozenset: "frozenset"}
_MAPPINGS: dict[type, str] = {dict: "dict", OrderedDict: "odict"}
# Deeper than any state scikit-learn writes; a file nesting further is refused, not recursed into.
MAX_DEPTH = 64


def scalar_kind(value: Any) -> str | None:
    """The kind of a Python or numpy scalar, by exact type (a subclass of int is not an int here)."""
    kind = type(value)
    if kind is bool or kind is np.bool_:
        return "bool"
    if kind is int:
        return "int"
    if kind is float:
        return "float"
    if kind is complex:
        return "complex"
    if kind is str or kind is np.str_:
        return "str"
    if kind is bytes or kind is np.bytes_:
        return "bytes"
    if isinstance(value, np.generic) and kind in _NUMPY_SCALARS:
        return _ARRAY_KINDS.get(np.dtype(kind).kind)
    return None


_NUMPY_SCALARS = frozenset(
    np.dtype(code).type for code in ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16")
) | {np.longdouble}


def dtype_key(dtype: np.dtype) -> str | None:
    """The pattern key of an array dtype: its kind, or a structured dtype exactly (its descr)."""
    if dtype.names is not None:
        return None if dtype.hasobject else f"V:{dtype.descr}"
    if dtype.kind == "O":
        return "object"
    return _ARRAY_KINDS.get(dtype.kind)


FUNCTION_TYPES: tuple[type, ...] = (
    type(len),
    type(dtype_key),
    np.ufunc,
    type(np.mean),  # numpy's array-function dispatchers are their own type
)


def is_function(value: Any) -> bool:
    return isinstance(value, FUNCTION_TYPES) and not isinstance(value, type)


# -- describe (the generator) -------------------------------------------------------------------------


def describe(value: Any, name_of: Callable[[Any], str | None], depth: int = 0) -> Pattern:
    """The narrowest pattern admitting `value`. `name_of` gives the allowlisted name of a class, type
    or function (None: not allowlisted, which the generator reports)."""
    if depth > MAX_DEPTH:
        raise ValueError("nesting deeper than any state the library writes")
    if value is None:
        return {"none": True}
    kind = scalar_kind(value)
    if kind is not None:
        return {kind: True}
    kind_of = type(value)
    if kind_of is np.ndarray or kind_of is np.ma.MaskedArray:
        key = "array" if kind_of is np.ndarray else "masked"
        dkey = dtype_key(value.dtype)
        if dkey is None:
            raise ValueError(f"an array of dtype {value.dtype} (objects inside a structured dtype)")
        if dkey == "object":
            items: Pattern = {}
            for item in value.ravel().tolist():
                items = merge(items, describe(item, name_of, depth + 1))
            return {key: {"object": {"ndims": [value.ndim], "items": items}}}
        return {key: {dkey: [value.ndim]}}
    if kind_of in _CONTAINERS:
        items = {}
        for item in value:
            items = merge(items, describe(item, name_of, depth + 1))
        return {_CONTAINERS[kind_of]: items}
    if kind_of in _MAPPINGS:
        keys: Pattern = {}
        values: Pattern = {}
        for key, item in value.items():
            keys = merge(keys, describe(key, name_of, depth + 1))
            values = merge(values, describe(item, name_of, depth + 1))
        return {_MAPPINGS[kind_of]: {"keys": keys, "values": values}}
    if kind_of is functools.partial:
        return {"partial": True}
    if isinstance(value, np.dtype):
        return {"dtype": True}
    if isinstance(value, type):
        return {"types": [_named(value, name_of)]}
    if is_function(value):
        return {"functions": [_named(value, name_of)]}
    return {"objects": [_named(kind_of, name_of)]}


def _named(obj: Any, name_of: Callable[[Any], str | None]) -> str:
    name = name_of(obj)
    if name is None:
        raise LookupError(obj)
    return name


def merge(left: Pattern, right: Pattern) -> Pattern:
    """The union of two patterns."""
    out = dict(left)
    for key, value in right.items():
        if key not in out:
            out[key] = value
        elif key in SCALAR_KINDS or key in ("none", "partial", "estimators", "plain", "dtype"):
            out[key] = True
        elif key in ("objects", "types", "functions"):
            out[key] = sorted(set(out[key]) | set(value))
        elif key in ("array", "masked"):
            out[key] = _merge_arrays(out[key], value)
        elif key in ("dict", "odict"):
            out[key] = {
                "keys": merge(out[key]["keys"], value["keys"]),
                "values": merge(out[key]["values"], value["values"]),
            }
        else:  # a container's items
            out[key] = merge(out[key], value)
    return out


def _merge_arrays(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    out = dict(left)
    for key, value in right.items():
        if key not in out:
            out[key] = value
        elif key == "object":
            out[key] = {
                "ndims": sorted(set(out[key]["ndims"]) | set(value["ndims"])),
                "items": merge(out[key]["items"], value["items"]),
            }
        else:
            out[key] = sorted(set(out[key]) | set(value))
    return out


# -- match (the loader) ---------------------------------------------------------------------------------


class Matcher:
    """Checks values against patterns; `resolve` maps a name in the data to the allowlisted object
    (None when this environment has no such object: the name then admits nothing), `is_estimator` says
    whether a class is an allowlisted estimator class. Every mutable container a checked value holds is
    added to `sealed`: once checked, the loader lets no later opcode change it."""

    def __init__(
        self,
        resolve: Callable[[str], Any],
        is_estimator: Callable[[type], bool],
        cache: dict[tuple[int, str], frozenset[int]] | None = None,
    ):
        self._resolve = resolve
        self._is_estimator = is_estimator
        self._ids: dict[tuple[int, str], frozenset[int]] = {} if cache is None else cache
        # id -> the container: held, so that an id is never reused by a new container while loading
        self.sealed: dict[int, Any] = {}
        self.trusted_functions: frozenset[int] = frozenset()
        self.name_of: Callable[[Any], str] = lambda obj: getattr(obj, "__name__", type(obj).__name__)

    def _identities(self, pattern: Pattern, key: str) -> frozenset[int]:
        cache_key = (id(pattern), key)
        found = self._ids.get(cache_key)
        if found is None:
            objects = (self._resolve(name) for name in pattern.get(key, ()))
            found = frozenset(id(obj) for obj in objects if obj is not None)
            self._ids[cache_key] = found
        return found

    def problem(self, value: Any, pattern: Pattern, depth: int = 0) -> str | None:
        """None if `value` fits `pattern`, else what does not fit."""
        if depth > MAX_DEPTH:
            return "nests deeper than any state the library writes"
        if pattern.get("plain") and self._plain(value, depth):
            return None
        if value is None:
            return None if pattern.get("none") else "is None"
        kind = scalar_kind(value)
        if kind is not None:
            return None if pattern.get(kind) else f"is a {kind}"
        kind_of = type(value)
        if kind_of is np.ndarray or kind_of is np.ma.MaskedArray:
            return self._array(value, pattern.get("array" if kind_of is np.ndarray else "masked"), depth)
        if kind_of in _CONTAINERS:
            items = pattern.get(_CONTAINERS[kind_of])
            if items is None:
                return f"is a {_CONTAINERS[kind_of]}"
            self.sealed[id(value)] = value
            for position, item in enumerate(value):
                problem = self.problem(item, items, depth + 1)
                if problem:
                    return f"[{position}] {problem}"
            return None
        if kind_of in _MAPPINGS:
            spec = pattern.get(_MAPPINGS[kind_of])
            if spec is None:
                return f"is a {_MAPPINGS[kind_of]}"
            self.sealed[id(value)] = value
            for key, item in value.items():
                problem = self.problem(key, spec["keys"], depth + 1) or self.problem(item, spec["values"], depth + 1)
                if problem:
                    return f"[{key!r}] {problem}"
            return None
        if kind_of is functools.partial:
            return None if pattern.get("partial") else "holds a functools.partial, which the library does not keep here"
        if isinstance(value, np.dtype):
            return None if pattern.get("dtype") else "is a dtype"
        if isinstance(value, type):
            if id(value) in self._identities(pattern, "types"):
                return None
            return f"holds the class {self.name_of(value)}, which the library does not keep here"
        if is_function(value):
            if id(value) in self._identities(pattern, "functions"):
                return None
            if "functions" in pattern and id(value) in self.trusted_functions:
                return None  # a function the deployment allowlisted, where the library keeps a function
            return f"holds the function {self.name_of(value)}, which the library does not keep here"
        if id(kind_of) in self._identities(pattern, "objects"):
            return None
        if pattern.get("estimators") and self._is_estimator(kind_of):
            return None
        return f"holds a {self.name_of(kind_of)}, a class the library does not write here"

    def _plain(self, value: Any, depth: int) -> bool:
        """Plain data: scalars, arrays of them, containers of plain data (a parameter such as a grid or a
        list of categories, whose constraint says "array-like" or "list")."""
        if depth > MAX_DEPTH:
            return False
        if value is None or scalar_kind(value) is not None:
            return True
        kind_of = type(value)
        if kind_of is np.ndarray:
            if value.dtype.names is not None and value.dtype.hasobject:
                return False
            return not value.dtype.hasobject or all(self._plain(v, depth + 1) for v in value.ravel().tolist())
        if kind_of in _CONTAINERS:
            self.sealed[id(value)] = value
            return all(self._plain(v, depth + 1) for v in value)
        if kind_of in _MAPPINGS:
            self.sealed[id(value)] = value
            return all(self._plain(k, depth + 1) and self._plain(v, depth + 1) for k, v in value.items())
        return False

    def _array(self, value: np.ndarray, spec: dict[str, Any] | None, depth: int) -> str | None:
        if spec is None:
            return "is an array"
        dkey = dtype_key(value.dtype)
        if dkey == "object":
            allowed = spec.get("object")
            if allowed is None or value.ndim not in allowed["ndims"]:
                return f"is a {value.ndim}-d object array"
            for item in value.ravel().tolist():
                problem = self.problem(item, allowed["items"], depth + 1)
                if problem:
                    return f"holds an item that {problem}"
            return None
        if dkey is not None and dkey.startswith("V:") and spec.get("V") and dkey not in spec:
            ndims = spec["V"]  # any record of numbers: only the loader's own top-level pattern says so
        else:
            ndims = spec.get(dkey) if dkey is not None else None
        if ndims is None or value.ndim not in ndims:
            return f"is a {value.ndim}-d array of dtype {value.dtype}"
        return None
