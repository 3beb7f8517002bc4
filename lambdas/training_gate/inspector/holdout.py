"""Score the loaded model on a labelled holdout set: metrics with source `holdout`."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np
from sklearn import metrics as skm

from training_gate.domain.models import CheckStatus, HoldoutConfig, MetricValue
from training_gate.inspector.inputs import InputProblem, table_input


class HoldoutError(ValueError):
    """The holdout set cannot be used; the message says why."""


def _read_bytes(config: HoldoutConfig, read: Callable[[str], BinaryIO]) -> bytes:
    with read(config.uri) as handle:
        data = handle.read(config.max_bytes + 1)
    if len(data) > config.max_bytes:
        raise HoldoutError(f"holdout set {config.uri} is larger than max_bytes={config.max_bytes}")
    return data


def _table(data: bytes, uri: str) -> tuple[list[str], list[list[Any]], bool]:
    """The holdout set's columns and rows, and whether its cells are text (CSV) or typed (Parquet)."""
    if uri.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise HoldoutError("Parquet holdout sets need pyarrow in the inspector") from exc
        table = pq.read_table(io.BytesIO(data))
        columns = table.column_names
        return columns, [list(row) for row in zip(*(table.column(c).to_pylist() for c in columns), strict=True)], False
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    if len(rows) < 2:
        raise HoldoutError(f"holdout set {uri} needs a header row and at least one data row")
    return rows[0], rows[1:], True


def _features_and_labels(
    model: Any, columns: list[str], rows: list[list[Any]], label: str, text: bool = True
) -> tuple[Any, np.ndarray]:
    """The features as the model takes them (a DataFrame with its columns where it was fit on one,
    documents for a text model, an array otherwise), and the labels."""
    if label not in columns:
        raise HoldoutError(f"label column {label!r} is not in the holdout set (columns: {', '.join(columns)})")
    index = columns.index(label)
    labels = [row[index] for row in rows]
    names = [c for i, c in enumerate(columns) if i != index]
    try:
        features = table_input(model, names, [[v for i, v in enumerate(row) if i != index] for row in rows], text)
    except InputProblem as exc:
        raise HoldoutError(f"the holdout features do not fit the model: {exc}") from exc
    return features, np.asarray(labels)


def _align_labels(truth: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """CSV labels are text; compare them with the model's classes in the classes' own type."""
    if classes.dtype.kind in "iuf" and truth.dtype.kind in "UO":
        try:
            return truth.astype(float).astype(classes.dtype)
        except ValueError as exc:
            raise HoldoutError(f"labels do not match the model's numeric classes: {exc}") from exc
    return truth.astype(classes.dtype) if classes.dtype.kind in "U" else truth


def score(model: Any, features: np.ndarray, truth: np.ndarray, average: str) -> dict[str, float]:
    classes = np.asarray(getattr(model, "classes_", np.unique(truth)))
    truth = _align_labels(truth, classes)
    predicted = model.predict(features)
    binary = len(classes) == 2
    kwargs: dict[str, Any] = {"average": "binary" if binary else average, "zero_division": 0}
    if binary:
        kwargs["pos_label"] = classes[1]
    scores = {
        "accuracy": skm.accuracy_score(truth, predicted),
        "precision": skm.precision_score(truth, predicted, **kwargs),
        "recall": skm.recall_score(truth, predicted, **kwargs),
        "f1": skm.f1_score(truth, predicted, **kwargs),
    }
    if callable(getattr(model, "predict_proba", None)) and len(np.unique(truth)) > 1:
        proba = model.predict_proba(features)
        if binary:
            scores["auc"] = skm.roc_auc_score(truth == classes[1], proba[:, 1])
        else:
            auc_average = "macro" if average == "micro" else average
            scores["auc"] = skm.roc_auc_score(truth, proba, multi_class="ovr", average=auc_average, labels=classes)
    return {name: float(value) for name, value in scores.items()}


def holdout_check(
    model: Any,
    config: HoldoutConfig,
    read: Callable[[str], BinaryIO] | None,
    on_rows: Callable[[int], None] | None = None,
) -> tuple[CheckStatus, str, list[MetricValue]]:
    """Score the model on the holdout set; `on_rows` hears the row count before any prediction (the
    phase's budget grows with it)."""
    if read is None:
        return CheckStatus.FAIL, "a holdout set is configured but the gate cannot read it here", []
    try:
        columns, rows, text = _table(_read_bytes(config, read), config.uri)
        if on_rows is not None:
            on_rows(len(rows))
        features, truth = _features_and_labels(model, columns, rows, config.label_column, text)
        scores = score(model, features, truth, config.average)
    except HoldoutError as exc:
        return CheckStatus.FAIL, str(exc), []
    except Exception as exc:  # noqa: BLE001 - a model that cannot score its holdout set is a verdict
        return CheckStatus.FAIL, f"scoring the holdout set failed: {type(exc).__name__}: {exc}", []
    values = [
        MetricValue.from_raw(repr(v), name=k, original_name=f"holdout {k}", source="holdout", location=config.uri)
        for k, v in scores.items()
    ]
    summary = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
    return CheckStatus.PASS, f"{len(truth)} rows of {config.uri}: {summary}", values
