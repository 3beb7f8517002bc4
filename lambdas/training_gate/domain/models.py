"""Data that crosses a function boundary: what each step of the gate returns.

Every model dumps to plain JSON (`model_dump(mode="json")`): Step Functions payloads are JSON and
a NaN or an infinity is not, so non-finite numbers travel as `None` plus their raw text.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIPPED = "skipped"
    # The gate cannot vouch for the model either way (code that runs when it loads): a person must look.
    INCONCLUSIVE = "inconclusive"


# How find_model words "no file of a kind the gate loads": the check is skipped, not failed.
NOT_A_SKLEARN_MODEL_DETAIL = "no scikit-learn model"
# How find_model words "no model file of any kind" (and the job is no built-in algorithm): a rejection
# for the owners, whose training saved nothing usable.
NO_MODEL_FOUND_DETAIL = "no model file of any kind"
# How smoke_prediction words "this format is judged by its bytes; its code never runs in the gate".
NO_SMOKE_PREDICTION_DETAIL = "not run: the model's code never runs in the gate"


class CheckResult(BaseModel):
    """One named artifact check, with a sentence a person can act on."""

    name: str
    status: CheckStatus
    detail: str


class ArtifactInfo(BaseModel):
    uri: str
    sha256: str | None = None
    bytes: int | None = None


# Bounds on what a model description carries through the workflow's states (256 KiB each).
MODEL_FILES_MAX = 20
MODEL_NAME_MAX = 200
_ALWAYS = ("class", "class_name", "sklearn_version")


def _bounded_names(names: list[str]) -> list[str]:
    return [name[:MODEL_NAME_MAX] for name in names[:MODEL_FILES_MAX]]


class ModelInfo(BaseModel):
    """What the inspection found the model to be. A scikit-learn model: its class and the version that
    pickled it. A checkpoint (judged by its bytes, never run): its framework, format and numbers."""

    model_config = ConfigDict(populate_by_name=True)

    class_name: str | None = Field(default=None, alias="class")
    sklearn_version: str | None = None
    framework: Annotated[str | None, Field(description="pytorch, hugging-face, tensorflow, keras")] = None
    format: Annotated[str | None, Field(description="torch-zip, safetensors, saved-model, keras-v3, ...")] = None
    format_name: str | None = None
    writer_version: str | None = None
    tensors: int | None = None
    parameters: int | None = None
    dtypes: Annotated[dict[str, int], Field(description="parameters per element type")] = {}
    tensor_bytes: int | None = None
    files_read: Annotated[list[str], AfterValidator(_bounded_names)] = []
    serving_code: Annotated[
        list[str], AfterValidator(_bounded_names), Field(description="inference code shipped beside the model")
    ] = []
    smoke_prediction: str | None = None

    @model_serializer(mode="wrap")
    def _without_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A scikit-learn model's description stays the two fields it always had; a checkpoint's adds
        only what its reader found."""
        data = handler(self)
        return {k: v for k, v in data.items() if k in _ALWAYS or v not in (None, [], {})}

    def summary(self) -> dict[str, str]:
        """The model in a few short fields, for the decision event and the model package's metadata."""
        fields = {
            "framework": self.framework,
            "format": self.format,
            "class": self.class_name,
            "sklearn_version": self.sklearn_version,
            "parameters": None if self.parameters is None else str(self.parameters),
            "dtypes": " ".join(f"{name}={count}" for name, count in self.dtypes.items()) or None,
            "bytes": None if self.tensor_bytes is None else str(self.tensor_bytes),
        }
        return {key: value for key, value in fields.items() if value}


class MetricValue(BaseModel):
    """A metric as found in one place, with where it came from."""

    name: Annotated[str, Field(description="canonical name, e.g. accuracy")]
    original_name: str
    value: Annotated[float | None, Field(description="None when the capture is not a finite number")]
    raw: str
    source: Annotated[
        Literal[
            "final_metric", "tuning_objective", "log", "log-default", "cloudwatch_metric", "evaluation_file", "holdout"
        ],
        Field(
            description="log-default: read by the gate's default patterns, not by the job's definitions; "
            "tuning_objective: the objective its tuning job recorded for it"
        ),
    ]
    host: str | None = None
    location: Annotated[str | None, Field(description="file the value was read from")] = None
    matches: int = 1

    @classmethod
    def from_raw(cls, raw: str, **kwargs: object) -> MetricValue:
        return cls(value=parse_finite(raw), raw=raw, **kwargs)  # type: ignore[arg-type]


def parse_finite(raw: str) -> float | None:
    """The float a capture stands for, or None when it is not a finite number (nan, inf, text)."""
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class RecognisedFile(BaseModel):
    file: str
    framework: str
    role: Annotated[str, Field(description="model, auxiliary (read, never judged) or refused")]
    evidence: str


class Recognition(BaseModel):
    """What the artifact is: the framework its files' content says, the file judged and the rule that chose it."""

    framework: str | None = None
    judged: bool = False
    model_file: str | None = None
    rule: str = ""
    files: Annotated[list[RecognisedFile], Field(description="at most 20, the model candidates first")] = []


class Protection(BaseModel):
    """One of the inspection child's protections, and whether it held where the inspection ran."""

    name: str
    status: Literal["in force", "not available"]
    detail: str


TORCHSCRIPT = "TORCHSCRIPT"


class Finding(BaseModel):
    """A fact the inspection reports and the policy weighs (`artifact_checks`): the check it belongs to,
    and a stable code: TORCHSCRIPT (code runs when the model loads), REMOTE_CODE (Hugging Face auto_map),
    INFINITE_VALUES (an infinity in a tensor), NO_SMOKE_PREDICTION (the format is never run by the gate)."""

    code: Literal["TORCHSCRIPT", "REMOTE_CODE", "INFINITE_VALUES", "NO_SMOKE_PREDICTION"]
    check: str
    detail: str


class InspectionResult(BaseModel):
    # skip: the artifact holds no model file of a kind the gate loads; nothing was inspected.
    # inconclusive: nothing failed, but a check could not vouch for the model (its code runs at load).
    verdict: Literal["pass", "reject", "skip", "inconclusive"]
    checks: list[CheckResult]
    artifact: ArtifactInfo
    model: ModelInfo = ModelInfo()
    metrics: list[MetricValue] = []
    recognition: Recognition | None = None
    protections: list[Protection] = []
    findings: list[Finding] = []

    @staticmethod
    def verdict_of(
        checks: list[CheckResult], findings: list[Finding] | tuple[Finding, ...] = ()
    ) -> Literal["pass", "reject", "skip", "inconclusive"]:
        """reject on any failed check; inconclusive on any inconclusive check or TorchScript (the default
        policy's reading of it: code that runs when the model loads); skip when nothing failed and
        find_model found no file of a kind the gate loads (another framework's model: nothing to inspect);
        pass otherwise."""
        if any(c.status == CheckStatus.FAIL for c in checks):
            return "reject"
        if any(c.status == CheckStatus.INCONCLUSIVE for c in checks) or any(f.code == TORCHSCRIPT for f in findings):
            return "inconclusive"
        not_a_model = any(
            c.name == "find_model"
            and c.status == CheckStatus.SKIPPED
            and c.detail.startswith(NOT_A_SKLEARN_MODEL_DETAIL)
            for c in checks
        )
        return "skip" if not_a_model else "pass"

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == CheckStatus.FAIL]


class HoldoutConfig(BaseModel):
    """A labelled holdout set the gate scores the loaded model on (CSV with a header, or Parquet)."""

    model_config = ConfigDict(extra="forbid")

    uri: Annotated[str, Field(pattern=r"^(s3://[^/]+/.+|[^:]+)$")]
    label_column: Annotated[str, Field(min_length=1)]
    average: Literal["macro", "weighted", "micro"] = "macro"
    max_bytes: Annotated[int, Field(ge=1)] = 256 << 20


class MetricsResult(BaseModel):
    metrics: dict[str, MetricValue]
    details: list[MetricValue]
    warnings: list[str] = []
    disagreements: list[str] = Field(default=[], description="metrics whose sources disagree")
    log_streams: int = 0
    ambiguous: dict[str, list[str]] = Field(
        default={}, description="canonical name -> original names of the same rank that give different values"
    )
    unavailable: dict[str, str] = Field(
        default={}, description="canonical name -> why the job's definition of it can record no data"
    )
