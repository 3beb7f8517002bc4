"""Configuration models shared by the CDK app (validated at synth) and the functions (parsed from
their environment): one definition each."""

from __future__ import annotations

import csv
import io
import math
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
)
from typing_extensions import TypedDict

# The settings too large for a function's environment live in one JSON document the stack deploys (an S3
# object of variable name -> value): these two variables name it and its sha256 (infra/settings.py).
SETTINGS_VARIABLE = "GATE_SETTINGS"
SETTINGS_SHA256_VARIABLE = "GATE_SETTINGS_SHA256"


class InferenceConfig(BaseModel):
    """What a registered package declares about serving it (its InferenceSpecification)."""

    model_config = ConfigDict(extra="forbid")

    image: Annotated[str | None, Field(min_length=1)] = Field(default=None, description="default: the training image")
    content_types: Annotated[list[str], Field(min_length=1)] = ["text/csv"]
    response_types: Annotated[list[str], Field(min_length=1)] = ["text/csv"]
    realtime_instance_types: list[Annotated[str, Field(pattern=r"^ml\.")]] = ["ml.m5.large"]
    transform_instance_types: list[Annotated[str, Field(pattern=r"^ml\.")]] = ["ml.m5.large"]


class InspectionLimits(BaseModel):
    """The inspector's limits a deployment may raise (cdk.json `inspection`). A rejection for a breached
    limit names its key here: a legitimate model can be large or slow. Unset: the inspector's defaults."""

    model_config = ConfigDict(extra="forbid")

    memory_limit_mib: Annotated[int | None, Field(ge=128)] = None
    time_limit_s: Annotated[float | None, Field(gt=0, le=900)] = None
    max_members: Annotated[int | None, Field(ge=1)] = None
    max_member_bytes: Annotated[int | None, Field(ge=1)] = None
    max_total_bytes: Annotated[int | None, Field(ge=1)] = None
    max_ratio: Annotated[int | None, Field(ge=1)] = None
    # Budgets per phase, each named by the rejection that breaches it.
    unpack_time_s: Annotated[float | None, Field(gt=0, le=900)] = None
    load_time_s: Annotated[float | None, Field(gt=0, le=900)] = None
    load_time_s_per_mib: Annotated[float | None, Field(ge=0)] = None
    smoke_time_s: Annotated[float | None, Field(gt=0, le=900)] = None
    reference_time_s: Annotated[float | None, Field(gt=0, le=900)] = None
    holdout_time_s: Annotated[float | None, Field(gt=0, le=900)] = None
    prediction_time_s_per_1k_rows: Annotated[float | None, Field(ge=0, le=900)] = None
    max_reference_rows: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    max_container_entries: Annotated[int | None, Field(ge=1)] = None
    # ONNX operator domains beyond the ones onnxruntime implements (custom operators your runtime registers).
    onnx_domains: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]] | None = None


# -- sample input -------------------------------------------------------------------------------------------

# One cell of a sample row: numbers, strings, booleans and missing values (null), as JSON gives them. JSON has
# no NaN or infinity; a missing value is null.
SampleCell = (
    StrictBool
    | StrictInt
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | Annotated[StrictStr, Field(max_length=100_000)]
    | None
)
SAMPLE_ROWS_MAX = 10_000
CSV_COLUMN_TYPES = ("string", "number")


class CsvSample(TypedDict):
    """Rows as CSV text whose first line is the header (the column names), and the type of any column the
    user names (see `csv_rows`; the inspector types the others as the model was fit, see inputs.py)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    csv: Annotated[str, Field(min_length=1, max_length=16 << 20)]
    types: NotRequired[dict[str, Literal["string", "number"]]]


def csv_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """A CSV sample's header and rows, as the inspector reads them, or ValueError saying what is wrong with
    it: a header of distinct, non-empty names and at least one row, every row as wide as the header. Blank
    lines are skipped, as pandas skips them."""
    try:
        table = [row for row in csv.reader(io.StringIO(text), strict=True) if row]
    except csv.Error as exc:
        raise ValueError(f"the CSV sample cannot be read: {exc}") from exc
    if len(table) < 2:
        raise ValueError("the CSV sample needs a header line and at least one row")
    header, rows = table[0], table[1:]
    unnamed = [number for number, name in enumerate(header, start=1) if not name.strip()]
    if unnamed:
        raise ValueError(f"the CSV sample's header names no column at position(s) {unnamed}")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise ValueError(f"the CSV sample's header names column(s) {twice} twice")
    for number, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise ValueError(
                f"row {number} of the CSV sample has {len(row)} cell(s), its header names {len(header)} column(s)"
            )
    return header, rows


def number_of(cell: str) -> float | None:
    """A CSV cell as a number (NaN when empty or "nan": missing), or None when it is not one."""
    if not cell.strip():
        return math.nan
    try:
        return float(cell)
    except ValueError:
        return None


def _check_csv(sample: CsvSample) -> CsvSample:
    header, rows = csv_rows(sample["csv"])
    types = sample.get("types", {})
    unknown = sorted(set(types) - set(header))
    if unknown:
        raise ValueError(f"the CSV sample's types name column(s) {unknown} its header does not have")
    for index, name in enumerate(header):
        for number, row in enumerate(rows, start=1):
            value = number_of(row[index])
            if value is not None and math.isinf(value):
                raise ValueError(f"row {number} of the CSV sample holds an infinite number in column {name!r}")
            if value is None and types.get(name) == "number":
                raise ValueError(f"row {number} of the CSV sample holds {row[index]!r} in number column {name!r}")
    return sample


def _same_width(rows: list[list[Any]]) -> list[list[Any]]:
    widths = sorted({len(row) for row in rows})
    if len(widths) != 1:
        raise ValueError(f"the sample's rows must be equally wide; they have {widths} cells")
    if widths[0] == 0:
        raise ValueError("the sample's rows hold no cell")
    return rows


def _named(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not any(records):
        raise ValueError("the sample's records name no column")
    if any(not key.strip() for record in records for key in record):
        raise ValueError("the sample's records name a column with an empty name")
    return records


# The rows the smoke prediction runs on, in the shapes real models need: rows of cells (numbers, strings,
# mixed), records with column names (JSON objects), CSV with a header, or documents (one string each, for
# text models). The inspector turns them into a DataFrame where the model was fit on one. Validated here,
# once, so a mistake in the sample is the configuration's, named at synth, never a model's failed check; the
# value stays plain JSON, so configuration plumbing can carry it as it is.
def _shape(value: Any) -> str:
    """Which shape a sample is, so a mistake is reported against that shape alone."""
    if isinstance(value, dict):
        return "csv"
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return "records"
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return "documents"
    return "rows"


SampleInput = Annotated[
    Annotated[
        list[list[SampleCell]],
        Field(min_length=1, max_length=SAMPLE_ROWS_MAX),
        AfterValidator(_same_width),
        Tag("rows"),
    ]
    | Annotated[
        list[dict[str, SampleCell]],
        Field(min_length=1, max_length=SAMPLE_ROWS_MAX),
        AfterValidator(_named),
        Tag("records"),
    ]
    | Annotated[
        list[Annotated[StrictStr, Field(max_length=100_000)]],
        Field(min_length=1, max_length=SAMPLE_ROWS_MAX),
        Tag("documents"),
    ]
    | Annotated[CsvSample, AfterValidator(_check_csv), Tag("csv")],
    Discriminator(_shape),
    Field(description="rows, records with column names, {'csv': text with a header}, or documents"),
]
