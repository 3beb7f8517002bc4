"""The gate's configuration: `cdk.json` context under one key, validated at synth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra.inspector_image import image_pair
from training_gate.domain.inputs import MAX_POLLS_LIMIT, POLL_INTERVAL_MAX, field_problems, polling_problems
from training_gate.domain.models import HoldoutConfig
from training_gate.domain.policy import Policy
from training_gate.domain.settings import InferenceConfig

CONTEXT_KEY = "training-gate"
REPO_ROOT = Path(__file__).resolve().parent.parent
_GROUP_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_KMS_KEY_ARN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]+$"


class ConfigError(ValueError):
    """The gate's cdk.json context is invalid; the message names every offending key."""


class JobTag(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(min_length=1, max_length=128)]
    value: Annotated[str, Field(max_length=256)]


class GateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_package_group: Annotated[str, Field(pattern=_GROUP_NAME)]
    additional_model_package_groups: list[Annotated[str, Field(pattern=_GROUP_NAME)]] = []
    policy: Policy
    poll_interval_seconds: Annotated[StrictInt, Field(ge=0, le=POLL_INTERVAL_MAX)] = 60
    max_polls: Annotated[StrictInt, Field(ge=1, le=MAX_POLLS_LIMIT)] = 720
    job_name_prefixes: list[Annotated[str, Field(min_length=1, max_length=63)]] = []
    notification_emails: list[Annotated[str, Field(pattern=_EMAIL)]] = []
    artifact_bucket_patterns: Annotated[
        list[Annotated[str, Field(min_length=3, max_length=63)]], Field(min_length=1)
    ] = ["sagemaker-*"]
    sample_input: Annotated[list[list[float]] | None, Field(min_length=1)] = None
    model_file: Annotated[str | None, Field(min_length=1)] = None
    extra_allowed_globals: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")]] = Field(
        default=[], description="exact module.Class names the loader may also admit; never a module prefix"
    )
    holdout: HoldoutConfig | None = None
    read_cloudwatch_metrics: bool = False
    inference: InferenceConfig = InferenceConfig()
    required_job_tag: JobTag | None = Field(default=None, description="gate only jobs carrying this tag")
    operations_emails: list[Annotated[str, Field(pattern=_EMAIL)]] = []
    kms_key_arn: Annotated[str | None, Field(pattern=_KMS_KEY_ARN)] = None
    operations_kms_key_arn: Annotated[
        str | None, Field(pattern=_KMS_KEY_ARN, description="the operations topic's own key; default: a stack key")
    ] = None
    artifact_kms_key_arns: list[Annotated[str, Field(pattern=_KMS_KEY_ARN)]] = Field(
        default=[], description="keys of SSE-KMS artifact buckets: the inspector and the collector may decrypt"
    )
    state_machine_log_level: Literal["ALL", "ERROR", "FATAL", "OFF"] = "ALL"
    report_retention_days: Annotated[int, Field(ge=1, le=3650)] = 365
    sklearn_version: Annotated[str, Field(pattern=r"^\d+\.\d+(\.\d+)?$")] = "1.4.2"
    inspector_python_version: Annotated[str | None, Field(pattern=r"^3\.\d+$")] = Field(
        default=None,
        validate_default=True,
        description="follows sklearn_version (infra/inspector_image.py); if set, it must be that Python",
    )
    inspector_memory_mb: Annotated[int, Field(ge=512, le=10_240)] = 2048
    inspector_timeout_seconds: Annotated[int, Field(ge=30, le=900)] = 300
    powertools_layer_version: Annotated[int, Field(ge=1)] = 27

    @property
    def model_package_groups(self) -> list[str]:
        """Every group the gate may register in: IAM grants exactly these."""
        return list(dict.fromkeys([self.model_package_group, *self.additional_model_package_groups]))

    @model_validator(mode="after")
    def _polling_fits(self) -> GateConfig:
        problems = polling_problems(self.poll_interval_seconds, self.max_polls)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("sklearn_version")
    @classmethod
    def _sklearn_version_has_an_image(cls, version: str) -> str:
        image_pair(version)
        return version

    @field_validator("inspector_python_version")
    @classmethod
    def _python_follows_sklearn(cls, python: str | None, info: ValidationInfo) -> str | None:
        # Not a free choice: each scikit-learn release has wheels for some Pythons only.
        sklearn_version = info.data.get("sklearn_version")
        if sklearn_version is None:
            return python  # sklearn_version itself failed and says why
        return image_pair(sklearn_version, python).python_version

    @field_validator("policy")
    @classmethod
    def _policy_group_is_allowed(cls, policy: Policy, info: ValidationInfo) -> Policy:
        group = policy.outcome.model_package_group
        allowed = [info.data.get("model_package_group"), *info.data.get("additional_model_package_groups", [])]
        if group and group not in allowed:
            raise ValueError(
                f"outcome.model_package_group {group!r} must be model_package_group or one of "
                "additional_model_package_groups"
            )
        return policy


def read_context(cdk_json: Path = REPO_ROOT / "cdk.json") -> dict[str, Any]:
    return json.loads(cdk_json.read_text()).get("context", {}).get(CONTEXT_KEY, {})


def load_config(raw: Any) -> GateConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"cdk.json context {CONTEXT_KEY!r} must be an object")
    try:
        return GateConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid gate configuration: {field_problems(exc, prefix=CONTEXT_KEY)}") from exc
