"""The smoke prediction and the reference predictions: what a loaded scikit-learn model must do on a few rows.

Runs only inside the sandbox's child: it calls the model's own code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from scipy import sparse
from sklearn.base import BaseEstimator

from training_gate.domain.models import CheckStatus
from training_gate.inspector.config import InspectConfig
from training_gate.inspector.inputs import (
    InputProblem,
    csv_table,
    derived_input,
    infinite,
    sample_input,
    table_input,
)

# A training script may ship what its model predicted on a few rows: {"inputs": [[...]],
# "predictions": [...], "probabilities": [[...]] (optional)}. The gate compares.
REFERENCE_FILE = "reference_predictions.json"
REFERENCE_MAX_BYTES = 16 << 20
PROBA_SUM_TOLERANCE = 1e-6


def failure(exc: BaseException, memory_limit_mib: int | None = None) -> str:
    """An exception caused by the artifact, as a check detail: its type and a short message."""
    if isinstance(exc, MemoryError):
        limit = f"memory limit {memory_limit_mib} MiB exceeded" if memory_limit_mib else "out of memory"
        return f"MemoryError: {limit} (raise memory_limit_mib if the model is legitimately this large)"
    message = str(exc)
    if len(message) > 300:
        message = message[:300] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _sample_rows(model: Any, config: InspectConfig) -> tuple[Any, int, str]:
    """The rows to predict on, as this model takes them (an array, a DataFrame, documents)."""
    if config.sample_input is not None:
        rows, count = sample_input(model, config.sample_input)
        return rows, count, "configured sample input"
    n_features = getattr(model, "n_features_in_", None)
    if not isinstance(n_features, (int, np.integer)) or isinstance(n_features, bool) or n_features <= 0:
        raise InputProblem("no sample input is configured and the model does not declare n_features_in_")
    if n_features > config.max_sample_features:
        raise InputProblem(
            f"the model declares n_features_in_={n_features}, over max_sample_features={config.max_sample_features}"
        )
    n_features = int(n_features)
    return derived_input(model, n_features), 1, f"derived sample: one row of {n_features} zeros (no sample configured)"


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
            rows, count, origin = _sample_rows(model, config)
        except InputProblem as exc:
            return CheckStatus.FAIL, f"no usable sample input: {exc}"
        numeric = isinstance(rows, np.ndarray) and rows.dtype.kind == "f"
        if infinite(rows):  # the configuration refuses infinities at synth; a reference file may hold one
            return CheckStatus.FAIL, "the sample input holds an infinite number: give finite rows"
        # Numbers without a missing value (a null): scikit-learn would check them again on each of the three
        # calls, a full pass over a wide sample each time. Other inputs are checked as usual.
        finite = numeric and not bool(np.isnan(rows).any())
        with sklearn.config_context(assume_finite=finite):
            call = smoke_calls if predicts else _smoke_transform
            return call(model, rows, count, origin)
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


def smoke_calls(model: Any, rows: Any, count: int, origin: str) -> tuple[CheckStatus, str]:
    """predict twice (one output per row, deterministic), predict_proba where the model offers it."""
    try:
        first = _dense(model.predict(rows))
        second = _dense(model.predict(rows))
    except Exception as exc:  # noqa: BLE001 - any failure of foreign predict code is a verdict
        return CheckStatus.FAIL, f"predict raised {failure(exc)}"
    if first.ndim not in (1, 2) or len(first) != count:
        return CheckStatus.FAIL, f"predict returned {first.shape} for {count} rows"
    if not _same(first, second):
        return CheckStatus.FAIL, "predict is not deterministic: two calls on the same rows differ"
    detail = f"predict on {count} row(s) ({origin}) -> {first.tolist()[:5]}"
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
            if proba.ndim != 2 or proba.shape[0] != count or not np.all(np.isfinite(proba)):
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


def _smoke_transform(model: Any, rows: Any, count: int, origin: str) -> tuple[CheckStatus, str]:
    try:
        output = model.transform(rows)
        if hasattr(output, "to_numpy") and not sparse.issparse(output):  # set_output(transform="pandas")
            output = output.to_numpy()
    except Exception as exc:  # noqa: BLE001 - any failure of foreign transform code is a verdict
        return CheckStatus.FAIL, f"transform raised {failure(exc)}"
    values = output.data if sparse.issparse(output) else np.asarray(output)
    shape = output.shape if sparse.issparse(output) else values.shape
    if len(shape) != 2 or shape[0] != count:
        return CheckStatus.FAIL, f"transform returned {shape} for {count} rows"
    if values.dtype.kind not in "biufc":
        return CheckStatus.FAIL, f"transform returned {values.dtype} values, not numbers"
    if not np.all(np.isfinite(values)):
        return CheckStatus.FAIL, "transform returned NaN or infinity"
    kind = "sparse " if sparse.issparse(output) else ""
    return CheckStatus.PASS, (
        f"transform on {count} row(s) ({origin}) -> {kind}{shape[0]} x {shape[1]}, finite (no predict: a transformer)"
    )


def has_method(model: Any, name: str) -> bool:
    """Whether the model really offers `name`. Looked up on the instance, as a call would: an
    `available_if` method (SVC.predict_proba without probability=True) exists on the class and
    raises AttributeError here, so it counts as absent."""
    try:
        return callable(getattr(model, name))
    except AttributeError:
        return False


def reference_check(
    model: Any,
    files_root: Path,
    files: list[str],
    tolerance: float,
    max_rows: int = 1_000,
    on_rows: Callable[[int], None] | None = None,
) -> tuple[CheckStatus, str]:
    """The model's predictions on the reference inputs the artifact ships, compared with the ones it
    recorded. Its first `max_rows` rows are compared (the file is the artifact's: its length is not the
    gate's to pay for); `on_rows` hears how many before any prediction, so the phase's budget follows."""
    if REFERENCE_FILE not in files:
        return CheckStatus.SKIPPED, f"no {REFERENCE_FILE} in the artifact"
    try:
        path = files_root / REFERENCE_FILE
        if path.stat().st_size > REFERENCE_MAX_BYTES:
            return CheckStatus.FAIL, f"{REFERENCE_FILE} is over {REFERENCE_MAX_BYTES} bytes"
        reference = json.loads(path.read_text(encoding="utf-8"))
        inputs, predictions = reference["inputs"], reference["predictions"]
        if isinstance(inputs, dict):  # {"csv": text with a header}, as sample_input takes it
            columns, table = csv_table(inputs["csv"])
        elif isinstance(inputs, list):
            columns, table = None, inputs
        else:
            return CheckStatus.FAIL, f"{REFERENCE_FILE}: inputs must be rows, records, documents or {{'csv': text}}"
        total = len(table)
        if not isinstance(predictions, list) or len(predictions) != total:
            return CheckStatus.FAIL, f"{REFERENCE_FILE} needs one prediction per input row ({total} rows)"
        probabilities = reference.get("probabilities")
        if probabilities is not None and (not isinstance(probabilities, list) or len(probabilities) != total):
            return CheckStatus.FAIL, f"{REFERENCE_FILE} needs one probability row per input row ({total} rows)"
        kept = min(total, max_rows)
        if on_rows is not None:
            on_rows(kept)
        if columns is not None:
            rows: Any = table_input(model, columns, table[:kept], text=True, types=inputs.get("types"))
        else:
            rows, _ = sample_input(model, table[:kept])
        expected = np.asarray(predictions[:kept])
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
    if probabilities is not None and has_method(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(rows), dtype=float)
        wanted = np.asarray(probabilities[:kept], dtype=float)
        if proba.shape != wanted.shape or not np.allclose(proba, wanted, atol=tolerance):
            return CheckStatus.FAIL, f"predict_proba differs from the reference beyond {tolerance:g}"
    first = f" (the first {kept} of {total}: max_reference_rows)" if kept < total else ""
    return CheckStatus.PASS, f"{kept} reference predictions reproduced{first} (tolerance {tolerance:g})"
