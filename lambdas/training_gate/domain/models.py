"""Data that crosses a function boundary: what each step of the gate returns.

Every model dumps to plain JSON (`model_dump(mode="json")`): Step Functions payloads are JSON and
a NaN or an infinity is not, so non-finite numbers travel as `None` plus their raw text.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
# How load words "a framework the gate judges, but this inspector image lacks its reader": skipped, like a
# framework the gate does not judge, naming the reader and the image.
READER_NOT_INSTALLED_DETAIL = "no reader in this image"


class CheckResult(BaseModel):
    """One named artifact check, with a sentence a person can act on."""

    name: str
    status: CheckStatus
    detail: str


class ArtifactInfo(BaseModel):
    uri: str
    sha256: str | None = None
    bytes: int | None = None


# The frameworks a policy may name (`framework_rules`, `required_frameworks`), as the inspector's plug-ins
# name them (`Framework.key`), and the formats each one's plug-in reports (`ModelInfo.format`). A framework
# the gate does not judge yet lists none: its plug-in adds them when it is judged. A test keeps this in step
# with the registry and the zoo.
FRAMEWORK_FORMATS: dict[str, tuple[str, ...]] = {
    "scikit-learn": ("pickle", "joblib", "joblib-compressed", "skops"),
    "xgboost": (
        "old-binary",
        "snapshot",
        "json",
        "ubjson",
        "json-snapshot",
        "ubjson-snapshot",
        *(
            f"{wrapper}{state}"
            for wrapper in ("pickle-", "sklearn-pickle-")
            for state in ("old-binary", "snapshot", "json-snapshot", "ubjson-snapshot")
        ),
    ),
    "lightgbm": ("text", "pickle", "sklearn-pickle"),
    "catboost": ("cbm", "pickle"),
    "onnx": ("onnx", "onnx-external-data"),
    "hugging-face": (
        "torch-zip",
        "torch-legacy",
        "safetensors",
        "sharded-safetensors",
        "sharded-torch",
        "tf-h5",
    ),
    "pytorch": (
        "torch-zip",
        "torch-legacy",
        "torch-tar",
        "torchscript",
        "safetensors",
        "sharded-safetensors",
        "sharded-torch",
    ),
    "keras": ("keras-v3", "keras-h5", "h5-weights"),
    "tensorflow": ("saved-model", "tf-checkpoint"),
    "mxnet": (),
    "pmml": (),
}


def framework_key(name: str | None) -> str | None:
    """A framework's name as policies spell it: "XGBoost" -> "xgboost", "Hugging Face" -> "hugging-face"."""
    return name.lower().replace(" ", "-") if name else None


# A model's detail values as reports and events carry them: plain JSON scalars (nested values as text).
DetailValue = str | int | float | bool | None
MODEL_DETAILS_MAX = 20
MODEL_DETAIL_TEXT_MAX = 300


class ModelInfo(BaseModel):
    """What the judged model is, as its framework's plug-in described it (`Framework.describe`): the
    framework, the format of its file, the library that read it and the version that wrote it. Any
    other key of the description is kept, bounded, under `details` (objective, features, classes...)."""

    model_config = ConfigDict(populate_by_name=True)

    class_name: str | None = Field(default=None, alias="class")
    sklearn_version: str | None = None
    framework: Annotated[str | None, Field(description="scikit-learn, xgboost, lightgbm, catboost, onnx...")] = None
    format: Annotated[str | None, Field(description="the file's format: joblib, old-binary, ubjson, text, cbm...")] = (
        None
    )
    reader: Annotated[str | None, Field(description="the library that loaded and predicted")] = None
    reader_version: str | None = None
    writer_version: Annotated[str | None, Field(description="the version that wrote the file, when it says")] = None
    bytes_validated: Annotated[
        bool | None, Field(description="False: no reader of the gate's own checked the bytes before the framework's")
    ] = None
    details: dict[str, DetailValue] = {}

    @model_validator(mode="before")
    @classmethod
    def _details(cls, data: Any) -> Any:
        """Keys of a plug-in's description that are not fields go to `details`, as bounded scalars."""
        if not isinstance(data, dict):
            return data
        known = {name for name in cls.model_fields} | {"class"}
        details = dict(data.get("details") or {})
        for key, value in data.items():
            if key not in known and len(details) < MODEL_DETAILS_MAX:
                details[str(key)[:64]] = _detail(value)
        kept = {key: value for key, value in data.items() if key in known}
        for key in ("writer_version", "reader_version", "format", "framework", "reader"):
            if kept.get(key) is not None and not isinstance(kept[key], str):
                kept[key] = str(kept[key])
        return {**kept, "details": details}

    def summary(self) -> str | None:
        """One line a person reads: what the model is, what wrote it, what read it."""
        if not self.framework:
            return None
        parts = [self.framework + (f" {self.format}" if self.format else "")]
        if self.class_name:
            parts.append(self.class_name)
        if self.writer_version:
            parts.append(f"written by {self.writer_version}")
        if self.reader:
            parts.append(f"read by {self.reader} {self.reader_version or ''}".rstrip())
        if self.bytes_validated is False:
            parts.append("its bytes were NOT validated by the gate before its reader")
        return ", ".join(parts)


def _detail(value: Any) -> DetailValue:
    if value is None or isinstance(value, (bool, int, float)):
        return value if not isinstance(value, float) or math.isfinite(value) else str(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:MODEL_DETAIL_TEXT_MAX]


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
        find_model found no file of a kind the gate loads (another framework's model: nothing to inspect),
        or the model's framework has no reader in this image; pass otherwise."""
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
        no_reader = any(
            c.name == "load" and c.status == CheckStatus.SKIPPED and c.detail.startswith(READER_NOT_INSTALLED_DETAIL)
            for c in checks
        )
        return "skip" if not_a_model or no_reader else "pass"

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
