"""The dangerous half of an inspection, run only inside the sandbox's disposable child.

Unpack (from the pipe the parent feeds), find, load, version check, smoke prediction, reference
predictions and holdout scoring. Each step reports its check as soon as it is decided, so a child
that dies later still leaves the earlier verdicts behind, and the parent knows which step it died in.
Any exception raised by the artifact's content fails the step that raised it (fail closed).
"""

from __future__ import annotations

import errno
import fnmatch
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import sklearn
from scipy import sparse
from sklearn.base import BaseEstimator

from training_gate.archive import UnsafeArchive, unpack_stream
from training_gate.domain.models import NOT_A_SKLEARN_MODEL_DETAIL, CheckStatus, HoldoutConfig
from training_gate.inspector.config import CHECK_ORDER, InspectConfig
from training_gate.inspector.holdout import holdout_check
from training_gate.inspector.loader import LoadedModel, load_model, load_model_stream
from training_gate.logic.evaluation_files import read_evaluation_files

MODEL_SUFFIXES = ("*.joblib", "*.pkl", "*.pickle", "*.skops")
# A training script may ship what its model predicted on a few rows: {"inputs": [[...]],
# "predictions": [...], "probabilities": [[...]] (optional)}. The gate compares.
REFERENCE_FILE = "reference_predictions.json"
REFERENCE_MAX_BYTES = 16 << 20
PROBA_SUM_TOLERANCE = 1e-6
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)

Emit = Callable[[dict[str, Any]], None]


class EnvironmentFailure(Exception):
    """The child's environment failed (the disk filled): the parent raises it as a gate error."""


def failure(exc: BaseException, memory_limit_mib: int | None = None) -> str:
    """An exception caused by the artifact, as a check detail: its type and a short message."""
    if isinstance(exc, MemoryError):
        limit = f"memory limit {memory_limit_mib} MiB exceeded" if memory_limit_mib else "out of memory"
        return f"MemoryError: {limit} (raise memory_limit_mib if the model is legitimately this large)"
    message = str(exc)
    if len(message) > 300:
        message = message[:300] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def is_model_candidate(name: str, pattern: str | None) -> bool:
    patterns = (pattern,) if pattern else MODEL_SUFFIXES
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(Path(name).name, p) for p in patterns)


def find_model_file(files: list[str], pattern: str | None) -> tuple[str | None, str]:
    """The one model file, or None with a sentence listing what was found."""
    candidates = sorted(f for f in files if is_model_candidate(f, pattern))
    if len(candidates) == 1:
        return candidates[0], f"model file {candidates[0]}"
    wanted = pattern or " / ".join(MODEL_SUFFIXES)
    if not candidates:
        return None, f"no model file matching {wanted}; the artifact holds: {', '.join(files) or 'nothing'}"
    return None, f"ambiguous: {len(candidates)} files match {wanted}: {', '.join(candidates)}; set model_file"


def _sample_rows(model: Any, config: InspectConfig) -> tuple[np.ndarray, str]:
    if config.sample_input is not None:
        return np.asarray(config.sample_input, dtype=float), "configured sample input"
    n_features = getattr(model, "n_features_in_", None)
    if not isinstance(n_features, (int, np.integer)) or isinstance(n_features, bool) or n_features <= 0:
        raise ValueError("no sample input is configured and the model does not declare n_features_in_")
    if n_features > config.max_sample_features:
        raise ValueError(
            f"the model declares n_features_in_={n_features}, over max_sample_features={config.max_sample_features}"
        )
    n_features = int(n_features)
    return np.zeros((1, n_features)), f"derived sample: one row of {n_features} zeros (no sample configured)"


def smoke_prediction(model: Any, config: InspectConfig) -> tuple[CheckStatus, str]:
    """The smoke check fits the estimator's kind. A predictor: predict twice (deterministic, one
    output per row, 1-D or 2-D) and predict_proba when the fitted model offers it. A transformer
    without predict: transform keeps the rows and gives finite numbers. An estimator with neither
    (clusterers that only fit_predict, embeddings that only fit_transform, covariance estimators):
    loaded only, a warning. Anything else is not an estimator: a failure. Every exception from the
    model's code is a failure of this check, whatever step raised it."""
    try:
        predicts = has_method(model, "predict")
        transforms = not predicts and has_method(model, "transform")
        if not predicts and not transforms:
            if isinstance(model, BaseEstimator) and has_method(model, "fit"):
                return CheckStatus.WARN, (
                    f"{type(model).__name__} has neither predict nor transform on a fitted model: loaded only, "
                    "nothing was run on a sample"
                )
            return CheckStatus.FAIL, f"{type(model).__name__} has no predict method: not an estimator"
        try:
            rows, origin = _sample_rows(model, config)
        except ValueError as exc:
            return CheckStatus.FAIL, f"no usable sample input: {exc}"
        if config.sample_input is not None and not np.all(np.isfinite(rows)):
            return CheckStatus.FAIL, "the sample input holds NaN or infinity: give finite rows"
        # The rows are finite (checked above, or zeros made here); scikit-learn would check them again on
        # each of the three calls, a full pass over a wide sample each time.
        with sklearn.config_context(assume_finite=True):
            return _smoke_calls(model, rows, origin) if predicts else _smoke_transform(model, rows, origin)
    except Exception as exc:  # noqa: BLE001 - any failure of foreign code is a verdict
        return CheckStatus.FAIL, f"smoke prediction raised {failure(exc, config.memory_limit_mib)}"


def _dense(value: Any) -> np.ndarray:
    """A prediction or transform output as an array: sparse outputs (one-hot, multilabel) too."""
    if sparse.issparse(value):
        return value.toarray()  # the sample is a few rows: dense is small
    return np.asarray(value)


def _same(first: np.ndarray, second: np.ndarray) -> bool:
    if first.shape != second.shape:
        return False
    if first.dtype.kind in "fc" and second.dtype.kind in "fc":
        # A NaN prediction (RadiusNeighborsRegressor with no neighbour in range) repeats as NaN.
        return bool(np.array_equal(first, second, equal_nan=True))
    return bool(np.array_equal(first, second))


def _smoke_calls(model: Any, rows: np.ndarray, origin: str) -> tuple[CheckStatus, str]:
    try:
        first = _dense(model.predict(rows))
        second = _dense(model.predict(rows))
    except Exception as exc:  # noqa: BLE001 - any failure of foreign predict code is a verdict
        return CheckStatus.FAIL, f"predict raised {failure(exc)}"
    if first.ndim not in (1, 2) or len(first) != len(rows):
        return CheckStatus.FAIL, f"predict returned {first.shape} for {len(rows)} rows"
    if not _same(first, second):
        return CheckStatus.FAIL, "predict is not deterministic: two calls on the same rows differ"
    detail = f"predict on {len(rows)} row(s) ({origin}) -> {first.tolist()[:5]}"
    if has_method(model, "predict_proba"):
        try:
            raw = model.predict_proba(rows)
            # Multi-output classifiers return one probability array per output, each a distribution.
            per_output = isinstance(raw, list)
            parts = [_dense(p).astype(float) for p in (raw if per_output else [raw])]
        except Exception as exc:  # noqa: BLE001
            return CheckStatus.FAIL, f"predict_proba raised {failure(exc)}"
        # One array beside 2-D predictions (ClassifierChain, one-vs-rest on multilabel targets): one
        # probability per label, each in [0, 1], which need not sum to 1 over the labels.
        marginals = not per_output and first.ndim == 2
        for proba in parts:
            if proba.ndim != 2 or proba.shape[0] != len(rows) or not np.all(np.isfinite(proba)):
                return CheckStatus.FAIL, "predict_proba returned non-finite values or the wrong shape"
            if proba.min() < 0 or proba.max() > 1:
                return CheckStatus.FAIL, f"predict_proba outside [0, 1]: min {proba.min():g}, max {proba.max():g}"
            sums = proba.sum(axis=1)
            if not marginals and not np.allclose(sums, 1.0, atol=PROBA_SUM_TOLERANCE):
                return CheckStatus.FAIL, f"predict_proba rows do not sum to 1: {sums.tolist()[:5]}"
        top = max(p.max() for p in parts)
        if marginals:
            detail += f"; predict_proba gives one probability per label in [0, 1] (max {top:.3f})"
        else:
            outputs = f" for each of {len(parts)} outputs" if per_output else ""
            detail += f"; predict_proba rows sum to 1{outputs} (max {top:.3f})"
    return CheckStatus.PASS, detail


def _smoke_transform(model: Any, rows: np.ndarray, origin: str) -> tuple[CheckStatus, str]:
    try:
        output = model.transform(rows)
    except Exception as exc:  # noqa: BLE001 - any failure of foreign transform code is a verdict
        return CheckStatus.FAIL, f"transform raised {failure(exc)}"
    values = output.data if sparse.issparse(output) else np.asarray(output)
    shape = output.shape if sparse.issparse(output) else values.shape
    if len(shape) != 2 or shape[0] != len(rows):
        return CheckStatus.FAIL, f"transform returned {shape} for {len(rows)} rows"
    if values.dtype.kind not in "biufc":
        return CheckStatus.FAIL, f"transform returned {values.dtype} values, not numbers"
    if not np.all(np.isfinite(values)):
        return CheckStatus.FAIL, "transform returned NaN or infinity"
    kind = "sparse " if sparse.issparse(output) else ""
    return CheckStatus.PASS, (
        f"transform on {len(rows)} row(s) ({origin}) -> {kind}{shape[0]} x {shape[1]}, finite "
        "(no predict: a transformer)"
    )


def has_method(model: Any, name: str) -> bool:
    """Whether the model really offers `name`. Looked up on the instance, as a call would: an
    `available_if` method (SVC.predict_proba without probability=True) exists on the class and
    raises AttributeError here, so it counts as absent."""
    try:
        return callable(getattr(model, name))
    except AttributeError:
        return False


def reference_check(model: Any, files_root: Path, files: list[str], tolerance: float) -> tuple[CheckStatus, str]:
    if REFERENCE_FILE not in files:
        return CheckStatus.SKIPPED, f"no {REFERENCE_FILE} in the artifact"
    try:
        path = files_root / REFERENCE_FILE
        if path.stat().st_size > REFERENCE_MAX_BYTES:
            return CheckStatus.FAIL, f"{REFERENCE_FILE} is over {REFERENCE_MAX_BYTES} bytes"
        reference = json.loads(path.read_text(encoding="utf-8"))
        rows = np.asarray(reference["inputs"], dtype=float)
        expected = np.asarray(reference["predictions"])
    except Exception as exc:  # noqa: BLE001 - a hostile file (deep nesting: RecursionError) is a verdict too
        return CheckStatus.FAIL, f"{REFERENCE_FILE} is unreadable: {failure(exc)}"
    try:
        predicted = np.asarray(model.predict(rows))
    except Exception as exc:  # noqa: BLE001
        return CheckStatus.FAIL, f"predict on the reference inputs raised {failure(exc)}"
    if predicted.shape != expected.shape:
        return CheckStatus.FAIL, f"predict gave shape {predicted.shape}, the reference has {expected.shape}"
    numeric = np.issubdtype(predicted.dtype, np.number) and np.issubdtype(expected.dtype, np.number)
    same = np.allclose(predicted, expected, atol=tolerance) if numeric else np.array_equal(predicted, expected)
    if not same:
        differing = (
            int(np.sum(predicted != expected))
            if not numeric
            else int(np.sum(~np.isclose(predicted, expected, atol=tolerance)))
        )
        return CheckStatus.FAIL, (
            f"{differing} of {len(expected)} reference predictions differ: the model does not predict what "
            "training saw (often a scikit-learn version skew)"
        )
    if "probabilities" in reference and has_method(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(rows), dtype=float)
        wanted = np.asarray(reference["probabilities"], dtype=float)
        if proba.shape != wanted.shape or not np.allclose(proba, wanted, atol=tolerance):
            return CheckStatus.FAIL, f"predict_proba differs from the reference beyond {tolerance:g}"
    return CheckStatus.PASS, f"{len(expected)} reference predictions reproduced (tolerance {tolerance:g})"


class _Run:
    """One inspection inside the child: checks are emitted in order as they are decided."""

    ORDER = CHECK_ORDER[CHECK_ORDER.index("unpack") :]

    def __init__(self, request: dict[str, Any], emit: Emit):
        self.request = request
        self.emit = emit
        self.config = InspectConfig.model_validate(request["config"])
        self.workdir = Path(request["workdir"])
        self.metrics: list[Any] = []

    def phase(self, name: str) -> None:
        self.emit({"phase": name})

    def check(self, name: str, status: CheckStatus, detail: str) -> None:
        self.emit({"check": {"name": name, "status": status.value, "detail": detail}})

    def stop(self, after: str) -> None:
        for name in self.ORDER[self.ORDER.index(after) + 1 :]:
            self.check(name, CheckStatus.SKIPPED, f"not run: {after} failed")

    def run(self, data: BinaryIO | None) -> None:
        streamed: dict[str, LoadedModel | Exception] = {}
        files = self._unpack(data, streamed)
        if files is None:
            return
        self.emit({"metrics": [m.model_dump(mode="json") for m in self.metrics]})

        self.phase("find_model")
        model_file, detail = find_model_file(files, self.config.model_file)
        if (
            model_file is None
            and self.config.model_file is None
            and not any(is_model_candidate(f, None) for f in files)
        ):
            # Another framework's model (XGBoost, PyTorch...): not a rejection, nothing the gate can judge.
            self.check("find_model", CheckStatus.SKIPPED, f"{NOT_A_SKLEARN_MODEL_DETAIL}: {detail}")
            for name in self.ORDER[self.ORDER.index("find_model") + 1 :]:
                self.check(name, CheckStatus.SKIPPED, f"not run: {NOT_A_SKLEARN_MODEL_DETAIL}")
            return
        if model_file is None:
            self.check("find_model", CheckStatus.FAIL, detail)
            self.stop("find_model")
            return
        self.check("find_model", CheckStatus.PASS, detail)

        self.phase("load")
        if model_file not in streamed:
            hook("load")
        try:
            outcome = streamed.get(model_file)
            if isinstance(outcome, Exception):
                raise outcome
            loaded = outcome or load_model(self.workdir / model_file, self.config.extra_allowed_globals, self.config)
        except Exception as exc:  # noqa: BLE001 - a refused or corrupt file is a verdict, not a crash
            self.check("load", CheckStatus.FAIL, f"could not load {model_file}: {failure(exc, self._memory())}")
            self.stop("load")
            return
        model = loaded.model
        self.emit({"model": {"class": type(model).__name__, "sklearn_version": loaded.sklearn_version}})
        self.check("load", CheckStatus.PASS, f"loaded {type(model).__name__} through the allowlist")
        self._version(loaded)

        self.phase("smoke_prediction")
        hook("smoke_prediction")
        self.check("smoke_prediction", *smoke_prediction(model, self.config))

        self.phase("reference_predictions")
        try:
            status, detail = reference_check(model, self.workdir, files, self.config.reference_tolerance)
        except Exception as exc:  # noqa: BLE001
            status, detail = CheckStatus.FAIL, f"reference check raised {failure(exc, self._memory())}"
        self.check("reference_predictions", status, detail)

        self.phase("holdout")
        self._holdout(model)

    def _memory(self) -> int | None:
        return self.request.get("limits", {}).get("memory_mib")

    def _unpack(self, data: BinaryIO | None, streamed: dict[str, LoadedModel | Exception]) -> list[str] | None:
        if data is None:  # the parent copied the files (an uncompressed artifact under a prefix)
            files = list(self.request["files"])
            if not self._evaluation_files(files):
                return None
            return files
        self.phase("unpack")

        def claim(name: str) -> Callable[[BinaryIO], None] | None:
            if not is_model_candidate(name, self.config.model_file):
                return None

            def consume(stream: BinaryIO) -> None:
                self.phase("load")  # a crash from here on is the load's, though the tar is still open
                hook("load")
                try:
                    streamed[name] = load_model_stream(stream, name, self.config.extra_allowed_globals, self.config)
                except UnsafeArchive:
                    raise  # the archive itself broke (truncated, bomb): that is the unpack check's verdict
                except Exception as exc:  # noqa: BLE001 - a refused or corrupt model is the load check's verdict
                    streamed[name] = exc
                self.phase("unpack")

            return consume

        limits = self.config.limits()
        if self.request.get("max_written_bytes") is not None:
            limits = limits.with_written(int(self.request["max_written_bytes"]))
        try:
            hook("unpack")
            unpacked = unpack_stream(data, self.workdir, limits, claim, digest=False)
        except UnsafeArchive as exc:
            self.check("unpack", CheckStatus.FAIL, f"{exc.check}: {exc.detail}")
            self.stop("unpack")
            return None
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise EnvironmentFailure(
                    f"ENOSPC: no space left in the work directory while unpacking ({exc.strerror}); the caps "
                    "should have refused first: check EphemeralStorage against max_total_bytes"
                ) from exc
            if exc.errno == errno.EFBIG:
                self.check("unpack", CheckStatus.FAIL, "file size limit exceeded (raise max_member_bytes)")
                self.stop("unpack")
                return None
            raise
        if not self._evaluation_files(unpacked.files):
            return None
        self.check(
            "unpack",
            CheckStatus.PASS,
            f"{len(unpacked.files)} file(s), {unpacked.unpacked_bytes} bytes unpacked",
        )
        return unpacked.files

    def _evaluation_files(self, files: list[str]) -> bool:
        """Metrics from the evaluation files; one the parser chokes on (nesting deep enough for a
        RecursionError) fails the unpack check like any other unusable content."""
        try:
            self.metrics = read_evaluation_files(self.workdir, files, "model artifact")
        except Exception as exc:  # noqa: BLE001 - content of the artifact: a verdict, fail closed
            self.check("unpack", CheckStatus.FAIL, f"an evaluation file is unreadable: {failure(exc)}")
            self.stop("unpack")
            return False
        return True

    def _version(self, loaded: LoadedModel) -> None:
        if loaded.version_skew:
            status = CheckStatus.FAIL if self.config.version_skew == "fail" else CheckStatus.WARN
            self.check(
                "version_skew",
                status,
                f"model pickled with scikit-learn {loaded.sklearn_version}, gate runs "
                f"{loaded.runtime_sklearn_version}: set sklearn_version in the gate config to "
                f"{loaded.sklearn_version} or retrain with {loaded.runtime_sklearn_version}",
            )
        else:
            self.check("version_skew", CheckStatus.PASS, f"scikit-learn {loaded.sklearn_version} on both sides")

    def _holdout(self, model: Any) -> None:
        holdout: HoldoutConfig | None = self.config.holdout
        if holdout is None:
            self.check("holdout", CheckStatus.SKIPPED, "no holdout set configured")
            return
        prepared = self.request.get("holdout") or {}
        if "error" in prepared:
            self.check("holdout", CheckStatus.FAIL, prepared["error"])
            return
        path = Path(prepared["path"])
        status, detail, scored = holdout_check(model, holdout, lambda _uri: open(path, "rb"))
        self.emit({"metrics": [m.model_dump(mode="json") for m in scored]})
        self.check("holdout", status, detail)


def run_child(request: dict[str, Any], data: BinaryIO | None, emit: Emit) -> None:
    """Entry point inside the child; the sandbox turns what escapes into a named failure."""
    _HOOK_TARGET[0] = str(request.get("uri", ""))
    try:
        _Run(request, emit).run(data)
    except EnvironmentFailure as exc:
        emit({"environment_error": str(exc)})
        return
    emit({"done": True})


# -- test-only hooks -------------------------------------------------------------------------------
# The sandbox sets these from the zygote's environment, which only a test gives it (Sandbox(test_hooks=
# {uri: "phase:action"})): they stand in for model code that hangs, crashes or eats memory in a step.
HOOKS: dict[str, str] = {}
_HOOK_TARGET = [""]


def hook(phase: str) -> None:
    wanted_phase, _, action = HOOKS.get(_HOOK_TARGET[0], "").partition(":")
    if wanted_phase != phase:
        return
    if action == "sleep":
        import time

        time.sleep(3600)
    elif action == "segfault":
        import ctypes

        ctypes.string_at(0)
    elif action == "no-validation":
        from training_gate.inspector.structures import disable_for_tests

        disable_for_tests()
    elif action == "enospc":
        raise OSError(errno.ENOSPC, "No space left on device")
    elif action == "allocate":
        blocks = []
        while True:
            blocks.append(np.ones(1 << 24))  # touched pages: RSS grows, not just address space
