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
from infra.patterns import EVENT_PATTERN_QUOTA_DEFAULT, EVENT_PATTERN_QUOTA_MAX, pattern_problems
from training_gate.constants import DEFAULT_JOB_TAG_KEY, DEFAULT_JOB_TAG_VALUE, TUNING_CANDIDATES_MAX
from training_gate.domain.inputs import MAX_POLLS_LIMIT, POLL_INTERVAL_MAX, field_problems, polling_problems
from training_gate.domain.models import HoldoutConfig
from training_gate.domain.policy import Policy
from training_gate.domain.settings import InferenceConfig, InspectionLimits, SampleInput

CONTEXT_KEY = "training-gate"
INSPECTOR_EPHEMERAL_STORAGE_DEFAULT_MB = 4608
REPO_ROOT = Path(__file__).resolve().parent.parent
_GROUP_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_KMS_KEY_ARN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]+$"
_LAYER_VERSION_ARN = r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]{1,140}:[1-9]\d*$"
_PARAMETER_PREFIX = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/$"


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
    sample_input: SampleInput | None = None
    model_file: Annotated[str | None, Field(min_length=1)] = None
    extra_allowed_globals: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")]] = Field(
        default=[], description="exact module.Class names the loader may also admit; never a module prefix"
    )
    holdout: HoldoutConfig | None = None
    read_cloudwatch_metrics: bool = False
    inference: InferenceConfig = InferenceConfig()
    required_job_tag: JobTag | None = Field(
        default=None,
        description="gate only jobs carrying this tag; when neither it nor job_name_prefixes is set, "
        "the default tag training-gate=enabled applies (see job_tag)",
    )
    gate_all_jobs: bool = Field(
        default=False, description="gate every training job of the account and region, tagged or not"
    )
    tuning_candidates: Annotated[StrictInt, Field(ge=1, le=TUNING_CANDIDATES_MAX)] = Field(
        default=1,
        description="a tuning job's completed training jobs judged, best first, until one passes (1: the best only)",
    )
    gate_tuning_children: bool = Field(
        default=False,
        description="judge each training job a tuning job launches on its own, beside the tuning job's decision",
    )
    fail_step_on_reject: bool = Field(
        default=False,
        description="a SageMaker pipeline's CallbackStep fails on reject, inconclusive or skipped; by default it "
        "succeeds with decision=reject (or inconclusive, skipped) so a ConditionStep can branch",
    )
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
    # The inspector's work space (/tmp): the files of an artifact it unpacks and the holdout set are written
    # there. Lambda accepts 512 to 10,240 MB (https://docs.aws.amazon.com/lambda/latest/api/API_EphemeralStorage.html);
    # the default holds an artifact as large as the default max_total_bytes (4 GiB unpacked).
    inspector_ephemeral_storage_mb: Annotated[StrictInt, Field(ge=512, le=10_240)] = Field(
        default=INSPECTOR_EPHEMERAL_STORAGE_DEFAULT_MB,
        description="the inspector function's ephemeral storage (/tmp), its work space; an artifact that does not "
        "fit it is a gate error for operations, not a rejection",
    )
    inspection: InspectionLimits = Field(
        default_factory=InspectionLimits, description="the inspector's limits, raised when a legitimate model needs it"
    )
    inspector_timeout_seconds: Annotated[int, Field(ge=30, le=900)] = 300
    powertools_layer_arn: Annotated[str | None, Field(pattern=_LAYER_VERSION_ARN)] = Field(
        default=None,
        description="a pinned Powertools layer version ARN; default: the public SSM parameter's latest",
    )
    powertools_layer_version: Annotated[int | None, Field(ge=1)] = Field(
        default=None,
        description="the version number of the published Powertools layer, in the publisher's account of the "
        "stack's partition and region (infra/powertools.py); default: the version this release pins",
    )
    event_pattern_quota: Annotated[StrictInt, Field(ge=EVENT_PATTERN_QUOTA_DEFAULT, le=EVENT_PATTERN_QUOTA_MAX)] = (
        Field(
            default=EVENT_PATTERN_QUOTA_DEFAULT,
            description="the account's EventBridge event pattern size quota, if raised; the start rules must fit it",
        )
    )
    policy_parameter_prefix: Annotated[str | None, Field(pattern=_PARAMETER_PREFIX, max_length=900)] = Field(
        default=None,
        description="where the per-group policies are stored (<prefix><group>); default: derived from the stack "
        "name (infra/names.py)",
    )

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

    @property
    def job_tag(self) -> JobTag | None:
        """The tag the start rule requires. Opt-in by default: with no scope configured, only jobs tagged
        training-gate=enabled are judged; job_name_prefixes alone is a scope of its own (users who set it
        before the tag default existed keep exactly the jobs they gated)."""
        if self.gate_all_jobs:
            return None
        if "required_job_tag" in self.model_fields_set or self.job_name_prefixes:
            return self.required_job_tag
        return JobTag(key=DEFAULT_JOB_TAG_KEY, value=DEFAULT_JOB_TAG_VALUE)

    @property
    def job_tag_pair(self) -> tuple[str, str] | None:
        tag = self.job_tag
        return (tag.key, tag.value) if tag else None

    @model_validator(mode="after")
    def _start_rules_fit_eventbridge(self) -> GateConfig:
        problems = pattern_problems(self.job_name_prefixes, self.job_tag_pair, self.event_pattern_quota)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def default_tag_scope(self) -> bool:
        """Only the default tag decides which jobs are judged: what a deployment that gated every job
        before this default existed silently becomes on upgrade."""
        return not self.gate_all_jobs and not self.job_name_prefixes and "required_job_tag" not in self.model_fields_set

    @model_validator(mode="after")
    def _scope_is_explicit(self) -> GateConfig:
        if self.gate_all_jobs and (self.required_job_tag or self.job_name_prefixes):
            raise ValueError(
                "gate_all_jobs: true gates every job; it cannot be combined with required_job_tag or "
                "job_name_prefixes (remove one)"
            )
        if not self.gate_all_jobs and self.job_tag is None and not self.job_name_prefixes:
            raise ValueError(
                "required_job_tag: null with no job_name_prefixes would gate every job; say so with gate_all_jobs: true"
            )
        return self

    @model_validator(mode="after")
    def _one_powertools_pin(self) -> GateConfig:
        if self.powertools_layer_arn and self.powertools_layer_version is not None:
            raise ValueError(
                "set powertools_layer_arn (a pinned layer version ARN) or the older powertools_layer_version, "
                "not both; powertools_layer_arn replaces powertools_layer_version"
            )
        return self

    @field_validator("policy_parameter_prefix")
    @classmethod
    def _prefix_leaves_a_level_for_the_group(cls, prefix: str | None) -> str | None:
        # SSM allows 15 levels in a parameter name; <prefix><group> adds the group's.
        if prefix is not None and prefix.count("/") - 1 > 14:
            raise ValueError("at most 14 levels: SSM parameter names have at most 15, and the group adds one")
        return prefix

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


def read_context(cdk_json: Path = REPO_ROOT / "cdk.json", key: str = CONTEXT_KEY) -> dict[str, Any]:
    return json.loads(cdk_json.read_text()).get("context", {}).get(key, {})


def load_config(raw: Any) -> GateConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"cdk.json context {CONTEXT_KEY!r} must be an object")
    try:
        return GateConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid gate configuration: {field_problems(exc, prefix=CONTEXT_KEY)}") from exc
