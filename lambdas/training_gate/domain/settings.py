"""Configuration models shared by the CDK app (validated at synth) and the functions (parsed from
their environment): one definition each."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
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
    # ONNX operator domains beyond the ones onnxruntime implements (custom operators your runtime registers).
    onnx_domains: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]] | None = None


# -- sample input -------------------------------------------------------------------------------------------

# One cell of a sample row: numbers, strings, booleans and missing values, as JSON gives them.
SampleCell = StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, Field(max_length=100_000)] | None
SAMPLE_ROWS_MAX = 10_000


class CsvSample(TypedDict):
    """Rows as CSV text whose first line is the header (the column names)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    csv: Annotated[str, Field(min_length=1, max_length=16 << 20)]


# The rows the smoke prediction runs on, in the shapes real models need: rows of cells (numbers, strings,
# mixed), records with column names (JSON objects), CSV with a header, or documents (one string each, for
# text models). The inspector turns them into a DataFrame where the model was fit on one. Validated here,
# once; the value stays plain JSON, so configuration plumbing can carry it as it is.
SampleInput = Annotated[
    Annotated[list[list[SampleCell]], Field(min_length=1, max_length=SAMPLE_ROWS_MAX)]
    | Annotated[list[dict[str, SampleCell]], Field(min_length=1, max_length=SAMPLE_ROWS_MAX)]
    | Annotated[list[Annotated[StrictStr, Field(max_length=100_000)]], Field(min_length=1, max_length=SAMPLE_ROWS_MAX)]
    | CsvSample,
    Field(description="rows, records with column names, {'csv': text with a header}, or documents"),
]
