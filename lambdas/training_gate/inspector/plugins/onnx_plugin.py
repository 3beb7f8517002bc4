"""ONNX: the model read at the wire level by the gate (`native.onnx_wire`: every tensor's size before anything
is allocated, external data only inside the artifact, operator domains onnxruntime implements), then
`onnx.load(load_external_data=False)` and `onnx.checker` with its full check, then onnxruntime, with the
graph's own input name, element type and width. A classifier's probability output (ZipMap included) is
checked like scikit-learn's predict_proba; its label output is its prediction.

A graph whose inputs are not one table of numbers (an image's [N, 3, H, W], a text model's input_ids and
attention_mask) cannot take the sample input, a table: its smoke prediction runs on zeros of each input's
declared shape and type (a dynamic dimension as 1), and checks every output is finite."""

from __future__ import annotations

from typing import Any

import numpy as np

from training_gate.domain.models import CheckStatus
from training_gate.inspector.frameworks import FileFacts, ReaderMissing
from training_gate.inspector.inputs import InputProblem
from training_gate.inspector.native import api, onnx_runtime
from training_gate.inspector.native.errors import Reason, refuse
from training_gate.inspector.native.onnx_wire import DEFAULT_DOMAINS, OnnxLimits
from training_gate.inspector.plugins.base import Loaded, NativeFramework, NativePredictor, file_path
from training_gate.inspector.smoke import failure

_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}
_INPUT_TYPES.update({"tensor(int64)": np.int64, "tensor(int32)": np.int32})
# What else a graph's input may be fed as zeros: quantized images, masks, token ids.
_ZERO_TYPES = {**_INPUT_TYPES, "tensor(int16)": np.int16, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}
_ZERO_TYPES.update({"tensor(uint16)": np.uint16, "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64})
_ZERO_TYPES.update({"tensor(bool)": np.bool_, "tensor(string)": np.object_})
_LABEL_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(string)")
_CLASSIFIERS = ("ZipMap", "LinearClassifier", "TreeEnsembleClassifier", "SVMClassifier")


class _Session(Loaded):
    def __init__(self, session: Any) -> None:
        self.session = session
        self.inputs = session.get_inputs()
        self.input = self.inputs[0]
        self.dtype = _INPUT_TYPES.get(self.input.type)
        shape = list(self.input.shape or [])
        self.tabular = len(self.inputs) == 1 and self.dtype is not None and len(shape) == 2
        self.width = shape[1] if self.tabular and isinstance(shape[1], int) else None
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
        if not self.tabular:
            self.kind = "scores"

    def describe_inputs(self) -> str:
        return ", ".join(
            f"{i.name} {i.type.removeprefix('tensor(').rstrip(')')} {list(i.shape or [])}" for i in self.inputs
        )

    def zeros(self) -> dict[str, np.ndarray]:
        """One zero-valued input per graph input, of its declared shape (a dynamic dimension as 1)."""
        feeds = {}
        for graph_input in self.inputs:
            dtype = _ZERO_TYPES.get(graph_input.type)
            if dtype is None:
                raise InputProblem(f"input {graph_input.name!r} is {graph_input.type}: the gate cannot make one")
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in (graph_input.shape or [])]
            if np.prod(shape, dtype=np.int64) > ZERO_INPUT_ELEMENTS:
                raise InputProblem(f"input {graph_input.name!r} of shape {shape} is too large to make as zeros")
            feeds[graph_input.name] = (
                np.full(shape, "", dtype=object) if dtype is np.object_ else np.zeros(shape, dtype)
            )
        return feeds

    def _run(self, matrix: np.ndarray) -> list[Any]:
        if not self.tabular:
            raise InputProblem(f"the graph's inputs ({self.describe_inputs()}) are not one table of numbers")
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


ZERO_INPUT_ELEMENTS = 1 << 24


def graph_smoke(model: NativePredictor) -> tuple[CheckStatus, str]:
    """A graph that takes no table: onnxruntime on zeros of its declared inputs, twice, every output finite."""
    session: _Session = model.loaded  # type: ignore[assignment]
    origin = f"zeros of the graph's inputs ({session.describe_inputs()}; a dynamic dimension as 1)"
    try:
        feeds = session.zeros()
    except InputProblem as exc:
        return CheckStatus.SKIPPED, f"no smoke prediction: {exc}"
    try:
        first = session.session.run(None, feeds)
        second = session.session.run(None, feeds)
    except Exception as exc:  # noqa: BLE001 - the graph may need another size than the one the gate chose
        return CheckStatus.WARN, (
            f"ONNX: onnxruntime loaded the graph but could not predict on {origin}: {failure(exc)}; the graph's "
            "inputs are not a table, so the sample input cannot be used"
        )
    shapes = []
    for index, (one, two) in enumerate(zip(first, second, strict=True)):
        values, again = np.asarray(onnx_runtime._plain(one)), np.asarray(onnx_runtime._plain(two))
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            return CheckStatus.FAIL, f"ONNX: output {index} holds non-finite values on {origin}"
        if values.shape != again.shape or (values.dtype.kind in "fciub" and not np.array_equal(values, again)):
            return CheckStatus.FAIL, f"ONNX: output {index} differs between two runs on {origin}"
        shapes.append(list(values.shape))
    return CheckStatus.PASS, f"ONNX: predicted on {origin} -> outputs of shapes {shapes}, finite and deterministic"


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
        if not loaded.tabular:
            native.details["inputs"] = loaded.describe_inputs()
        return self.predictor(native, loaded, reader, loaded.width, classes)

    def predict(self, model: NativePredictor, config: Any) -> tuple[CheckStatus, str]:
        if isinstance(model.loaded, _Session) and not model.loaded.tabular:
            return graph_smoke(model)
        return super().predict(model, config)
