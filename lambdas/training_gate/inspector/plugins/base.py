"""What the four native plug-ins share: validate the bytes with the gate's parser, then hand only what it
validated to the framework's reader, and present the loaded model to the child's checks like an estimator.

    load(stream, file, config)  # the gate's parser (NativeRefusal), then the reader (ReaderMissing if absent)
    predict(model, config)      # the width check against the model's features, then the smoke calls
    describe(model)             # framework, format, reader and writer versions, objective, sizes

The loaded model is a `NativePredictor`: `predict` (labels for a classifier, the output otherwise) and, for a
classifier with probabilities, `predict_proba` and `classes_`, so the smoke checks, the reference predictions
and the holdout scoring run on it exactly as on a scikit-learn model. Every call checks the rows' width
against the model's features first: XGBoost itself predicts a 6-feature model on 4 columns.
"""

from __future__ import annotations

import importlib
import io
import math
import pickle
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

from training_gate.domain.models import CheckStatus
from training_gate.inspector.frameworks import FileFacts, ReaderMissing, _Signatures
from training_gate.inspector.inputs import InputProblem, derived_input, sample_input
from training_gate.inspector.native import api
from training_gate.inspector.native.errors import NativeRefusal, Reason, refuse
from training_gate.inspector.native.onnx_wire import DEFAULT_DOMAINS, OnnxLimits
from training_gate.inspector.plugins import pickled
from training_gate.inspector.smoke import failure, smoke_calls


class Loaded:
    """A framework's reader holding a validated model: what it predicts, in the shape a scikit-learn model
    would. `kind`: "probabilities" (rows of class probabilities), "labels" (a class per row) or "scores"."""

    kind: str = "scores"
    # Columns the reader takes as categories (CatBoost's cat_features): their cells reach it as text.
    categorical: frozenset[int] = frozenset()

    def outputs(self, matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def labels(self, matrix: np.ndarray) -> np.ndarray | None:
        """Labels when the reader gives them itself (an ONNX classifier's label output), else None."""
        return None


def as_probabilities(values: Any) -> np.ndarray:
    """A binary model's probability of the positive class as rows [1 - p, p]; rows of classes as they are."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1):
        positive = values.reshape(-1)
        return np.column_stack([1.0 - positive, positive])
    return values


class NativePredictor:
    """The loaded model as the child's checks see it."""

    def __init__(
        self,
        plugin: NativeFramework,
        native: api.NativeModel,
        loaded: Loaded,
        reader_version: str,
        width: int | None,
        classes: list[Any] | None,
        feature_names: list[str] | None = None,
    ) -> None:
        self.plugin = plugin
        self.native = native
        self.loaded = loaded
        self.reader_version = reader_version
        self.width = width
        self.n_features_in_ = width
        if feature_names and width is not None and len(feature_names) == width:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        if loaded.kind in ("probabilities", "labels") and classes is not None:
            self.classes_ = np.asarray(classes)

    # -- inputs ---------------------------------------------------------------------------------------------

    def matrix(self, rows: Any) -> np.ndarray:
        """Rows as a float matrix of the model's width: missing cells NaN, text refused by column."""
        if hasattr(rows, "to_numpy") and hasattr(rows, "columns"):
            columns = [str(c) for c in rows.columns]
            cells = rows.to_numpy(dtype=object)
        else:
            cells = np.asarray(rows, dtype=object)
            columns = []
        if cells.ndim == 1:
            raise InputProblem(f"{self.plugin.name} takes rows of numbers, not one value per row")
        if cells.ndim != 2:
            raise InputProblem(f"the rows have {cells.ndim} dimensions")
        if self.width is not None and cells.shape[1] != self.width:
            raise InputProblem(f"rows of {cells.shape[1]} values, the model reads {self.width} features")
        if self.loaded.categorical:
            return self._mixed(cells, columns)
        try:  # numbers throughout (NaN for missing): at once
            matrix = cells.astype(np.float64)
        except (TypeError, ValueError):  # None, text or numbers as text: cell by cell, naming the column
            matrix = np.empty(cells.shape, dtype=np.float64)
            for (row, column), cell in np.ndenumerate(cells):
                matrix[row, column] = _number(cell, columns[column] if columns else str(column), self.plugin.name)
        if np.isinf(matrix).any():
            raise InputProblem("the sample input holds infinity: give finite rows")
        if not self.plugin.takes_missing and np.isnan(matrix).any():
            raise InputProblem(
                f"the sample input holds missing values: {self.plugin.name} models have no missing-value "
                "convention of their own; give complete rows"
            )
        return matrix

    def _mixed(self, cells: np.ndarray, columns: list[str]) -> np.ndarray:
        """Rows for a reader with categorical columns: those as text (a whole number as its digits, as CatBoost
        itself turns integer categories into text; a missing one as "None"), the others as numbers."""
        matrix = np.empty(cells.shape, dtype=object)
        for (row, column), cell in np.ndenumerate(cells):
            if column in self.loaded.categorical:
                if isinstance(cell, (float, np.floating)) and math.isfinite(cell) and float(cell).is_integer():
                    cell = int(cell)
                matrix[row, column] = "None" if cell is None else str(cell)
            else:
                name = columns[column] if columns else str(column)
                value = _number(cell, name, self.plugin.name)
                if math.isinf(value):
                    raise InputProblem("the sample input holds infinity: give finite rows")
                matrix[row, column] = value
        return matrix

    # -- what the checks call ---------------------------------------------------------------------------------

    def predict(self, rows: Any) -> np.ndarray:
        matrix = self.matrix(rows)
        given = self.loaded.labels(matrix)
        if given is not None:
            return np.asarray(given).reshape(-1)
        outputs = np.asarray(self.loaded.outputs(matrix))
        if self.loaded.kind == "probabilities":
            index = np.argmax(as_probabilities(outputs), axis=1)
            return self.classes_[index] if hasattr(self, "classes_") else index
        if self.loaded.kind == "labels":
            index = outputs.reshape(-1).astype(np.int64)
            if hasattr(self, "classes_"):
                if (index < 0).any() or (index >= len(self.classes_)).any():
                    raise refuse(Reason.PREDICTION_INVALID, f"class indices {sorted(set(index.tolist()))[:5]}")
                return self.classes_[index]
            return index
        return outputs

    def describe(self) -> dict[str, Any]:
        return self.plugin.describe(self)


class NativeClassifier(NativePredictor):
    """A classifier whose reader gives class probabilities."""

    def predict_proba(self, rows: Any) -> np.ndarray:
        return as_probabilities(self.loaded.outputs(self.matrix(rows)))


def _number(cell: Any, column: str, framework: str) -> float:
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return math.nan
    if isinstance(cell, (bool, np.bool_)):
        return float(cell)
    if isinstance(cell, (int, float, np.integer, np.floating)):
        return float(cell)
    if isinstance(cell, str):
        try:
            return float(cell)
        except ValueError:
            pass
    raise InputProblem(f"column {column} holds {cell!r}: {framework} takes numbers (NaN or empty for missing)")


class NativeFramework(_Signatures):
    """A framework the gate judges after validating its bytes with its own parser."""

    judged = True
    framework_key: ClassVar[str] = ""  # the native readers' name: xgboost, lightgbm, catboost, onnx
    reader_module: ClassVar[str] = ""  # what the child imports to load the model
    reader_name: ClassVar[str] = ""  # how the report names the reader (its PyPI name)
    takes_missing: ClassVar[bool] = True  # NaN is a missing value the trees route (a default direction)

    # -- recognise ------------------------------------------------------------------------------------------

    def content(self, file: FileFacts, names: frozenset[str]) -> str | None:
        found = api.recognise(file.head, file.basename)
        if found is None or found.framework != self.framework_key:
            return None
        return self.evidence(found.format)

    def evidence(self, fmt: str) -> str:
        return f"a {fmt} model"

    # -- validate, then load --------------------------------------------------------------------------------

    def validate(self, stream: BinaryIO, file: FileFacts, config: Any = None) -> api.NativeModel:
        """The gate's own parser on the whole file; a NativeRefusal names what is wrong. Nothing is imported."""
        return self.validate_bytes(stream.read(), file, config)

    def recognition(self, data: bytes, file: FileFacts) -> api.Recognition:
        found = api.recognise(data[: api.HEAD_BYTES], file.basename)
        if found is None or found.framework != self.framework_key:
            found = api.Recognition(self.framework_key, "pickle" if data[:1] == b"\x80" else "unknown")
        return found

    def validate_bytes(self, data: bytes, file: FileFacts, config: Any = None) -> api.NativeModel:
        domains = frozenset(getattr(config, "onnx_domains", None) or [])
        limits = OnnxLimits(domains=DEFAULT_DOMAINS | domains)
        return api.validate_bytes(self.recognition(data, file), data, file.path, limits)

    def load(self, stream: BinaryIO, file: FileFacts, config: Any) -> NativePredictor:
        """The gate's parser first (a refusal leaves every C loader unused), then the reader on what it validated.
        A pickle (XGBoost's and LightGBM's) goes through the gate's loader instead (`load_pickle`)."""
        data = stream.read()
        # A pickle, raw or compressed by joblib (recognition read its first global either way).
        pickled_file = file.pickle_module is not None or self.recognition(data, file).format == "pickle"
        if self.pickles_through_loader and pickled_file:
            return self.load_pickle(data, file, config)
        try:
            native = self.validate_bytes(data, file, config)
        except NativeRefusal as exc:
            exc.before_reader = True  # type: ignore[attr-defined]
            raise
        return self.open(native, self.reader(), file, config)

    # -- a pickle, through the gate's loader ------------------------------------------------------------------------

    pickles_through_loader: ClassVar[bool] = False

    def load_pickle(self, data: bytes, file: FileFacts, config: Any) -> NativePredictor:
        """The gate's loader reads the pickle: its classes known by identity, its states held to the ones the
        library writes, each Booster in it loaded only from what the gate's parser validated
        (`plugins.pickled`). Its refusals are this plug-in's, named as its parser names them."""
        from training_gate.inspector.loader import load_model_stream

        try:
            reader = self.reader()
        except ReaderMissing:
            # Without its library the loader cannot build the pickle's objects; the gate's own reader still
            # reads a raw pickle as data, so a hostile or broken one is rejected rather than skipped.
            if data[:1] == b"\x80":
                try:
                    self.validate_bytes(data, file, config)
                except NativeRefusal as exc:
                    exc.before_reader = True  # type: ignore[attr-defined]
                    raise
            raise
        stream = io.BytesIO(data)
        try:
            loaded = load_model_stream(stream, file.name, config.extra_allowed_globals, config)
            # Code that calls pickle.load again reads on: every pickle after the first is held to the same rules.
            count = 1
            while data[:1] == b"\x80" and stream.tell() < len(data):
                count += 1
                try:
                    load_model_stream(stream, file.name, config.extra_allowed_globals, config)
                except (pickle.UnpicklingError, ValueError, EOFError) as exc:
                    refusal = refuse(_loader_reason(exc), f"its pickle #{count} (after the first): {exc}", "pickle")
                    refusal.before_reader = True  # type: ignore[attr-defined]
                    raise refusal from exc
        except NativeRefusal as exc:
            exc.before_reader = True  # type: ignore[attr-defined]
            raise
        except (pickle.UnpicklingError, ValueError, EOFError) as exc:
            refusal = refuse(_loader_reason(exc), str(exc) or type(exc).__name__, "pickle")
            refusal.before_reader = True  # type: ignore[attr-defined]
            raise refusal from exc
        found = pickled.judged_model(loaded.model)
        if found is None or found.framework != self.framework_key:
            what = type(loaded.model).__name__
            raise refuse(Reason.PICKLE_SHAPE, f"the pickle holds a {what}, not a {self.name} Booster or estimator")
        return self.open(self.from_pickle(found), reader, file, config)

    def from_pickle(self, found: pickled.JudgedModel) -> api.NativeModel:
        raise NotImplementedError

    def reader(self) -> Any:
        """The framework's library, imported inside the child; ReaderMissing when the image has none."""
        from training_gate.inspector.child import hook

        try:
            hook("reader")
            return importlib.import_module(self.reader_module)
        except ImportError as exc:
            raise ReaderMissing(
                f"{self.name} is read by {self.reader_name}, which this inspector image does not carry ({exc}); "
                "the gate validated the bytes, and cannot predict without it"
            ) from exc

    def open(self, native: api.NativeModel, reader: Any, file: FileFacts, config: Any) -> NativePredictor:
        raise NotImplementedError

    def predictor(
        self,
        native: api.NativeModel,
        loaded: Loaded,
        reader: Any,
        width: int | None,
        classes: list[Any] | None,
        feature_names: list[str] | None = None,
    ) -> NativePredictor:
        cls = NativeClassifier if loaded.kind == "probabilities" else NativePredictor
        version = str(getattr(reader, "__version__", "unknown"))
        return cls(self, native, loaded, version, width, classes, feature_names)

    # -- what the child reports -----------------------------------------------------------------------------

    def loaded_detail(self, model: NativePredictor) -> tuple[CheckStatus, str]:
        facts = model.native.details
        parts = [str(facts.get(k)) for k in ("objective", "booster") if facts.get(k)]
        what = f"{self.name} {facts.get('format')}" + (f" ({', '.join(parts)})" if parts else "")
        return CheckStatus.PASS, (
            f"{what}: validated by the gate's own parser, then loaded by {self.reader_name} {model.reader_version} "
            "from exactly what it validated"
        )

    def version_check(self, model: NativePredictor) -> tuple[CheckStatus, str]:
        written = model.native.details.get("writer_version")
        origin = f"written by {self.name} {written}" if written else "its writer's version is not recorded"
        return CheckStatus.PASS, f"{origin}; read by {self.reader_name} {model.reader_version}"

    def predict(self, model: NativePredictor, config: Any) -> tuple[CheckStatus, str]:
        return native_smoke(model, config)

    def estimator(self, model: NativePredictor) -> NativePredictor:
        return model

    def describe(self, model: Any) -> dict[str, Any]:
        if not isinstance(model, NativePredictor):
            return {"class": type(model).__name__}
        facts = dict(model.native.describe())
        estimator = facts.pop("estimator", None)
        return {
            **facts,
            "framework": self.key,
            "class": estimator or self.model_class,
            "reader": self.reader_name,
            "reader_version": model.reader_version,
            "bytes_validated": model.native.validated,
            "kind": model.loaded.kind,
        }

    model_class: ClassVar[str] = "Booster"


def _loader_reason(exc: BaseException) -> Reason:
    from training_gate.inspector.restricted.errors import CapExceeded, RefusedGlobal

    if isinstance(exc, RefusedGlobal):
        return Reason.PICKLE_GLOBAL_REFUSED
    if isinstance(exc, CapExceeded):
        return Reason.LENGTH_TOO_LARGE
    if isinstance(exc, EOFError):
        return Reason.TRUNCATED
    return Reason.PICKLE_SHAPE


def native_smoke(model: NativePredictor, config: Any) -> tuple[CheckStatus, str]:
    """The sample as this model takes it (rows, records, CSV; zeros of its width when none is configured),
    checked against its width, then the scikit-learn smoke calls: one output per row, deterministic,
    finite, probabilities in [0, 1] summing to 1."""
    try:
        if config.sample_input is not None:
            rows, count = sample_input(model, config.sample_input)
            origin = "configured sample input"
        else:
            if model.width is None:
                raise InputProblem("no sample input is configured and the model's input width is not fixed")
            if model.width > config.max_sample_features:
                raise InputProblem(
                    f"the model reads {model.width} features, over max_sample_features={config.max_sample_features}"
                )
            rows, count = derived_input(model, model.width), 1
            origin = f"derived sample: one row of {model.width} zeros (no sample configured)"
        model.matrix(rows)
    except InputProblem as exc:
        if model.width is not None and str(exc).startswith("rows of "):
            return CheckStatus.FAIL, (
                f"no usable sample input: the sample input has {exc}: set sample_input to rows of {model.width} "
                "values, or leave it unset to predict on one row of zeros"
            )
        return CheckStatus.FAIL, f"no usable sample input: {exc}"
    except Exception as exc:  # noqa: BLE001 - a sample the model's own attributes choke on is a verdict
        return CheckStatus.FAIL, f"no usable sample input: {failure(exc)}"
    try:
        status, detail = smoke_calls(model, rows, count, origin)
    except NativeRefusal as exc:
        return CheckStatus.FAIL, f"smoke prediction refused: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure of the framework's code is a verdict
        return CheckStatus.FAIL, f"smoke prediction raised {failure(exc, config.memory_limit_mib)}"
    return status, f"{model.plugin.name}: {detail}"


def checked(transform: str, values: Any) -> np.ndarray:
    """A reader's output after the probability sanity of its objective (sigmoid in [0, 1], softmax rows
    summing to 1, everything finite)."""
    api._check_objective_output(transform, values)
    return np.asarray(values)


def file_path(file: FileFacts) -> Path:
    if file.path is None:
        raise refuse(Reason.UNSUPPORTED, f"{file.name} is not on disk for its reader")
    return file.path
