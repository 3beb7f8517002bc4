"""LightGBM: the text model (or the text a pickled Booster or scikit-learn wrapper holds), validated by the
gate's parser (`native.lightgbm_text`), then given to LightGBM's loader as exactly that text."""

from __future__ import annotations

from typing import Any

import numpy as np

from training_gate.inspector.frameworks import FileFacts
from training_gate.inspector.native import api
from training_gate.inspector.native.lightgbm_text import OBJECTIVES, LightGBMModel
from training_gate.inspector.plugins import pickled
from training_gate.inspector.plugins.base import Loaded, NativeFramework, NativePredictor, checked

# multiclassova gives one sigmoid per class, not a distribution: its class is the largest, its rows need
# not sum to 1, so it offers no predict_proba.
_KIND = {"binary": "probabilities", "multiclass": "probabilities", "multiclassova": "labels"}


class _Booster(Loaded):
    def __init__(self, lightgbm: Any, model: LightGBMModel) -> None:
        self.model = model
        self.kind = _KIND.get(model.objective, "scores")
        self.booster = lightgbm.Booster(params={"num_threads": 1}, model_str=model.text.decode("utf-8"))

    def outputs(self, matrix: np.ndarray) -> np.ndarray:
        # A pickled Booster predicts up to its best iteration by default (Booster.predict), as serving will.
        last = self.model.best_iteration if 0 < self.model.best_iteration <= self.model.iterations else -1
        values = self.booster.predict(matrix, num_iteration=last, num_threads=1)
        values = checked(OBJECTIVES[self.model.objective], values)
        if self.model.objective == "multiclassova":
            return np.argmax(np.asarray(values), axis=1)
        return values


class LightGBM(NativeFramework):
    name = "LightGBM"
    framework_key = "lightgbm"
    reader_module = "lightgbm"
    reader_name = "lightgbm"
    modules = ("lightgbm",)
    sklearn_api = frozenset(
        f"lightgbm.sklearn.{c}" for c in ("LGBMModel", "LGBMClassifier", "LGBMRegressor", "LGBMRanker")
    )
    suffixes = (".lgb", ".lgbm")

    def evidence(self, fmt: str) -> str:
        return "a text model (tree, version=)" if fmt == "text" else f"a {fmt} model"

    pickles_through_loader = True

    def from_pickle(self, found: pickled.JudgedModel) -> api.NativeModel:
        model = found.model
        assert isinstance(model, LightGBMModel)
        best = vars(found.booster).get("best_iteration")
        model.best_iteration = best if type(best) is int and best > 0 else 0
        if found.estimator is not None:
            model.source_format = "sklearn-pickle"
            classes = None
            if model.objective in ("binary", "multiclass", "multiclassova", "cross_entropy"):
                expected = model.num_class if model.objective.startswith("multiclass") else 2
                classes = pickled.classes_of(found.estimator, expected)
            model.estimator = {"class": type(found.estimator).__name__, "classes": classes}
        return api.NativeModel(
            api.Recognition("lightgbm", "pickle"), model.describe(), model.num_feature, model.text, parsed=model
        )

    def open(self, native: api.NativeModel, reader: Any, file: FileFacts, config: Any) -> NativePredictor:
        model: LightGBMModel = native.parsed
        loaded = _Booster(reader, model)
        classes = (model.estimator or {}).get("classes")
        if classes is None and loaded.kind != "scores":
            classes = list(range(2 if model.objective == "binary" else model.num_class))
        # LightGBM names unnamed columns Column_0, Column_1...: those say nothing about the sample's columns.
        names = [n for n in model.feature_names if not n.startswith("Column_")]
        named = model.feature_names if len(names) == len(model.feature_names) else None
        return self.predictor(native, loaded, reader, model.num_feature, classes, named)
