"""Pickled XGBoost and LightGBM models through the gate's loader: the Boosters the built-in containers and
JumpStart pickle, and the scikit-learn wrappers framework mode pickles (XGBClassifier, LGBMRanker...),
alone or inside a scikit-learn pipeline.

The loader (`inspector.restricted`) resolves every name a pickle uses through its table, by identity, and
builds every object itself. This module adds the frameworks' classes to that table when the image carries
their library:

- a wrapper (`xgboost.sklearn.XGBClassifier`...) is built like any estimator: an empty instance whose state
  must be one its library writes (`pickled_states.json`, learned from the zoo of every supported version by
  scripts/generate_pickled_states.py), then set through scikit-learn's reviewed `__setstate__`;
- a Booster is never given to `Booster.__setstate__`, which hands the file's bytes to C. Its state is held
  to the learned schema, its model bytes are read and validated by the gate's own parser
  (`inspector.native`), and the Booster the loader returns is a new one, loaded from what the gate
  validated: the JSON the gate wrote (XGBoost) or the validated text (LightGBM). Its other attributes (best
  iteration, parameters, feature names) are then set as `__setstate__` would.

So a Booster anywhere in a pickle (the model, a pipeline's step, a second one hidden in a wrapper's state,
which the schema refuses anyway) is validated before any C loader reads a byte of it, and the plug-ins
judge a pickled wrapper by the model the gate validated (`native_of`).
"""

from __future__ import annotations

import json
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training_gate.inspector.native import lightgbm_text, xgboost_format
from training_gate.inspector.native.errors import Reason, refuse
from training_gate.inspector.native.lightgbm_text import LightGBMModel
from training_gate.inspector.native.xgboost_convert import to_json
from training_gate.inspector.native.xgboost_model import XGBoostModel
from training_gate.inspector.restricted import sklearn_builders as sb
from training_gate.inspector.restricted.errors import InvalidStructure, RefusedCall
from training_gate.inspector.schema import ClassSchema

if TYPE_CHECKING:
    from training_gate.inspector.restricted.construct import Construction
    from training_gate.inspector.restricted.table import Table

STATES = Path(__file__).with_name("pickled_states.json")
XGBOOST_BOOSTER = "xgboost.core.Booster"
LIGHTGBM_BOOSTER = "lightgbm.basic.Booster"
# The label encoder XGBoost 1.0-1.5 classifiers keep (`_le`); later releases removed the class. The gate
# stands its own in for it where the image's xgboost has none: its state is only `classes_`.
LEGACY_ENCODER = "xgboost.compat.XGBoostLabelEncoder"
# What each Booster's state holds its model under (LightGBM 3 `handle`, 4 `_handle`).
_MODEL_KEYS = {XGBOOST_BOOSTER: ("handle",), LIGHTGBM_BOOSTER: ("_handle", "handle")}

# Each Booster the loader built, with the model the gate validated for it; the wrapper classes it admits.
_VALIDATED: weakref.WeakKeyDictionary[Any, XGBoostModel | LightGBMModel] = weakref.WeakKeyDictionary()
_WRAPPERS: weakref.WeakSet[type] = weakref.WeakSet()


@dataclass
class JudgedModel:
    """A pickle's model as the plug-ins judge it: the Booster the loader built, the model the gate validated
    for it, and the wrapper around it (None for a pickled Booster)."""

    framework: str  # xgboost or lightgbm
    booster: Any
    model: XGBoostModel | LightGBMModel
    estimator: Any = None


@cache
def class_schemas() -> dict[str, ClassSchema]:
    data = json.loads(STATES.read_text())
    return {name: ClassSchema.from_data(name, spec) for name, spec in data["classes"].items()}


class LegacyLabelEncoder:
    """Stands for `xgboost.compat.XGBoostLabelEncoder` in an image whose xgboost no longer defines it."""

    classes_: Any


class _Pending:
    """What NEWOBJ gives for a Booster until its state arrives: inert, and never returned once built."""

    __slots__ = ("__weakref__", "name")

    def __init__(self, name: str) -> None:
        self.name = name


def register(table: Table) -> dict[str, ClassSchema]:
    """Adds the frameworks' classes this image has to the loader's table; their schemas, by name."""
    schemas = class_schemas()
    found: dict[str, ClassSchema] = {}
    # The label encoder last: it stands in only where the image has xgboost, and the Booster says so.
    for name, schema in sorted(schemas.items(), key=lambda item: item[0] == LEGACY_ENCODER):
        if name in _MODEL_KEYS:
            # A Booster may be a file's top level (the built-in container's pickle), so it counts as an
            # estimator where the loader admits one.
            obj = table.add([name], new=_booster_new(name), estimator=True)
        elif name == LEGACY_ENCODER:
            obj = table.add([name], new=sb.new_instance)
            if obj is None and table.lookup(XGBOOST_BOOSTER) is not None:
                obj = table.add_object([name], LegacyLabelEncoder, new=_new_legacy_encoder)
        else:
            obj = table.add([name], new=sb.new_instance, estimator=True)
            if obj is not None:
                _WRAPPERS.add(obj)
        if obj is not None:
            found[name] = schema
    if found:
        # Protocol 2 and 3 pickles (XGBoost 0.90-1.2) write a Booster's bytes as bytearray(text, "latin-1");
        # LightGBM 3 keeps its best scores in a defaultdict.
        for spelling in ("builtins", "__builtin__"):
            table.add([f"{spelling}.bytearray"], call=_call_bytearray)
        table.add(["collections.defaultdict"], call=_call_defaultdict)
    return found


def native_of(booster: Any) -> XGBoostModel | LightGBMModel | None:
    """The model the gate validated for a Booster its loader built, or None (any other object)."""
    try:
        return _VALIDATED.get(booster)
    except TypeError:  # not weak-referenceable (or unhashable): no Booster
        return None


def judged_model(root: Any) -> JudgedModel | None:
    """The model a loaded pickle holds when it is a Booster, or a wrapper (by its class's identity) around
    one; None for anything else."""
    model = native_of(root)
    if model is not None:
        return JudgedModel(_framework(model), root, model)
    if type(root) not in _WRAPPERS:
        return None
    booster = vars(root).get("_Booster")
    model = native_of(booster)
    return JudgedModel(_framework(model), booster, model, root) if model is not None else None


def _framework(model: XGBoostModel | LightGBMModel) -> str:
    return "xgboost" if isinstance(model, XGBoostModel) else "lightgbm"


# -- Boosters --------------------------------------------------------------------------------------------------


def _booster_new(name: str) -> Callable[[Construction, type], Any]:
    def new(build: Construction, cls: type) -> Any:
        return build.expect_build(_Pending(name), _booster_build(name, cls))

    return new


def _booster_build(name: str, cls: type) -> Callable[[Construction, Any, Any], Any]:
    def build_booster(build: Construction, pending: Any, state: Any) -> Any:
        short = name.rsplit(".", 1)[-1]
        if type(state) is not dict:
            raise InvalidStructure(short, "state", "is not the dict its library pickles (the model's bytes)")
        build.check_instance_state(cls, state)
        model_key = next((key for key in _MODEL_KEYS[name] if state.get(key) is not None), None)
        if model_key is None:
            raise InvalidStructure(short, "state", "holds no model: a pickled Booster keeps its model's bytes")
        rest = {key: value for key, value in state.items() if key not in _MODEL_KEYS[name]}
        if name == XGBOOST_BOOSTER:
            return _xgboost_booster(cls, state, rest)
        return _lightgbm_booster(cls, state[model_key], rest)

    return build_booster


def _xgboost_booster(cls: type, state: dict[str, Any], rest: dict[str, Any]) -> Any:
    model = xgboost_format.from_booster_state(state)
    booster = cls(params={"nthread": 1})
    booster.load_model(bytearray(to_json(model)))
    booster.__dict__.update(rest)  # as Booster.__setstate__ does, the model aside
    _VALIDATED[booster] = model
    return booster


def _lightgbm_booster(cls: type, text: Any, rest: dict[str, Any]) -> Any:
    if type(text) is not str:
        raise InvalidStructure("Booster", "model", "is not the model text LightGBM pickles")
    model = lightgbm_text.read_lightgbm_text(text.encode("utf-8"))
    model.source_format = "pickle"
    booster = cls(params={"num_threads": 1}, model_str=model.text.decode("utf-8"))
    booster.__dict__.update(rest)
    _VALIDATED[booster] = model
    return booster


# -- helpers ---------------------------------------------------------------------------------------------------


def _new_legacy_encoder(build: Construction, cls: type) -> Any:
    return build.expect_build(object.__new__(cls), _build_legacy_encoder)


def _build_legacy_encoder(build: Construction, obj: Any, state: Any) -> Any:
    if type(state) is not dict:
        raise InvalidStructure("XGBoostLabelEncoder", "state", "is not a dict")
    build.check_instance_state(type(obj), state)
    obj.__dict__.update(state)
    return obj


def _call_bytearray(build: Construction, args: tuple) -> Any:
    if len(args) == 2 and type(args[0]) is str and args[1] in ("latin-1", "latin1"):
        return args[0].encode("latin-1")
    if len(args) == 1 and type(args[0]) is bytes:
        return args[0]
    if args == ():
        return b""
    raise RefusedCall("bytearray takes bytes, or text and latin-1; nothing was run")


def _call_defaultdict(build: Construction, args: tuple) -> Any:
    # defaultdict(OrderedDict) or defaultdict(dict): kept as the plain dict its items fill.
    if len(args) <= 1 and all(arg is dict or arg is OrderedDict for arg in args):
        return {}
    raise RefusedCall("defaultdict takes dict or OrderedDict as its factory; nothing was run")


# -- what the plug-ins read off a loaded pickle ---------------------------------------------------------------------


def classes_of(estimator: Any, booster_classes: int) -> list[Any] | None:
    """A wrapper's class labels as its predict returns them: `_le.classes_` (XGBoost 1.x), `classes_` or
    `_classes` (LightGBM), else range(n_classes_); checked against the Booster's outputs."""
    state = vars(estimator)
    found = None
    encoder = state.get("_le")
    for candidate in (getattr(encoder, "__dict__", {}).get("classes_"), state.get("classes_"), state.get("_classes")):
        if candidate is not None and getattr(candidate, "ndim", None) == 1:
            found = candidate.tolist()
            break
    n_classes = state.get("n_classes_", state.get("_n_classes"))
    if found is None and type(n_classes) is int and n_classes > 0:
        found = list(range(n_classes))
    if found is not None and (len(found) != booster_classes or len(set(map(repr, found))) != len(found)):
        raise refuse(
            Reason.INCONSISTENT,
            f"the estimator lists {len(found)} classes, its Booster predicts {booster_classes}",
            "pickle",
        )
    return found
