"""Objects of scikit-learn and of Python itself built by the gate: Python-class instances from a state the
schema admits, the Cython objects (Tree, KD/Ball trees, distance metrics, losses) from a state the
invariants admit, functools.partial from a function checked by identity, and the few core types.

A Cython object's `__setstate__` copies or indexes what it is given, so it only ever sees a state that
has passed its invariants. A Python instance never runs its class's own `__setstate__` unless that
function is one reviewed here (scikit-learn's version warning, the isotonic interpolator rebuilt from
checked arrays): otherwise its checked state is set into `__dict__`, and no class code runs at all.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from training_gate.inspector.invariants import invariant
from training_gate.inspector.restricted.errors import InvalidStructure, RefusedCall

if TYPE_CHECKING:
    from training_gate.inspector.restricted.construct import Construction

_MAX_TREE_FEATURES = 1 << 31
_MAX_OUTPUTS = 1 << 20


def _refuse(what: str) -> RefusedCall:
    return RefusedCall(f"{what}; nothing was run")


@invariant("cython-loss-parameters")
def check_loss_parameters(owner: str, values: Any) -> None:
    """A Cython loss holds at most one scalar parameter (a power, a quantile, a delta, a threshold)."""
    if not (type(values) is tuple and len(values) <= 1 and all(type(v) is float and math.isfinite(v) for v in values)):
        raise _refuse(f"{owner} takes no argument or one finite float")


# -- Python-class instances -------------------------------------------------------------------------------


def reviewed_setstate() -> frozenset[int]:
    """The `__setstate__` functions the gate calls after validating the state (by identity): scikit-learn's
    version warning, the HGB predictor's node dtype fix, the isotonic interpolator rebuilt from checked
    arrays, the Bunch's no-op (its items come with SETITEMS), and scipy >= 1.18's BSpline, whose state is
    (its _BSpline, an empty array) and which asks array_api_compat which namespace each belongs to."""
    from scipy.interpolate import BSpline
    from sklearn.base import BaseEstimator
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.isotonic import IsotonicRegression
    from sklearn.utils._bunch import Bunch

    owners = (BaseEstimator, TreePredictor, IsotonicRegression, Bunch, BSpline)
    functions = [inspect.getattr_static(owner, "__setstate__", None) for owner in owners]
    return frozenset(id(f) for f in functions if f is not None)


_REVIEWED: list[frozenset[int]] = []


def _setstate_of(cls: type) -> Any:
    try:
        return inspect.getattr_static(cls, "__setstate__")
    except AttributeError:
        return None


def _deprecation_wrapper_code() -> Any:
    """The code of scikit-learn's deprecated-class `__new__` (it warns, then calls object.__new__)."""
    from sklearn.utils.deprecation import deprecated

    @deprecated("probe")
    class Probe:
        pass

    return inspect.getattr_static(Probe, "__new__").__code__


_WRAPPER_CODE: list[Any] = []


def _plain_new(cls: type) -> bool:
    new = inspect.getattr_static(cls, "__new__", None)
    if cls.__new__ is object.__new__ or cls.__new__ is dict.__new__:
        return True
    if not _WRAPPER_CODE:
        _WRAPPER_CODE.append(_deprecation_wrapper_code())
    return getattr(new, "__code__", None) is _WRAPPER_CODE[0]


def instance_allowed(cls: type) -> str | None:
    """Why instances of `cls` cannot be built by the gate, or None. Every `__setstate__` along the class's
    MRO counts: a reviewed one may call the next through super()."""
    if not _plain_new(cls):
        return "it has its own __new__"
    if not _REVIEWED:
        _REVIEWED.append(reviewed_setstate())
    for base in cls.__mro__:
        setstate = vars(base).get("__setstate__")
        if setstate is not None and id(setstate) not in _REVIEWED[0]:
            return f"the __setstate__ of {base.__name__} is not one the gate has reviewed"
    return None


def new_instance(build: Construction, cls: type) -> Any:
    problem = instance_allowed(cls)
    if problem:
        raise _refuse(f"{build.name_of(cls)} cannot be built: {problem}")
    obj = dict.__new__(cls) if issubclass(cls, dict) else object.__new__(cls)
    return build.expect_build(obj, build_instance)


def build_instance(build: Construction, obj: Any, state: Any) -> Any:
    cls = type(obj)
    if state is None:
        state = {}
    if type(state) is tuple and len(state) == 2 and type(state[0]) is dict and state[1] is None:
        state = state[0]  # (dict, no slot state): how pickle spells a plain __dict__ sometimes
    if type(state) is tuple:
        # A tuple only for a class whose reviewed __setstate__ takes one, as its schema says.
        build.check_instance_state(cls, state)
        build.check_state(obj, state)
        _setstate_of(cls)(obj, state)
        return obj
    if type(state) is not dict:
        raise _refuse(f"BUILD on {build.name_of(obj)} with a {type(state).__name__}, not the dict the library writes")
    build.check_instance_state(cls, state)
    build.check_state(obj, state)
    if type(state.get("_sklearn_version")) is str:
        build.versions.append(state["_sklearn_version"])
    if isinstance(obj, dict):
        build.check_items(obj)
    setstate = _setstate_of(cls)
    if setstate is not None:
        setstate(obj, dict(state))
    else:
        obj.__dict__.update(state)
    return obj


def new_user_instance(build: Construction, cls: type) -> Any:
    """A class the deployment allowlisted by name (extra_allowed_globals): no schema is known, so its
    state is held to plain data and allowlisted objects, and no code of the class runs."""
    if cls.__new__ is not object.__new__:
        raise _refuse(f"{build.name_of(cls)} cannot be built: it has its own __new__")
    return build.expect_build(object.__new__(cls), _build_user_instance)


_PLAIN_DEFAULTS = (bool, int, float, str, bytes, type(None))


def _build_user_instance(build: Construction, obj: Any, state: Any) -> Any:
    cls = type(obj)
    state = {} if state is None else state
    if type(state) is not dict:
        raise _refuse(f"BUILD on {build.name_of(obj)} with a {type(state).__name__}, not a dict")
    for key in state:
        if type(key) is not str or key.startswith("__"):
            raise _refuse(f"BUILD on {build.name_of(obj)} with the attribute name {key!r}")
        # An instance attribute named like a method, property or other descriptor replaces it for this
        # object (predict_proba = None): what the gate calls would not be the class's code.
        try:
            found = inspect.getattr_static(cls, key)
        except AttributeError:
            continue
        if type(found) not in _PLAIN_DEFAULTS:
            raise InvalidStructure(cls.__name__, key, "shadows an attribute of its class")
    build.check_plain(cls.__name__, state)
    obj.__dict__.update(state)
    return obj


# -- the Cython tree ----------------------------------------------------------------------------------------


def call_tree(build: Construction, args: tuple) -> Any:
    from sklearn.tree._tree import Tree

    check_tree_arguments(args)
    tree = Tree(args[0], args[1].astype(np.intp), args[2])
    return build.expect_build(tree, _build_tree)


@invariant("tree-constructor")
def check_tree_arguments(args: tuple) -> None:
    if len(args) == 3 and type(args[0]) is int and type(args[2]) is int and type(args[1]) is np.ndarray:
        n_features, classes, n_outputs = args
        if 0 < n_features <= _MAX_TREE_FEATURES and 0 < n_outputs <= _MAX_OUTPUTS and classes.shape == (n_outputs,):
            if classes.dtype.kind in "iu" and (classes >= 1).all() and classes.max() <= 1 << 24:
                return
    raise _refuse("Tree takes (n_features > 0, one class count >= 1 per output, n_outputs > 0)")


_TREE_KEYS = {"max_depth", "node_count", "nodes", "values"}


def _build_tree(build: Construction, tree: Any, state: Any) -> Any:
    if type(state) is not dict or set(state) != _TREE_KEYS:
        raise InvalidStructure("Tree", "state", f"has other fields than {sorted(_TREE_KEYS)}")
    build.check_state(tree, state)
    tree.__setstate__(state)
    return tree


# -- KD/Ball trees and distance metrics (built by `newObj`, then given a tuple) --------------------------------


def call_new_object(build: Construction, args: tuple) -> Any:
    if len(args) != 1:
        raise _refuse("newObj takes one class")
    return build.new(args[0])


def new_cython(build: Construction, cls: type) -> Any:
    """A Cython class whose pickle is newObj(cls) and a BUILD of its state tuple."""
    return build.expect_build(cls.__new__(cls), _build_cython)


def _build_cython(build: Construction, obj: Any, state: Any) -> Any:
    if type(state) is not tuple:
        raise InvalidStructure(type(obj).__name__, "state", "is not the tuple the library writes")
    build.check_state(obj, state)
    obj.__setstate__(state)
    return obj


# -- losses -------------------------------------------------------------------------------------------------


def scalar_loss(cls: type) -> Any:
    """A Cython loss rebuilt by calling its class: no argument, or its one scalar parameter (Tweedie's
    power, the pinball quantile, a Huber delta, SGD's hinge threshold or epsilon)."""

    def call(build: Construction, args: tuple) -> Any:
        check_loss_parameters(build.name_of(cls), args)
        return cls(*args)

    return call


def loss_unpickle(cls: type) -> Any:
    """Cython's generated `__pyx_unpickle_<Loss>(cls, checksum, state)`: the class must be the one this
    function unpickles (by identity), and the gate calls it with the scalar the state holds."""

    def call(build: Construction, args: tuple) -> Any:
        if len(args) != 3 or args[0] is not cls or type(args[1]) is not int:
            raise _refuse(f"the unpickle function of {build.name_of(cls)} builds that class only")
        state = () if args[2] is None else args[2]
        check_loss_parameters(build.name_of(cls), state)
        return cls(*state)

    return call


# -- functools.partial around check_array -------------------------------------------------------------------

_CHECK_ARRAY_KEYWORDS = frozenset(
    {"dtype", "ensure_all_finite", "force_all_finite", "accept_sparse", "copy", "order", "ensure_2d"}
)


def call_partial(build: Construction, args: tuple) -> Any:
    from sklearn.utils.validation import check_array

    # partial.__reduce__ passes the function alone; its arguments come with BUILD.
    if len(args) != 1 or args[0] is not check_array:
        raise _refuse("partial wraps check_array only")
    return build.expect_build(functools.partial(check_array), _build_partial)


def _build_partial(build: Construction, partial: Any, state: Any) -> Any:
    from sklearn.utils.validation import check_array

    check_partial_state(state)
    partial.__setstate__((check_array, (), dict(state[2]), None))
    return partial


@invariant("partial-check-array")
def check_partial_state(state: Any) -> None:
    from sklearn.utils.validation import check_array

    if not (type(state) is tuple and len(state) == 4):
        raise _refuse("a partial's state is (function, arguments, keywords, namespace)")
    func, arguments, keywords, namespace = state
    if func is not check_array or arguments != () or type(keywords) is not dict or namespace not in (None, {}):
        raise _refuse("a partial is check_array with keyword arguments only, and no attributes of its own")
    check_partial_keywords(keywords)


_NUMPY_TYPES = (np.float64, np.float32, np.int64, np.int32, np.uint8)


def check_partial_keywords(keywords: dict[str, Any]) -> None:
    for key, argument in keywords.items():
        if key not in _CHECK_ARRAY_KEYWORDS:
            raise InvalidStructure("partial", "keywords", f"name {key!r}, not a check_array option the gate knows")
        parts = argument if type(argument) in (list, tuple) else [argument]
        plain = all(type(p) in (bool, str, type(None)) or any(p is t for t in _NUMPY_TYPES) for p in parts)
        if not plain:
            raise InvalidStructure("partial", f"keywords[{key!r}]", "is not a plain value or a numpy type")


# -- core types ------------------------------------------------------------------------------------------------


def call_slice(build: Construction, args: tuple) -> Any:
    if len(args) <= 3 and all(a is None or type(a) is int for a in args):
        return slice(*args)
    raise _refuse("slice takes integers or None")


def call_complex(build: Construction, args: tuple) -> Any:
    if len(args) <= 2 and all(type(a) is float for a in args):
        return complex(*args)
    raise _refuse("complex takes two floats")


def call_ordered_dict(build: Construction, args: tuple) -> Any:
    if args != ():
        raise _refuse("OrderedDict is rebuilt empty, then filled")
    return OrderedDict()


def call_encode(build: Construction, args: tuple) -> Any:
    # Protocol 2 writes bytes as _codecs.encode(text, "latin1"); any other codec is not a bytes literal.
    if len(args) == 2 and type(args[0]) is str and args[1] == "latin1":
        return args[0].encode("latin1")
    raise _refuse("_codecs.encode takes a str and latin1 only")


def call_bytes(build: Construction, args: tuple) -> Any:
    if args == ():
        return b""
    raise _refuse("bytes is rebuilt empty only (protocol 2 writes b'' so)")


def call_set(build: Construction, args: tuple) -> Any:
    # Protocols 2 and 3 write a set as set([items]).
    if len(args) == 1 and type(args[0]) is list:
        return set(args[0])
    if args == ():
        return set()
    raise _refuse("set takes one list")


def call_frozenset(build: Construction, args: tuple) -> Any:
    if len(args) == 1 and type(args[0]) is list:
        return frozenset(args[0])
    if args == ():
        return frozenset()
    raise _refuse("frozenset takes one list")
