"""XGBoost model bytes in any format SageMaker writes, read and validated by the gate before libxgboost.

    model = read_xgboost(data)          # refuses (NativeRefusal) or returns a validated XGBoostModel
    json_bytes = to_json(model)         # what a current libxgboost loads (xgboost_convert)

The built-in container's `xgboost-model`: 0.90-x a pickled Booster whose state is the old binary
model, 1.0-1.2 a pickled Booster holding a memory snapshot, 1.3-1.7 the old binary format, 3.0-5
UBJSON. Framework mode: JSON (`.json`), UBJSON (`.ubj`), the old binary (`.bst`, `.model`) or a
pickled Booster (whose state, from 1.3 on, is a JSON or UBJSON snapshot). The format is decided by the
bytes, never by the file name.
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
_READERS = {"old-binary": read_old_binary, "snapshot": read_snapshot, "json": read_json, "ubjson": read_ubjson}

__all__ = ["BOOSTER_CLASS", "XGBoostModel", "from_booster_state", "read_xgboost", "to_json"]


def read_xgboost(data: bytes) -> XGBoostModel:
    """Any XGBoost model file: read by the gate's own parser, then validated."""
    fmt = detect(data)
    if fmt == "pickle":
        state = pickle_data.object_state(
            pickle_data.read_pickle(data, frozenset({BOOSTER_CLASS}), "xgboost pickle"), BOOSTER_CLASS, "pickle"
        )
        return from_booster_state(state)
    return validate(_read_unpickled(data, fmt))


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
