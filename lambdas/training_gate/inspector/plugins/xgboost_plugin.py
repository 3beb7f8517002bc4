"""XGBoost: every format SageMaker writes, read and validated by the gate, then loaded by libxgboost only
from the JSON the gate wrote (`native.xgboost_convert`): whatever the artifact held (the built-in
container's pickled Booster, memory snapshot, old binary or UBJSON; framework mode's JSON, UBJSON or a
pickled scikit-learn wrapper), libxgboost never parses a byte the gate did not write. XGBoost 3.1 and
later read no old binary model at all; the conversion is what lets a current reader judge a 0.90-1.7
model, with the predictions the version that trained it made (tests/unit/test_native_xgboost.py)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np

from training_gate.inspector.frameworks import FileFacts
from training_gate.inspector.native import api
from training_gate.inspector.native.xgboost_convert import first_trees, to_json
from training_gate.inspector.native.xgboost_model import OBJECTIVES, XGBoostModel, objective_name
from training_gate.inspector.plugins import pickled
from training_gate.inspector.plugins.base import Loaded, NativeFramework, NativePredictor, checked

# The first key of an XGBoost JSON or UBJSON document: a model (learner) or a snapshot (Config, Model).
_DOCUMENT = re.compile(rb'^(\{\s*"(learner|Config|Model)"\s*:|\{[iUIlL].{0,8}(learner|Config|Model))', re.DOTALL)
# How a Booster's output reads, per objective: probabilities, a class per row, or a score (a margin for
# binary:logitraw, whose class is its sign).
_KIND = {
    "binary:logistic": "probabilities",
    "multi:softprob": "probabilities",
    "multi:softmax": "labels",
    "binary:hinge": "labels",
    "binary:logitraw": "labels",
}


class _Booster(Loaded):
    def __init__(self, xgboost: Any, model: XGBoostModel, payload: bytes) -> None:
        self.xgboost = xgboost
        self.model = model
        self.objective = objective_name(model.objective)
        self.kind = _KIND.get(self.objective, "scores")
        self.booster = xgboost.Booster(params={"nthread": 1})
        self.booster.load_model(bytearray(payload))

    def outputs(self, matrix: np.ndarray) -> np.ndarray:
        # A Booster that saved its features' names and types predicts only a matrix that states them.
        names, types = self.model.feature_names or None, self.model.feature_types or None
        data = self.xgboost.DMatrix(
            matrix.astype(np.float32),
            feature_names=names,
            feature_types=types,
            enable_categorical=bool(types and "c" in types),
            nthread=1,
        )
        values = self.booster.predict(data)
        values = checked(OBJECTIVES[self.objective], values)
        if self.objective == "binary:logitraw":
            return (values > 0).astype(np.int64)  # the class is the margin's sign
        return values


def _predicted_trees(estimator: Any, model: XGBoostModel) -> int:
    """How many trees of each output a wrapper predicts with (0: all). After early stopping, its best
    iteration's: 1.x keeps `best_ntree_limit` (trees, parallel ones counted), 2.0 and later `best_iteration`
    in the Booster's attributes (XGBModel._get_iteration_range)."""
    limit = vars(estimator).get("best_ntree_limit", model.attributes.get("best_ntree_limit"))
    if isinstance(limit, str) and limit.isdigit():
        limit = int(limit)
    if type(limit) is int and limit > 0:
        return limit
    best = model.attributes.get("best_iteration", "")
    return (int(best) + 1) * model.num_parallel_tree if best.isdigit() else 0


class XGBoost(NativeFramework):
    name = "XGBoost"
    framework_key = "xgboost"
    reader_module = "xgboost"
    reader_name = "xgboost"
    modules = ("xgboost",)
    sklearn_api = frozenset(
        f"xgboost.sklearn.{c}"
        for c in ("XGBModel", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
    )
    names = ("xgboost-model",)
    suffixes = (".bst", ".xgb", ".ubj")

    _EVIDENCE: ClassVar[dict[str, str]] = {
        "old-binary": "the old binary model format",
        "json": "a JSON model (learner)",
        "ubjson": "a UBJSON model (learner)",
        "snapshot": "a memory snapshot (CONFIG-offset:)",
        "pickle": "a pickle named xgboost-model (the built-in container's file)",
    }

    def evidence(self, fmt: str) -> str:
        return self._EVIDENCE.get(fmt, f"a {fmt} model")

    def content(self, file: FileFacts, names: frozenset[str]) -> str | None:
        if file.head.startswith(b"binf"):  # 1.0-1.7's magic, whatever follows it
            return "the old binary model format (binf)"
        found = api.recognise(file.head, file.basename)
        if found is None or found.framework != self.framework_key:
            return None
        # A JSON document is XGBoost's only when its first key is: a transformers config.json naming a
        # "BertModel" is not.
        if found.format in ("json", "ubjson") and not _DOCUMENT.match(file.head):
            return None
        return self.evidence(found.format)

    pickles_through_loader = True

    def from_pickle(self, found: pickled.JudgedModel) -> api.NativeModel:
        model = found.model
        assert isinstance(model, XGBoostModel)
        predicted = model
        if found.estimator is not None:
            model.source_format = f"sklearn-{model.source_format}"
            classes = None
            if objective_name(model.objective).startswith(("binary:", "multi:")):
                classes = pickled.classes_of(found.estimator, max(model.num_class, 2))
            model.estimator = {"class": type(found.estimator).__name__, "classes": classes}
            predicted = first_trees(model, _predicted_trees(found.estimator, model))
        return api.NativeModel(
            api.Recognition("xgboost", "pickle"), model.describe(), model.num_feature, to_json(predicted), parsed=model
        )

    def open(self, native: api.NativeModel, reader: Any, file: FileFacts, config: Any) -> NativePredictor:
        model: XGBoostModel = native.parsed
        loaded = _Booster(reader, model, native.payload or b"")
        classes = (model.estimator or {}).get("classes")
        if classes is None and loaded.kind != "scores":
            classes = list(range(max(model.num_class, 2)))
        return self.predictor(native, loaded, reader, model.num_feature, classes, model.feature_names or None)

    def loaded_detail(self, model: NativePredictor) -> tuple[Any, str]:
        status, detail = super().loaded_detail(model)
        parsed: XGBoostModel = model.native.parsed
        shape = f"{parsed.num_feature} features, {len(parsed.trees)} trees"
        return status, f"{detail} (the JSON the gate wrote from it; {shape})"
