#!/usr/bin/env python3
"""Learns the states XGBoost and LightGBM pickle for their Boosters and scikit-learn wrappers from the native
zoo, and writes them as data: lambdas/training_gate/inspector/plugins/pickled_states.json.

    python scripts/generate_pickled_states.py          # rewrite the file
    python scripts/generate_pickled_states.py --check  # exit 1 when the file is not what the zoo gives

The zoo (tests/fixtures/native, written by scripts/make_native_fixtures.py in one environment per library
version) holds pickled Boosters and wrappers (XGBClassifier, LGBMRanker...) from every supported version.
Each is read here as data by the gate's own pickle reader (`native.pickle_data`: nothing is imported, so
a 1.0 pickle reads as well as a 3.2 one), and every attribute of every state becomes a value pattern in
the loader's vocabulary (`inspector.schema.patterns`), unioned over the versions. An attribute that is a
constructor parameter of its estimator (the zoo records `get_params`) admits any plain value: a user may
set it to anything its library takes, and no parameter is code. The gate's loader holds a pickle of these
classes to this file (`inspector.plugins.pickled`): an attribute no version writes, a value of another
kind, or an object of a class no version keeps there is refused.
"""

from __future__ import annotations

import argparse
import io
import json
import pickletools
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "lambdas")]

from tests.support.native_fixtures import NATIVE, manifest  # noqa: E402
from training_gate.inspector.native import pickle_data  # noqa: E402
from training_gate.inspector.schema.patterns import Pattern, merge  # noqa: E402

OUT = REPO / "lambdas" / "training_gate" / "inspector" / "plugins" / "pickled_states.json"
FRAMEWORKS = ("xgboost", "lightgbm")
# Classes whose states scikit-learn's own schema holds (inspector/schema): the zoo does not redefine them.
SKLEARN_PREFIX = "sklearn."
_ARRAY_KINDS = {"f": "float", "i": "int", "u": "int", "b": "bool", "U": "str", "S": "bytes"}
PLAIN_PARAMETER: Pattern = {"plain": True, "none": True}
# A Booster's state is its model's bytes (validated by the gate's parser, never by this pattern) and what the
# Python object keeps beside them: training parameters, feature names and types, pandas categories, the best
# iteration and scores. Those are data the user's training decided: any plain value, never an object.
MODEL_BYTES = {"xgboost.core.Booster": {"handle"}, "lightgbm.basic.Booster": {"handle", "_handle"}}
# A wrapper's attributes that hold what the user gave rather than what the library computed: keyword arguments
# beyond its own parameters (XGBoost 1.x `kwargs`, LightGBM `_other_params`), class weights, a ranker's
# evaluation positions, and the class labels of the training data (any plain values: numbers, text, booleans).
USER_DATA = {"kwargs", "_other_params", "_class_weight", "_eval_at", "classes_", "_classes", "_class_map"}


def _globals(data: bytes) -> set[str]:
    """Every name the pickle's GLOBAL and STACK_GLOBAL opcodes import (read by pickletools: nothing runs)."""
    names: set[str] = set()
    strings: list[str] = []
    for opcode, argument, _ in pickletools.genops(io.BytesIO(data)):
        if opcode.name == "GLOBAL":
            names.add(argument.replace(" ", "."))
        elif opcode.name == "STACK_GLOBAL":
            names.add(f"{strings[-2]}.{strings[-1]}")
        elif isinstance(argument, str) and opcode.name.endswith("UNICODE"):
            strings.append(argument)
        if opcode.name == "STOP":
            break
    return names


class Learner:
    def __init__(self) -> None:
        self.attributes: dict[str, dict[str, Pattern]] = {}
        self.seen: dict[str, list[frozenset[str]]] = {}
        self.params: dict[str, set[str]] = {}

    def state(self, cls: str, state: dict[str, Any], params: set[str]) -> None:
        if cls.startswith(SKLEARN_PREFIX):
            for value in state.values():
                self.describe(value, set())
            return
        known = self.attributes.setdefault(cls, {})
        self.seen.setdefault(cls, []).append(frozenset(state))
        self.params.setdefault(cls, set()).update(params)
        for key, value in state.items():
            pattern = self.describe(value, set())
            if key in params or key in USER_DATA or (cls in MODEL_BYTES and key not in MODEL_BYTES[cls]):
                pattern = merge(pattern, PLAIN_PARAMETER)
            known[key] = merge(known.get(key, {}), pattern)

    def describe(self, value: Any, params: set[str]) -> Pattern:
        """The narrowest pattern admitting `value` (the data reader's view of it); objects it holds are learned
        as states of their own class."""
        if value is None:
            return {"none": True}
        if isinstance(value, bool):
            return {"bool": True}
        if isinstance(value, int):
            return {"int": True}
        if isinstance(value, float):
            return {"float": True}
        if isinstance(value, str):
            return {"str": True}
        if isinstance(value, bytes):
            return {"bytes": True}
        if isinstance(value, pickle_data.PickledArray):
            kind = value.dtype.lstrip("<>|=")[:1]
            if kind == "O":
                items: Pattern = {}
                for item in value.values:
                    items = merge(items, self.describe(item, set()))
                return {"array": {"object": {"ndims": [len(value.shape)], "items": items}}}
            return {"array": {_ARRAY_KINDS[kind]: [len(value.shape)]}}
        if isinstance(value, pickle_data.PickledObject):
            self.state(value.cls, value.state, params)
            return {"objects": [value.cls]}
        if isinstance(value, dict):
            keys: Pattern = {}
            values: Pattern = {}
            for key, item in value.items():
                keys = merge(keys, self.describe(key, set()))
                values = merge(values, self.describe(item, set()))
            # The data reader builds OrderedDict and defaultdict as dicts; the loader keeps an OrderedDict.
            spec = {"keys": keys, "values": values}
            return {"dict": spec, "odict": spec}
        if isinstance(value, (list, tuple)):
            items = {}
            for item in value:
                items = merge(items, self.describe(item, set()))
            return {"list" if isinstance(value, list) else "tuple": items}
        raise TypeError(f"no pattern for {type(value).__name__}")

    def schema(self) -> dict[str, Any]:
        classes = {}
        for cls in sorted(self.attributes):
            common = frozenset.intersection(*self.seen[cls])
            params = sorted(self.params[cls])
            classes[cls] = {
                "attributes": {k: _sorted(v) for k, v in sorted(self.attributes[cls].items())},
                "always": sorted(common),
                "fitted": sorted(common),
                "unfitted": sorted({*params, "_sklearn_version"}),
                "estimator": True,
                "params": params,
            }
        return classes


def _sorted(pattern: Any) -> Any:
    if isinstance(pattern, dict):
        return {k: _sorted(pattern[k]) for k in sorted(pattern)}
    return pattern


def learn() -> dict[str, Any]:
    learner = Learner()
    sources = []
    for fixture in manifest()["fixtures"]:
        fmt = fixture["format"]
        # A joblib file holds the same state as the pickle of the same model (its arrays' bytes follow the
        # pickle stream, which pickletools cannot walk).
        if fixture["framework"] not in FRAMEWORKS or fmt.startswith("sklearn-joblib"):
            continue
        if not (fmt.startswith("pickle") or fmt.startswith("sklearn-")):
            continue
        data = (NATIVE / fixture["path"]).read_bytes()
        names = frozenset(n for n in _globals(data) if n.startswith((*FRAMEWORKS, SKLEARN_PREFIX)))
        root = pickle_data.read_pickle(data, names, fixture["path"], arrays=True)
        if not isinstance(root, pickle_data.PickledObject):
            raise SystemExit(f"{fixture['path']}: the pickle holds no object")
        learner.state(root.cls, root.state, set(fixture.get("params", ())))
        sources.append(fixture["path"])
    return {
        "generated_by": "scripts/generate_pickled_states.py",
        "learned_from": len(sources),
        "classes": learner.schema(),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from what the zoo gives")
    args = parser.parse_args(argv)
    text = render(learn())
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(REPO)} is not what the zoo gives: run scripts/generate_pickled_states.py")
            return 1
        return 0
    OUT.write_text(text)
    classes = json.loads(text)["classes"]
    print(f"{len(classes)} classes from {json.loads(text)['learned_from']} pickles: {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
