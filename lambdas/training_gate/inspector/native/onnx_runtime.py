"""The ONNX checks that need the libraries, run after `onnx_wire` has read the bytes (inside the child).

`check_model` loads with `load_external_data=False` (nothing outside the file is read by onnx) and
runs `onnx.checker` with `full_check` (shape inference included) on the file's path, so external
data is checked where it lies; `predict` runs onnxruntime with the graph's own input name, element
type and width, and turns ZipMap outputs (a list of {label: probability} maps) into arrays.
onnx and onnxruntime are imported inside the functions: importing this module imports neither.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from training_gate.inspector.native.errors import NativeRefusal, Reason, refuse
from training_gate.inspector.native.onnx_wire import OnnxLimits, OnnxSummary, read_onnx_file

# onnxruntime's tensor type names -> numpy dtype names, for the inputs a tabular model takes.
_INPUT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}
PROBABILITY_TOLERANCE = 1e-4


def check_model(path: Path, limits: OnnxLimits | None = None) -> OnnxSummary:
    """The wire-level checks, then onnx's own: a refusal names the first failure."""
    summary = read_onnx_file(path, limits)
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as exc:
        raise refuse(
            Reason.ONNX_CHECK_FAILED, str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__, "onnx.checker"
        ) from exc
    return summary


def _session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise refuse(
            Reason.ONNX_CHECK_FAILED, f"onnxruntime cannot load the model: {str(exc)[:300]}", "onnxruntime"
        ) from exc


def predict(path: Path, rows: list[list[float]]) -> list[Any]:
    """Every output of the graph on `rows`, after checking the rows fit its one tabular input."""
    import numpy as np

    session = _session(path)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise refuse(Reason.INPUT_WIDTH, f"the graph takes {len(inputs)} inputs, the sample is one table", "inputs")
    graph_input = inputs[0]
    dtype = _INPUT_TYPES.get(graph_input.type)
    if dtype is None:
        raise refuse(
            Reason.INPUT_WIDTH, f"input {graph_input.name!r} is {graph_input.type}, not a numeric tensor", "inputs"
        )
    shape = graph_input.shape
    width = shape[-1] if shape and isinstance(shape[-1], int) else None
    if len(shape) != 2 or (width is not None and any(len(row) != width for row in rows)):
        raise refuse(
            Reason.INPUT_WIDTH,
            f"input {graph_input.name!r} has shape {shape}, rows have {len(rows[0])} values",
            "inputs",
        )
    array = np.asarray(rows, dtype=dtype)
    try:
        results = session.run(None, {graph_input.name: array})
    except Exception as exc:
        raise refuse(
            Reason.PREDICTION_INVALID, f"onnxruntime failed to predict: {str(exc)[:300]}", "onnxruntime"
        ) from exc
    return [_plain(result) for result in results]


def _plain(result: Any) -> Any:
    """A ZipMap output (list of {label: probability}) as rows of probabilities in label order."""
    import numpy as np

    if isinstance(result, list) and result and isinstance(result[0], dict):
        labels = sorted(result[0])
        return np.asarray([[row[label] for label in labels] for row in result], dtype=np.float64)
    return np.asarray(result)


def check_probabilities(values: Any, where: str = "probabilities") -> None:
    """Rows of class probabilities: finite, in [0, 1], each row summing to 1."""
    for index, row in enumerate(values):
        items = [float(v) for v in (row if hasattr(row, "__iter__") else [row])]
        if not all(math.isfinite(v) and -PROBABILITY_TOLERANCE <= v <= 1 + PROBABILITY_TOLERANCE for v in items):
            raise refuse(Reason.PREDICTION_INVALID, f"row {index} holds {items}, not probabilities", where)
        if len(items) > 1 and abs(sum(items) - 1) > PROBABILITY_TOLERANCE * len(items):
            raise refuse(Reason.PREDICTION_INVALID, f"row {index} sums to {sum(items)}, not 1", where)


__all__ = ["NativeRefusal", "check_model", "check_probabilities", "predict"]
