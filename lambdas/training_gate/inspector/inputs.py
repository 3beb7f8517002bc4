"""Sample rows and holdout tables as the model needs them, inside the child.

A model fit on a DataFrame (it has `feature_names_in_`: a ColumnTransformer selecting columns by
name, a pipeline under `set_output(transform="pandas")`) gets a DataFrame with its columns, in its
order, whatever order the records came in. A text model (its first step a vectorizer: no
`n_features_in_`) gets one document per row. Anything else gets an array: floats when every cell is
a number, objects when strings are mixed in (encoders take those).
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np


class InputProblem(ValueError):
    """The sample or holdout rows cannot be given to this model; the message says why."""


def _feature_names(model: Any) -> list[str] | None:
    try:
        names = getattr(model, "feature_names_in_", None)
    except Exception:  # noqa: BLE001 - a property of foreign code: no names
        return None
    if names is None:
        return None
    return [str(n) for n in np.asarray(names).tolist()]


def _width(model: Any) -> int | None:
    try:
        width = getattr(model, "n_features_in_", None)
    except Exception:  # noqa: BLE001 - a pipeline whose first step has no width (a text vectorizer)
        return None
    if isinstance(width, (int, np.integer)) and not isinstance(width, bool):
        return int(width)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _column(values: list[Any]) -> list[Any]:
    """A column of CSV text as numbers when every non-empty cell is one (missing cells become NaN)."""
    if not all(isinstance(v, str) for v in values):
        return values
    try:
        return [float(v) if v.strip() else math.nan for v in values]
    except ValueError:
        return values


def _frame(columns: list[str], rows: list[list[Any]]) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise InputProblem("the model was fit on a DataFrame and pandas is not installed in the inspector") from exc
    return pd.DataFrame(rows, columns=columns)


def _array(rows: list[list[Any]]) -> np.ndarray:
    if all(_is_number(v) for row in rows for v in row):
        return np.asarray(rows, dtype=float)
    return np.asarray(rows, dtype=object)


def table_input(model: Any, columns: list[str], rows: list[list[Any]]) -> Any:
    """Rows with column names (records, CSV with a header, a holdout table) as this model's input."""
    names = _feature_names(model)
    by_column = {name: _column([row[i] for row in rows]) for i, name in enumerate(columns)}
    if names is not None:
        missing = [n for n in names if n not in by_column]
        if missing:
            raise InputProblem(
                f"the rows lack column(s) {', '.join(missing)} the model was fit on (it has: {', '.join(names)})"
            )
        return _frame(names, [list(values) for values in zip(*(by_column[n] for n in names), strict=True)])
    if _width(model) is None and len(columns) == 1:
        return np.asarray(by_column[columns[0]], dtype=object)  # documents for a text model
    return _array([list(values) for values in zip(*(by_column[c] for c in columns), strict=True)])


def rows_input(model: Any, rows: list[list[Any]]) -> Any:
    """Rows without column names: named by the model's own columns where it was fit on a DataFrame."""
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise InputProblem(f"rows of different widths: {sorted(widths)}")
    width = widths.pop()
    names = _feature_names(model)
    if names is not None and len(names) == width:
        return _frame(names, rows)
    if _width(model) is None and width == 1:
        return np.asarray([row[0] for row in rows], dtype=object)
    return _array(rows)


def documents_input(model: Any, documents: list[str]) -> Any:
    names = _feature_names(model)
    if names is not None and len(names) == 1:
        return _frame(names, [[d] for d in documents])
    if _width(model) in (None, 1) and names is None:
        return np.asarray(documents, dtype=object)
    return rows_input(model, [[d] for d in documents])


def _csv_table(text: str) -> tuple[list[str], list[list[Any]]]:
    table = list(csv.reader(io.StringIO(text)))
    if len(table) < 2:
        raise InputProblem("CSV sample input needs a header row and at least one row")
    return table[0], table[1:]


def _records_table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    columns = list(dict.fromkeys(key for record in records for key in record))
    return columns, [[record.get(c) for c in columns] for record in records]


def sample_input(model: Any, sample: Any) -> tuple[Any, int]:
    """The configured sample as model input, and its number of rows."""
    if isinstance(sample, dict):
        columns, rows = _csv_table(sample["csv"])
        return table_input(model, columns, rows), len(rows)
    if all(isinstance(item, dict) for item in sample):
        columns, rows = _records_table(sample)
        return table_input(model, columns, rows), len(rows)
    if all(isinstance(item, str) for item in sample):
        return documents_input(model, sample), len(sample)
    if not all(isinstance(item, list) for item in sample):
        raise InputProblem("rows, records and documents cannot be mixed")
    return rows_input(model, sample), len(sample)


def derived_input(model: Any, width: int) -> Any:
    """One row of zeros, named by the model's columns where it was fit on a DataFrame."""
    names = _feature_names(model)
    if names is not None and len(names) == width:
        return _frame(names, [[0.0] * width])
    return np.zeros((1, width))


def non_finite(value: Any) -> bool:
    """Whether numeric sample cells hold NaN or infinity (strings and missing text cells aside)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fiu":
            return not bool(np.all(np.isfinite(value)))
        return any(_is_number(v) and not math.isfinite(float(v)) for v in value.ravel())
    try:
        numeric = value.select_dtypes(include="number")
    except AttributeError:
        return False
    return not bool(np.all(np.isfinite(numeric.to_numpy(dtype=float))))
