"""ONNX: the model read at the wire level by the gate (`native.onnx_wire`: every tensor's size before anything
is allocated, external data only inside the artifact, operator domains onnxruntime implements), then
`onnx.load(load_external_data=False)` and `onnx.checker` with its full check, then onnxruntime, with the
graph's own input name, element type and width. A classifier's probability output (ZipMap included) is
checked like scikit-learn's predict_proba; its label output is its prediction."""

from __future__ import annotations

from typing import Any

import numpy as np

from training_gate.inspector.frameworks import FileFacts, ReaderMissing
from training_gate.inspector.native import api, onnx_runtime
from training_gate.inspector.native.errors import Reason, refuse
from training_gate.inspector.native.onnx_wire import DEFAULT_DOMAINS, OnnxLimits
from training_gate.inspector.plugins.base import Loaded, NativeFramework, NativePredictor, file_path

_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}
_INPUT_TYPES.update({"tensor(int64)": np.int64, "tensor(int32)": np.int32})
_LABEL_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(string)")
_CLASSIFIERS = ("ZipMap", "LinearClassifier", "TreeEnsembleClassifier", "SVMClassifier")


class _Session(Loaded):
    def __init__(self, session: Any) -> None:
        self.session = session
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise refuse(Reason.INPUT_WIDTH, f"the graph takes {len(inputs)} inputs, a sample is one table", "inputs")
        self.input = inputs[0]
        self.dtype = _INPUT_TYPES.get(self.input.type)
        shape = list(self.input.shape or [])
        if self.dtype is None or len(shape) != 2:
            raise refuse(
                Reason.INPUT_WIDTH,
                f"input {self.input.name!r} is {self.input.type} of shape {shape}, not a table of numbers",
                "inputs",
            )
        self.width = shape[1] if isinstance(shape[1], int) else None
        outputs = session.get_outputs()
        self.label = next((i for i, o in enumerate(outputs) if o.type in _LABEL_TYPES), None)
        self.proba = next(
            (
                i
                for i, o in enumerate(outputs)
                if o.type.startswith("seq(map(") or (o.type == "tensor(float)" and "prob" in o.name.lower())
            ),
            None,
        )
        self.kind = "probabilities" if self.proba is not None else "labels" if self.label is not None else "scores"

    def _run(self, matrix: np.ndarray) -> list[Any]:
        try:
            return self.session.run(None, {self.input.name: matrix.astype(self.dtype)})
        except Exception as exc:
            raise refuse(Reason.PREDICTION_INVALID, f"onnxruntime failed to predict: {str(exc)[:300]}") from exc

    def outputs(self, matrix: np.ndarray) -> np.ndarray:
        results = self._run(matrix)
        if self.proba is not None:
            probabilities = onnx_runtime._plain(results[self.proba])
            onnx_runtime.check_probabilities(probabilities)
            return np.asarray(probabilities, dtype=np.float64)
        values = np.asarray(results[self.label if self.kind == "labels" else 0])
        if values.ndim == 2 and values.shape[1] == 1:
            values = values.reshape(-1)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise refuse(Reason.PREDICTION_INVALID, "the prediction holds non-finite values")
        return values

    def labels(self, matrix: np.ndarray) -> np.ndarray | None:
        if self.label is None:
            return None
        return np.asarray(self._run(matrix)[self.label]).reshape(-1)


def _classes(model: Any) -> list[Any] | None:
    """The class labels a classifier node or ZipMap declares, in the order ZipMap's rows are read (sorted)."""
    for node in model.graph.node:
        if node.op_type not in _CLASSIFIERS:
            continue
        for attribute in node.attribute:
            if attribute.name in ("classlabels_int64s", "classlabels_ints") and attribute.ints:
                return sorted(int(v) for v in attribute.ints)
            if attribute.name == "classlabels_strings" and attribute.strings:
                return sorted(v.decode("utf-8", "replace") for v in attribute.strings)
    return None


class ONNX(NativeFramework):
    name = "ONNX"
    framework_key = "onnx"
    reader_module = "onnxruntime"
    reader_name = "onnxruntime"
    modules = ("onnx", "onnxruntime")
    suffixes = (".onnx",)
    model_class = "ModelProto"
    takes_missing = False

    def evidence(self, fmt: str) -> str:
        return "an ONNX ModelProto (ir_version, then its fields)"

    def open(self, native: api.NativeModel, reader: Any, file: FileFacts, config: Any) -> NativePredictor:
        try:
            import onnx
        except ImportError as exc:
            raise ReaderMissing(f"no ONNX checker in this inspector image: onnx is not installed ({exc})") from exc
        path = file_path(file)
        domains = frozenset(getattr(config, "onnx_domains", None) or [])
        onnx_runtime.check_model(path, OnnxLimits(domains=DEFAULT_DOMAINS | domains))
        proto = onnx.load(str(path), load_external_data=False)
        session = onnx_runtime._session(path)
        loaded = _Session(session)
        classes = _classes(proto) if loaded.kind != "scores" else None
        if classes is None and loaded.kind == "probabilities":
            shape = session.get_outputs()[loaded.proba].shape or []
            classes = list(range(shape[-1])) if shape and isinstance(shape[-1], int) else None
        native.details["checker"] = f"onnx {onnx.__version__}"
        return self.predictor(native, loaded, reader, loaded.width, classes)
