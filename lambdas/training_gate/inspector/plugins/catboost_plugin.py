"""CatBoost: the `.cbm` binary has no documented schema, so the gate recognises it (and reads a pickled
estimator as data for the `.cbm` bytes it holds) but cannot validate it. Its C loader runs only here,
inside the contained child, and every report says the bytes were not validated first: the load check
is a warning. CatBoost's exports of Python or C++ code are never loaded."""

from __future__ import annotations

from typing import Any

import numpy as np

from training_gate.domain.models import CheckStatus
from training_gate.inspector.frameworks import FileFacts
from training_gate.inspector.native import api
from training_gate.inspector.native.catboost_format import NOT_VALIDATED, CatBoostFile
from training_gate.inspector.plugins.base import Loaded, NativeFramework, NativePredictor, checked

_CLASSIFIERS = {"Logloss": "sigmoid", "CrossEntropy": "sigmoid", "MultiClass": "softmax"}


class _Model(Loaded):
    def __init__(self, catboost: Any, blob: bytes) -> None:
        self.model = catboost.CatBoost()
        self.model.load_model(blob=blob)
        params = self.model.get_all_params() if hasattr(self.model, "get_all_params") else {}
        self.loss = str(params.get("loss_function", "")).split(":")[0]
        self.kind = "probabilities" if self.loss in _CLASSIFIERS else "scores"
        self.width = len(self.model.feature_names_ or [])
        self.categorical = frozenset(int(i) for i in self.model.get_cat_feature_indices())
        self.catboost = catboost

    def outputs(self, matrix: np.ndarray) -> np.ndarray:
        data: Any = matrix
        if self.categorical:
            data = self.catboost.Pool(matrix.tolist(), cat_features=sorted(self.categorical), thread_count=1)
        if self.kind == "probabilities":
            values = self.model.predict(data, prediction_type="Probability", thread_count=1)
            return checked("softmax", values)
        return checked("identity", self.model.predict(data, thread_count=1))


class CatBoost(NativeFramework):
    name = "CatBoost"
    framework_key = "catboost"
    reader_module = "catboost"
    reader_name = "catboost"
    modules = ("catboost",)
    # A pipeline ending in one of these cannot be loaded (CatBoost's own __setstate__ reads the model's bytes):
    # recognised as CatBoost's and skipped, naming the class.
    sklearn_api = frozenset(
        f"catboost.core.{c}" for c in ("CatBoost", "CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker")
    )
    suffixes = (".cbm",)

    def evidence(self, fmt: str) -> str:
        return "a binary model (CBM1)" if fmt == "cbm" else f"a {fmt} model"

    def open(self, native: api.NativeModel, reader: Any, file: FileFacts, config: Any) -> NativePredictor:
        parsed: CatBoostFile = native.parsed
        loaded = _Model(reader, parsed.blob)
        classes = None
        if loaded.kind == "probabilities":
            labels = getattr(loaded.model, "classes_", None)
            classes = list(np.asarray(labels).tolist()) if labels is not None and len(labels) else None
        names = [str(n) for n in loaded.model.feature_names_ or []]
        named = names if names and not all(n.isdigit() for n in names) else None
        native.details["objective"] = loaded.loss or None
        return self.predictor(native, loaded, reader, loaded.width or None, classes, named)

    def loaded_detail(self, model: NativePredictor) -> tuple[CheckStatus, str]:
        return CheckStatus.WARN, (
            f"CatBoost {model.native.details.get('format')} loaded by catboost {model.reader_version} inside the "
            f"contained child: {NOT_VALIDATED}"
        )

    model_class = "CatBoost"
