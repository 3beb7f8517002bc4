#!/usr/bin/env python3
"""Learns the states scikit-learn writes from the estimator zoo and writes them as the inspector's schema.

    python scripts/generate_inspector_schema.py           # this environment's scikit-learn, written fresh
    python scripts/generate_inspector_schema.py --merge   # add this environment to the committed file
    python scripts/generate_inspector_schema.py --check   # exit 1 if the committed file misses anything

Every specimen of tests/unit/zoo_catalogue.py is fitted (one BLAS/OpenMP thread), and each fitted model
is walked as pickle writes it: for every object of an allowlisted Python class, its state (what
`__reduce_ex__` gives pickle) is described attribute by attribute (`schema.patterns.describe`). A class's
schema is the union over all its states, plus what its parameter constraints (`_parameter_constraints`)
admit for each parameter, plus the functions the gate lets a model keep (`FUNCTION_SLOTS`). The file is
lambdas/training_gate/inspector/schema/sklearn-<version>.json; one file serves every environment of that
scikit-learn (the image lock's and the development one): regenerate in one and `--merge` from the other.
"""

from __future__ import annotations

import argparse
import copyreg
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "lambdas")]
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
from sklearn.base import BaseEstimator  # noqa: E402

from scripts.inspector_schema_sources import FUNCTION_SLOTS, INTERNAL_CLASSES, constraint_pattern  # noqa: E402
from tests.unit import zoo_catalogue  # noqa: E402
from training_gate.inspector.restricted.table import fixed_table, resolve_name  # noqa: E402
from training_gate.inspector.schema import path_for  # noqa: E402
from training_gate.inspector.schema.patterns import describe, is_function, merge  # noqa: E402

# -- walking fitted models as pickle writes them -------------------------------------------------------------


class Learner:
    def __init__(self) -> None:
        self.fixed = fixed_table()
        self.candidates: dict[str, type] = {}
        for name in INTERNAL_CLASSES:
            cls = resolve_name(name)
            if isinstance(cls, type):
                # Named as pickle names it (where the class is defined), whichever module re-exports it.
                defined = f"{cls.__module__}.{cls.__qualname__}"
                self.candidates[defined if resolve_name(defined) is cls else name] = cls
        for _name, cls in zoo_catalogue.estimator_classes():
            self.candidates[f"{cls.__module__}.{cls.__qualname__}"] = cls
        self.names: dict[int, str] = {id(cls): name for name, cls in self.candidates.items()}
        for name in self.fixed.names():
            obj = self.fixed.lookup(name)
            self.names.setdefault(id(obj), self.fixed.role_of(obj).name)
        for name in FUNCTION_SLOTS:
            obj = resolve_name(name)
            if obj is not None:
                self.names[id(obj)] = name
        self.classes: dict[str, dict[str, Any]] = {}
        self.references: set[str] = set()
        self.unknown: dict[str, str] = {}

    def name_of(self, obj: Any) -> str | None:
        name = self.names.get(id(obj))
        if name is not None and (isinstance(obj, type) or is_function(obj)):
            self.references.add(name)
        return name

    def record_model(self, root: Any, where: str) -> None:
        seen: set[int] = set()
        pending = [root]
        while pending:
            obj = pending.pop()
            if (
                id(obj) in seen
                or obj is None
                or isinstance(obj, (str, bytes, int, float, complex, np.generic, np.dtype))
            ):
                continue
            seen.add(id(obj))
            if isinstance(obj, (list, tuple, set, frozenset)):
                pending.extend(obj)
            elif isinstance(obj, dict) and type(obj) in (dict, __import__("collections").OrderedDict):
                pending.extend([*obj.keys(), *obj.values()])
            elif isinstance(obj, np.ndarray):
                if obj.dtype.hasobject:
                    pending.extend(obj.ravel().tolist())
            elif isinstance(obj, type) or is_function(obj):
                if self.name_of(obj) is None:
                    self.unknown[repr(obj)] = where
            elif self.names.get(id(type(obj))) in self.candidates:
                pending.extend(self.record_instance(obj, where))
            elif self.fixed.role_of(type(obj)) is not None or isinstance(obj, __import__("functools").partial):
                reduced = obj.__reduce_ex__(2)
                pending.extend([reduced[1], *(reduced[2:3] if len(reduced) > 2 else ())])
            else:
                self.unknown[f"{type(obj).__module__}.{type(obj).__qualname__}"] = where

    def record_instance(self, obj: Any, where: str, fitted: bool | None = None) -> list[Any]:
        cls = type(obj)
        name = self.names[id(cls)]
        reduced = obj.__reduce_ex__(2)
        if reduced[0] is not copyreg.__newobj__ or reduced[1] != (cls,):
            self.unknown[name] = f"{where}: pickled by {reduced[0]!r}, not as a plain instance"
            return []
        state = reduced[2] if len(reduced) > 2 and reduced[2] is not None else {}
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict) and state[1] is None:
            state = state[0]  # (dict, no slot state)
        if isinstance(state, tuple):
            return self.record_tuple(obj, name, state, where)
        items = dict(reduced[4]) if len(reduced) > 4 and reduced[4] is not None else None
        estimator = isinstance(obj, BaseEstimator)
        params = obj.get_params(deep=False) if estimator else {}
        if fitted is None:
            fitted = not estimator or any(k.endswith("_") and not k.startswith("__") for k in vars(obj))
        entry = self.classes.setdefault(name, _new_entry(estimator))
        entry["seen"] += 1
        entry["params"] |= set(params)
        chosen = _estimator_classes(params.values())
        for key, value in state.items():
            try:
                pattern = describe(value, self.name_of)
            except LookupError as exc:
                self.unknown[f"{exc.args[0]!r} in {name}.{key}"] = where
                continue
            if key in params:
                pattern = _generalize(pattern, None)
            else:
                pattern = _generalize(pattern, chosen)
            entry["attributes"][key] = merge(entry["attributes"].get(key, {}), pattern)
        keys = set(state)
        entry["always"] = keys if entry["always"] is None else entry["always"] & keys
        if fitted:
            entry["fitted"] = keys if entry["fitted"] is None else entry["fitted"] & keys
        else:
            entry["unfitted"] |= keys
        if items is not None:
            # A Bunch's items are the estimators the user gave (named_estimators_): any estimator may sit there.
            described = _generalize(describe(items, self.name_of), None)["dict"]
            entry["items"] = merge(entry["items"] or {"keys": {}, "values": {}}, described)
        return [*state.values(), *(items or {}).values()]

    def record_tuple(self, obj: Any, name: str, state: tuple, where: str) -> list[Any]:
        """A class whose own __setstate__ takes a tuple (scipy >= 1.18's BSpline): one pattern a position."""
        entry = self.classes.setdefault(name, _new_entry(False))
        entry["always"] = entry["fitted"] = set()
        entry["seen"] += 1
        patterns = entry.get("tuple") or [{} for _ in state]
        if len(patterns) != len(state):
            self.unknown[f"{name}: states of {len(patterns)} and {len(state)} items"] = where
            return []
        entry["tuple"] = [
            merge(pattern, describe(value, self.name_of)) for pattern, value in zip(patterns, state, strict=True)
        ]
        return list(state)

    def finish(self) -> dict[str, Any]:
        classes = {}
        for name, entry in sorted(self.classes.items()):
            cls = self.candidates[name]
            attributes = entry["attributes"]
            constraints = getattr(cls, "_parameter_constraints", {}) if entry["estimator"] else {}
            for param in entry["params"]:
                for constraint in constraints.get(param, ()):
                    pattern = constraint_pattern(constraint, self.candidates)
                    if pattern is not None:
                        attributes[param] = merge(attributes.get(param, {}), pattern)
            always = entry["always"] or set()
            if _ignores_state(cls):
                entry["fitted"] = always = set()  # its __setstate__ drops the state: skops files have none
            classes[name] = {
                "estimator": entry["estimator"],
                "seen": entry["seen"],
                "params": sorted(entry["params"]),
                "always": sorted(always),
                "fitted": sorted(entry["fitted"] if entry["fitted"] is not None else always),
                "unfitted": sorted(entry["unfitted"]),
                "attributes": {key: attributes[key] for key in sorted(attributes)},
                **({"items": entry["items"]} if entry["items"] is not None else {}),
                **({"tuple": entry["tuple"]} if entry.get("tuple") else {}),
            }
        for function, places in FUNCTION_SLOTS.items():
            if resolve_name(function) is None:
                continue
            for owner, attribute in places:
                if owner in classes and attribute in classes[owner]["attributes"]:
                    classes[owner]["attributes"][attribute] = merge(
                        classes[owner]["attributes"][attribute], {"functions": [function]}
                    )
                    self.references.add(function)
        for spec in classes.values():
            for pattern in spec["attributes"].values():
                for key in ("types", "objects"):
                    self.references.update(n for n in pattern.get(key, ()) if n not in classes and key == "types")
        return classes


def _new_entry(estimator: bool) -> dict[str, Any]:
    return {
        "estimator": estimator,
        "attributes": {},
        "always": None,
        "fitted": None,
        "unfitted": set(),
        "params": set(),
        "items": None,
        "seen": 0,
        "tuple": None,
    }


def _ignores_state(cls: type) -> bool:
    import inspect

    from sklearn.utils._bunch import Bunch

    return inspect.getattr_static(cls, "__setstate__", None) is Bunch.__setstate__


def _estimator_classes(values: Any) -> set[str]:
    """Classes of the estimators a parameter holds, however deep (a pipeline's steps)."""
    found: set[str] = set()
    pending = list(values)
    while pending:
        value = pending.pop()
        if isinstance(value, BaseEstimator):
            found.add(f"{type(value).__module__}.{type(value).__qualname__}")
            pending.extend(value.get_params(deep=False).values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
    return found


def _generalize(pattern: dict[str, Any], chosen: set[str] | None) -> dict[str, Any]:
    """An estimator the user chose may be any estimator: in a parameter (`chosen` None) every estimator
    object becomes "any estimator"; in a fitted attribute, those of a class a parameter holds (a clone)."""
    out = dict(pattern)
    objects = out.get("objects")
    if objects:
        chosen_here = [n for n in objects if _is_estimator_name(n) and (chosen is None or n in chosen)]
        if chosen_here:
            out["estimators"] = True
            out["objects"] = [n for n in objects if n not in chosen_here]
            if not out["objects"]:
                del out["objects"]
    for key in ("list", "tuple", "set", "frozenset"):
        if key in out:
            out[key] = _generalize(out[key], chosen)
    for key in ("dict", "odict"):
        if key in out:
            out[key] = {"keys": out[key]["keys"], "values": _generalize(out[key]["values"], chosen)}
    for key in ("array", "masked"):
        if key in out and "object" in out[key]:
            out[key] = {
                **out[key],
                "object": {**out[key]["object"], "items": _generalize(out[key]["object"]["items"], chosen)},
            }
    return out


def _is_estimator_name(name: str) -> bool:
    cls = resolve_name(name)
    return isinstance(cls, type) and issubclass(cls, BaseEstimator)


# -- main --------------------------------------------------------------------------------------------------------


def environment_record() -> dict[str, str]:
    import joblib

    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


def learn() -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    from threadpoolctl import threadpool_limits

    learner = Learner()
    refused: dict[str, str] = {}
    fitted = 0
    started = time.monotonic()
    with threadpool_limits(limits=1):
        for specimen in zoo_catalogue.all_specimens():
            try:
                model = zoo_catalogue.fit(specimen)
            except Exception as exc:  # noqa: BLE001 - a variant the estimator does not take is not a specimen
                refused[specimen.name] = f"{type(exc).__name__}: {str(exc)[:160]}"
                continue
            fitted += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                learner.record_model(model, specimen.name)
                if specimen.how != "variant":
                    unfitted = specimen.build()
                    if hasattr(unfitted, "get_params") and learner.names.get(id(type(unfitted))) in learner.candidates:
                        learner.record_instance(unfitted, specimen.name, fitted=False)
    classes = learner.finish()
    if learner.unknown:
        raise SystemExit(
            "objects of classes not on the allowlist (add them to INTERNAL_CLASSES after review, or drop the "
            "specimen):\n" + "\n".join(f"  {name}: in {where}" for name, where in sorted(learner.unknown.items()))
        )
    zoo = {"specimens": fitted + len(refused), "fitted": fitted, "seconds": round(time.monotonic() - started, 1)}
    data = {
        "about": "Generated by scripts/generate_inspector_schema.py from the estimator zoo; do not edit.",
        "sklearn": sklearn.__version__,
        "environments": [environment_record()],
        "zoo": zoo,
        "references": sorted(learner.references),
        "classes": classes,
    }
    return data, refused, zoo


def merge_files(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    classes = dict(old["classes"])
    for name, spec in new["classes"].items():
        if name not in classes:
            classes[name] = spec
            continue
        mine = classes[name]
        attributes = dict(mine["attributes"])
        for key, pattern in spec["attributes"].items():
            attributes[key] = merge(attributes.get(key, {}), pattern)
        classes[name] = {
            **mine,
            "seen": mine["seen"] + spec["seen"],
            "params": sorted(set(mine["params"]) | set(spec["params"])),
            # a class seen only with tuple states in one environment says nothing of its dict states
            "always": _required(mine, spec, "always"),
            "fitted": _required(mine, spec, "fitted"),
            "unfitted": sorted(set(mine["unfitted"]) | set(spec["unfitted"])),
            "attributes": {key: attributes[key] for key in sorted(attributes)},
            **_merged_tuple(mine, spec),
        }
    environments = [e for e in old["environments"] if e != new["environments"][0]] + new["environments"]
    return {
        **old,
        "environments": environments,
        "references": sorted(set(old["references"]) | set(new["references"])),
        "classes": dict(sorted(classes.items())),
    }


def _admitted(schema: dict[str, Any]) -> dict[str, Any]:
    return {name: {k: v for k, v in spec.items() if k != "seen"} for name, spec in schema["classes"].items()}


def _required(mine: dict[str, Any], spec: dict[str, Any], key: str) -> list[str]:
    if not spec["attributes"]:
        return mine[key]
    if not mine["attributes"]:
        return spec[key]
    return sorted(set(mine[key]) & set(spec[key]))


def _merged_tuple(mine: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    if "tuple" not in mine and "tuple" not in spec:
        return {}
    if "tuple" not in mine or "tuple" not in spec or len(mine["tuple"]) != len(spec["tuple"]):
        return {"tuple": mine.get("tuple") or spec.get("tuple")}
    return {"tuple": [merge(a, b) for a, b in zip(mine["tuple"], spec["tuple"], strict=True)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--merge", action="store_true", help="add this environment to the committed file")
    parser.add_argument("--check", action="store_true", help="only check that the committed file admits this zoo")
    args = parser.parse_args(argv)
    data, _refused, zoo = learn()
    path = path_for(sklearn.__version__)
    print(
        f"scikit-learn {sklearn.__version__}: {zoo['fitted']} of {zoo['specimens']} specimens fitted in "
        f"{zoo['seconds']} s; {len(data['classes'])} classes"
    )
    if args.check:
        if not path.exists():
            print(f"FAIL: no {path.name}", file=sys.stderr)
            return 1
        committed = json.loads(path.read_text())
        merged = merge_files(committed, data)
        # "seen" counts states (it grows with every merge); what the loader admits is the rest.
        stale = _admitted(merged) != _admitted(committed)
        verdict = "misses what this environment writes: regenerate" if stale else "admits everything this zoo writes"
        print(f"{path.name}: {verdict}")
        return 1 if stale else 0
    if args.merge and path.exists():
        data = merge_files(json.loads(path.read_text()), data)
    path.write_text(json.dumps(data, indent=None, separators=(",", ":"), sort_keys=False) + "\n")
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
