"""Sample rows and holdout tables as the model needs them, inside the child.

A model fit on a DataFrame (it has `feature_names_in_`: a ColumnTransformer selecting columns by
name, a pipeline under `set_output(transform="pandas")`) gets a DataFrame with its columns, in its
order, whatever order the records came in. A text model (its first step a vectorizer: no
`n_features_in_`) gets one document per row. Anything else gets an array: floats when every cell is
a number, objects when strings are mixed in (encoders take those).

Cells keep the types they were given: JSON says what is a string ("75001") and what is a number, and
`null` is a missing value (NaN among numbers). CSV cells are text, so each column is typed, in this
order: as the sample's `types` says (`{"csv": ..., "types": {"zip": "string"}}`); else as the model was
fit where its fitted state says it (an encoder's categories, a most-frequent imputer's statistics:
strings or numbers); else as pandas would read it: numbers when every non-empty cell is one, text
otherwise. An empty cell is a missing value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from training_gate.domain.settings import csv_rows, number_of


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


def _numbers(values: list[Any]) -> list[Any] | None:
    """A JSON column as floats when every cell is a number or null (NaN), else None."""
    if all(v is None or _is_number(v) for v in values) and any(v is not None for v in values):
        return [math.nan if v is None else v for v in values]
    return None


def _text_column(values: list[str], kind: str | None) -> list[Any]:
    """A column of CSV text, typed as `kind` says ("str" or "number"), or numeric when every non-empty cell
    is a number and nothing says otherwise; missing cells are NaN."""
    if kind == "str":
        return [v if v != "" else math.nan for v in values]
    numbers = [number_of(v) for v in values]
    if any(n is None for n in numbers):
        return values
    return numbers


def _typed_column(values: list[Any], kind: str | None, text: bool) -> list[Any]:
    if text:
        return _text_column(values, kind)
    if kind == "str":
        return values
    numbers = _numbers(values)
    return numbers if numbers is not None else values


# How deep the fitted state is searched for what each column was fit as.
_FITTED_DEPTH = 6


def fitted_kinds(model: Any) -> dict[str, str]:
    """Column name -> "str" or "number", as the model's fitted state says it was fit: the categories an
    encoder (OneHotEncoder, OrdinalEncoder, TargetEncoder) learned for the column, or a most-frequent
    imputer's statistics, inside pipelines, column transformers and feature unions. A column the model
    says nothing about is absent."""
    kinds: dict[str, str] = {}
    _walk_fitted(model, _feature_names(model), kinds, 0)
    return kinds


def _kind_of(values: Any) -> str | None:
    array = np.asarray(values)
    if array.dtype.kind in "OUS":
        cells = [v for v in array.ravel().tolist() if not (isinstance(v, float) and math.isnan(v)) and v is not None]
        if cells and all(isinstance(v, str) for v in cells):
            return "str"
        return None
    return "number" if array.dtype.kind in "biuf" else None


def _walk_fitted(step: Any, columns: list[str] | None, kinds: dict[str, str], depth: int) -> None:
    if depth > _FITTED_DEPTH or step is None or isinstance(step, str):
        return
    try:
        names = _feature_names(step) or columns
        steps = getattr(step, "steps", None)
        if isinstance(steps, list) and steps:  # a Pipeline: its first step sees the columns
            _walk_fitted(steps[0][1], names, kinds, depth + 1)
            return
        transformers = getattr(step, "transformers_", None)
        if isinstance(transformers, list):  # a ColumnTransformer: each part sees its own columns
            for part in transformers:
                if len(part) < 3:
                    continue
                selected = _selected(part[2], names)
                _walk_fitted(part[1], selected, kinds, depth + 1)
            return
        union = getattr(step, "transformer_list", None)
        if isinstance(union, list):
            for part in union:
                _walk_fitted(part[1] if len(part) > 1 else None, names, kinds, depth + 1)
            return
        inner = getattr(step, "_preprocessor", None)  # HistGradientBoosting's categorical encoder
        if inner is not None:
            _walk_fitted(inner, names, kinds, depth + 1)
        learned = getattr(step, "categories_", None)
        if learned is None and getattr(step, "strategy", None) == "most_frequent":
            learned = getattr(step, "statistics_", None)
        if learned is not None and names is not None:
            for name, values in zip(names, list(learned), strict=False):
                kind = _kind_of(values if np.ndim(values) else [values])
                if kind is not None:
                    kinds.setdefault(name, kind)
    except Exception:  # noqa: BLE001 - foreign state read as data: what cannot be read says nothing
        return


def _selected(columns: Any, names: list[str] | None) -> list[str] | None:
    """The column names a ColumnTransformer part selected (by name, position or mask)."""
    if isinstance(columns, str):
        return [columns]
    try:
        selected = list(np.asarray(columns).ravel().tolist())
    except Exception:  # noqa: BLE001 - a callable selector, resolved at fit: unknown here
        return None
    if all(isinstance(c, str) for c in selected):
        return selected
    if names is None:
        return None
    if all(isinstance(c, bool) for c in selected) and len(selected) == len(names):
        return [n for n, keep in zip(names, selected, strict=True) if keep]
    if all(isinstance(c, int) and not isinstance(c, bool) and -len(names) <= c < len(names) for c in selected):
        return [names[c] for c in selected]
    return None


def _frame(columns: list[str], rows: list[list[Any]]) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise InputProblem("the model was fit on a DataFrame and pandas is not installed in the inspector") from exc
    return pd.DataFrame(rows, columns=columns)


def _array(rows: list[list[Any]]) -> np.ndarray:
    cells = [v for row in rows for v in row]
    if all(v is None or _is_number(v) for v in cells) and any(v is not None for v in cells):
        return np.asarray([[math.nan if v is None else v for v in row] for row in rows], dtype=float)
    return np.asarray(rows, dtype=object)


def table_input(
    model: Any, columns: list[str], rows: list[list[Any]], text: bool = False, types: dict[str, str] | None = None
) -> Any:
    """Rows with column names (records, CSV with a header, a holdout table) as this model's input.
    `text`: the cells are CSV text, typed here as `types` says, else as the model was fit."""
    names = _feature_names(model)
    kinds = {**fitted_kinds(model), **{c: _KINDS[t] for c, t in (types or {}).items()}}
    by_column = {name: _typed_column([row[i] for row in rows], kinds.get(name), text) for i, name in enumerate(columns)}
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
        return table_input(model, names, rows)
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


# A CSV sample's `types`, as the kinds the model's fitted state is read as.
_KINDS = {"string": "str", "number": "number"}


def csv_table(text: str) -> tuple[list[str], list[list[Any]]]:
    """A header and its rows, read as the configuration was checked at synth (domain.settings.csv_rows)."""
    try:
        header, rows = csv_rows(text)
    except ValueError as exc:
        raise InputProblem(str(exc)) from exc
    return header, list(rows)


def _records_table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    columns = list(dict.fromkeys(key for record in records for key in record))
    return columns, [[record.get(c) for c in columns] for record in records]


def sample_input(model: Any, sample: Any) -> tuple[Any, int]:
    """The configured sample as model input, and its number of rows."""
    if isinstance(sample, dict):
        columns, rows = csv_table(sample["csv"])
        return table_input(model, columns, rows, text=True, types=sample.get("types")), len(rows)
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


def infinite(value: Any) -> bool:
    """Whether numeric sample cells hold an infinity (a missing value, NaN, is the sample's to give)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fiu":
            return bool(np.any(np.isinf(value)))
        return any(_is_number(v) and math.isinf(float(v)) for v in value.ravel())
    try:
        numeric = value.select_dtypes(include="number")
    except AttributeError:
        return False
    return bool(np.any(np.isinf(numeric.to_numpy(dtype=float))))
