"""What the recogniser registry calls, one function per step of its plug-in protocol.

    found = recognise(head, name)            # which framework and format the bytes are, or None
    model = validate_bytes(found, data, path) # the gate's parser and validator; NativeRefusal on failure
    model.describe()                          # framework, format, writer version, objective, sizes
    # inside the contained child (imports the framework):
    outputs = load_and_predict(model, rows)   # the framework's own loader, fed only what was validated

Recognition is by content (magic bytes and structure); `name` only breaks ties for formats without
magic (ONNX's protobuf, XGBoost's pre-1.0 binary). The loaders get what the gate validated or
wrote: XGBoost the JSON the converter produced (any source format), LightGBM the validated text,
ONNX the file checked at the wire level then by onnx.checker, CatBoost the file it could not
validate (said so in `describe`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training_gate.inspector.native import catboost_format, lightgbm_text, xgboost_readers
from training_gate.inspector.native.errors import Reason, refuse
from training_gate.inspector.native.onnx_wire import OnnxLimits, OnnxSummary, read_onnx_file
from training_gate.inspector.native.xgboost_convert import to_json
from training_gate.inspector.native.xgboost_format import read_xgboost
from training_gate.inspector.native.xgboost_model import OBJECTIVES, XGBoostModel, objective_name

# Bytes a recogniser needs to see: the pre-1.0 binary's objective name ends near byte 170.
HEAD_BYTES = 512
FRAMEWORKS = ("xgboost", "lightgbm", "catboost", "onnx")
BUILT_IN_NAME = "xgboost-model"


@dataclass(frozen=True)
class Recognition:
    framework: str
    format: str


@dataclass
class NativeModel:
    """A model the gate read and validated, and what the framework's loader is given."""

    recognition: Recognition
    details: dict[str, Any]
    num_feature: int | None
    payload: bytes | None = None
    path: Path | None = None
    validated: bool = True
    parsed: Any = None

    def describe(self) -> dict[str, Any]:
        return {**self.details, "bytes_validated": self.validated}


def _looks_like_old_binary(head: bytes) -> bool:
    """The pre-2.0 binary has no magic before 1.0: a 136-byte parameter block, then a length-prefixed
    objective name XGBoost registers, then the booster's name."""
    offset = 4 if head[:4] == b"binf" else 0
    if len(head) < offset + 136 + 8:
        return False
    (size,) = struct.unpack_from("<Q", head, offset + 136)
    name = head[offset + 144 : offset + 144 + size]
    try:
        return 0 < size <= 64 and objective_name(name.decode("ascii")) in OBJECTIVES
    except UnicodeDecodeError:
        return False


def _looks_like_onnx(head: bytes) -> bool:
    """A ModelProto as every writer orders it: `ir_version` (field 1, a small varint) first, then the
    producer, domain, opset or graph fields, each well formed as far as the head goes."""
    if head[:1] != b"\x08" or len(head) < 2 or not 1 <= head[1] <= 64:
        return False
    pos, seen = 2, 0
    while pos < len(head):
        key = head[pos]
        number, wire = key >> 3, key & 7
        if number not in (2, 3, 4, 5, 6, 7, 8, 14, 20, 25) or wire not in (0, 2):
            return False
        pos += 1
        size = 0
        for shift in range(0, 35, 7):
            if pos >= len(head):
                return seen > 0
            byte = head[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
        seen += 1
        if number == 7 or wire == 0:
            return True
        pos += size
    return seen > 0


def recognise(head: bytes, name: str = "") -> Recognition | None:
    """The framework and format of a model file from its first HEAD_BYTES bytes (and its name for ties)."""
    head = bytes(head[:HEAD_BYTES])
    lowered = name.lower()
    if catboost_format.is_catboost(head):
        return Recognition("catboost", "cbm")
    if head.startswith(b"tree\n") or head.startswith(b"tree\r"):
        return Recognition("lightgbm", "text")
    if head[:1] == b"\x80":
        # The first global a Booster or scikit-learn wrapper pickle names (xgboost.core, xgboost.sklearn, ...).
        for module in (b"xgboost.", b"lightgbm.", b"catboost."):
            if module in head[:64]:
                return Recognition(module.decode().rstrip("."), "pickle")
        # The built-in container's file name: whatever else its pickle imports, the XGBoost reader
        # judges it and names the global it refuses, rather than the file passing for another kind.
        if lowered == BUILT_IN_NAME:
            return Recognition("xgboost", "pickle")
        return None
    fmt = xgboost_readers.detect(head)
    if fmt == "snapshot":
        return Recognition("xgboost", fmt)
    if fmt in ("json", "ubjson") and (b"learner" in head or b"Config" in head or b"Model" in head):
        return Recognition("xgboost", fmt)
    if _looks_like_old_binary(head):
        return Recognition("xgboost", "old-binary")
    if lowered.endswith(".onnx") or _looks_like_onnx(head):
        return Recognition("onnx", "onnx")
    return None


def validate_bytes(
    found: Recognition, data: bytes, path: Path | None = None, onnx_limits: OnnxLimits | None = None
) -> NativeModel:
    """The gate's own parser and validator for `found.framework`; a NativeRefusal names what is wrong."""
    if found.framework == "xgboost":
        model: XGBoostModel = read_xgboost(data)
        return NativeModel(found, model.describe(), model.num_feature, payload=to_json(model), parsed=model)
    if found.framework == "lightgbm":
        parsed = lightgbm_text.read_lightgbm(data)
        return NativeModel(found, parsed.describe(), parsed.num_feature, payload=parsed.text, parsed=parsed)
    if found.framework == "onnx":
        if path is None:
            raise refuse(Reason.UNSUPPORTED, "an ONNX model is checked from its file (external data lies beside it)")
        summary: OnnxSummary = read_onnx_file(path, onnx_limits)
        return NativeModel(found, summary.describe(), None, path=path, parsed=summary)
    if found.framework == "catboost":
        cbm = catboost_format.recognise_catboost(data)
        return NativeModel(found, cbm.describe(), None, path=path, validated=False, parsed=cbm)
    raise refuse(Reason.UNSUPPORTED, f"framework {found.framework!r}")


def check_width(model: NativeModel, rows: list[list[float]]) -> None:
    """XGBoost predicts a 6-feature model on 4 columns without a word: the gate checks first."""
    if model.num_feature is not None and any(len(row) != model.num_feature for row in rows):
        widths = sorted({len(row) for row in rows})
        raise refuse(Reason.INPUT_WIDTH, f"sample rows have {widths} values, the model reads {model.num_feature}")


def load_and_predict(model: NativeModel, rows: list[list[float]]) -> list[Any]:
    """Inside the child: the framework's loader on the validated payload, then one prediction, checked."""
    check_width(model, rows)
    framework = model.recognition.framework
    if framework == "xgboost":
        return _predict_xgboost(model, rows)
    if framework == "lightgbm":
        return _predict_lightgbm(model, rows)
    if framework == "onnx":
        from training_gate.inspector.native import onnx_runtime

        assert model.path is not None
        onnx_runtime.check_model(model.path)
        return onnx_runtime.predict(model.path, rows)
    raise refuse(Reason.UNSUPPORTED, f"no loader for {framework} in this phase")


def _predict_xgboost(model: NativeModel, rows: list[list[float]]) -> list[Any]:
    import numpy as np
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(model.payload or b""))
    predictions = booster.predict(xgboost.DMatrix(np.asarray(rows, dtype=np.float32)))
    objective = objective_name(model.parsed.objective)
    _check_objective_output(OBJECTIVES[objective], predictions)
    return [predictions]


def _predict_lightgbm(model: NativeModel, rows: list[list[float]]) -> list[Any]:
    import lightgbm
    import numpy as np

    booster = lightgbm.Booster(model_str=(model.payload or b"").decode("utf-8"))
    predictions = booster.predict(np.asarray(rows, dtype=np.float64))
    _check_objective_output(lightgbm_text.OBJECTIVES[model.parsed.objective], predictions)
    return [predictions]


def _check_objective_output(transform: str, predictions: Any) -> None:
    """Probability sanity per objective: a sigmoid gives [0, 1], a softmax rows summing to 1, all finite."""
    import numpy as np

    values = np.asarray(predictions, dtype=np.float64)
    if not np.isfinite(values).all():
        raise refuse(Reason.PREDICTION_INVALID, "the prediction holds non-finite values")
    if transform in ("sigmoid", "softmax") and ((values < 0).any() or (values > 1).any()):
        raise refuse(Reason.PREDICTION_INVALID, "probabilities outside [0, 1]")
    if transform == "softmax" and values.ndim == 2 and not np.allclose(values.sum(axis=1), 1.0, atol=1e-4):
        raise refuse(Reason.PREDICTION_INVALID, "class probabilities do not sum to 1")
