"""XGBoost model bytes in any format SageMaker writes, read and validated by the gate before libxgboost.

    model = read_xgboost(data)          # refuses (NativeRefusal) or returns a validated XGBoostModel
    json_bytes = to_json(model)         # what a current libxgboost loads (xgboost_convert)

The built-in container's `xgboost-model`: 0.90-x a pickled Booster whose state is the old binary
model, 1.0-1.2 a pickled Booster holding a memory snapshot, 1.3-1.7 the old binary format, 3.0-5
UBJSON. Framework mode: JSON (`.json`), UBJSON (`.ubj`), the old binary (`.bst`, `.model`), a
pickled Booster (whose state, from 1.3 on, is a JSON or UBJSON snapshot), or a pickled scikit-learn
wrapper (`XGBClassifier`, `XGBRegressor`, `XGBRanker`, with `pickle` or uncompressed `joblib`), whose
Booster is read the same way and whose class labels are kept. The format is decided by the bytes,
never by the file name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training_gate.inspector.native import pickle_data
from training_gate.inspector.native.errors import Reason, refuse
from training_gate.inspector.native.xgboost_convert import to_json
from training_gate.inspector.native.xgboost_model import XGBoostModel, validate
from training_gate.inspector.native.xgboost_readers import (
    detect,
    read_json,
    read_old_binary,
    read_snapshot,
    read_ubjson,
)

BOOSTER_CLASS = "xgboost.core.Booster"
# The scikit-learn API's estimators (xgboost/sklearn.py), each a Booster under `_Booster` and plain values.
WRAPPER_CLASSES = frozenset(
    f"xgboost.sklearn.{name}"
    for name in ("XGBModel", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
)
# The label encoders 1.x classifiers kept beside their Booster (read as data: their `classes_`).
LABEL_ENCODERS = frozenset(
    {
        "xgboost.compat.XGBoostLabelEncoder",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.preprocessing.label.LabelEncoder",
    }
)
_READERS = {"old-binary": read_old_binary, "snapshot": read_snapshot, "json": read_json, "ubjson": read_ubjson}

__all__ = ["BOOSTER_CLASS", "XGBoostModel", "from_booster_state", "read_xgboost", "to_json"]


def read_xgboost(data: bytes) -> XGBoostModel:
    """Any XGBoost model file: read by the gate's own parser, then validated."""
    fmt = detect(data)
    if fmt == "pickle":
        value = pickle_data.read_pickle(
            data, frozenset({BOOSTER_CLASS}) | WRAPPER_CLASSES | LABEL_ENCODERS, "xgboost pickle", arrays=True
        )
        if isinstance(value, pickle_data.PickledObject) and value.cls in WRAPPER_CLASSES:
            return from_wrapper_state(value)
        return from_booster_state(pickle_data.object_state(value, BOOSTER_CLASS, "pickle"))
    return validate(_read_unpickled(data, fmt))


def from_wrapper_state(wrapper: pickle_data.PickledObject) -> XGBoostModel:
    """A pickled XGBClassifier (or another wrapper): its Booster read as any pickled Booster, its labels kept.
    Labels are `classes_` (1.x, or its label encoder's) or range(n_classes_) (2.x and later)."""
    state = wrapper.state
    model = from_booster_state(pickle_data.object_state(state.get("_Booster"), BOOSTER_CLASS, "pickle _Booster"))
    model.source_format = f"sklearn-{model.source_format}"
    classes: list[Any] | None = None
    encoder = state.get("_le")
    for candidate in (state.get("classes_"), encoder.state.get("classes_") if _is_object(encoder) else None):
        if isinstance(candidate, pickle_data.PickledArray) and candidate.built and len(candidate.shape) == 1:
            classes = list(candidate.values)
            break
    n_classes = state.get("n_classes_")
    if classes is None and isinstance(n_classes, int) and not isinstance(n_classes, bool) and 0 < n_classes:
        classes = list(range(n_classes))
    if classes is not None and model.objective.startswith(("binary:", "multi:")):
        if len(classes) != max(model.num_class, 2) or len(set(map(repr, classes))) != len(classes):
            raise refuse(
                Reason.INCONSISTENT,
                f"the estimator lists {len(classes)} classes, its Booster predicts {max(model.num_class, 2)}",
                "pickle",
            )
    model.estimator = {"class": wrapper.cls.rsplit(".", 1)[-1], "classes": classes}
    return model


def _is_object(value: Any) -> bool:
    return isinstance(value, pickle_data.PickledObject) and value.cls in LABEL_ENCODERS


def from_booster_state(state: Mapping[str, Any]) -> XGBoostModel:
    """A pickled Booster's state (what `Booster.__getstate__` returned, already unpickled as plain data
    by a restricted loader): its `handle` bytes read and validated, never given to `__setstate__`."""
    handle = state.get("handle")
    if not isinstance(handle, (bytes, bytearray)):
        raise refuse(Reason.PICKLE_SHAPE, "the Booster's state has no model bytes under 'handle'", "pickle")
    fmt = detect(bytes(handle))
    if fmt == "pickle":
        raise refuse(Reason.PICKLE_SHAPE, "a pickle inside a pickled Booster", "pickle")
    model = _read_unpickled(bytes(handle), fmt)
    model.source_format = f"pickle-{model.source_format}"
    return validate(model)


def _read_unpickled(data: bytes, fmt: str) -> XGBoostModel:
    if fmt == "base64":
        raise refuse(Reason.UNSUPPORTED, "base64 models are read by no XGBoost since 0.7", "xgboost")
    return _READERS[fmt](data)
