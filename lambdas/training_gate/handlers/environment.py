"""Each function's environment, parsed into one typed model (the variables infra/ sets)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Json

from training_gate.constants import POLICY_PARAMETER_PREFIX, TRAINING_LOG_GROUP
from training_gate.domain.policy import Policy
from training_gate.domain.settings import InferenceConfig

Settings = TypeVar("Settings", bound=BaseModel)


def _comma_list(value: object) -> object:
    return [v for v in value.split(",") if v] if isinstance(value, str) else value


CommaList = Annotated[list[str], BeforeValidator(_comma_list)]


class _Environment(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ValidateInputEnvironment(_Environment):
    DEFAULT_POLL_INTERVAL_SECONDS: int = 60
    DEFAULT_MAX_POLLS: int = 720
    DEFAULT_TUNING_CANDIDATES: int = 1
    GATE_TUNING_CHILDREN: bool = False
    GATE_POLICY: Json[Policy]
    MODEL_PACKAGE_GROUPS: CommaList


class CollectMetricsEnvironment(_Environment):
    TRAINING_LOG_GROUP: str = TRAINING_LOG_GROUP
    READ_CLOUDWATCH_METRICS: bool = False
    REPORTS_BUCKET: str


class EvaluatePolicyEnvironment(_Environment):
    GATE_POLICY: Json[Policy]
    MODEL_PACKAGE_GROUP: str
    MODEL_PACKAGE_GROUPS: CommaList
    POLICY_PARAMETER_PREFIX: str = POLICY_PARAMETER_PREFIX
    REPORTS_BUCKET: str
    DECISION_TABLE: str


class RegisterModelEnvironment(_Environment):
    DECISION_TABLE: str
    INFERENCE_CONFIG: Json[InferenceConfig] = Field(default_factory=InferenceConfig)


class RecordOutcomeEnvironment(_Environment):
    DECISION_TABLE: str


class AlertOperationsEnvironment(_Environment):
    OPERATIONS_TOPIC_ARN: str
    DECISION_TABLE: str


class DescribeFailureEnvironment(_Environment):
    DECISION_TABLE: str


class NotifyOwnersEnvironment(_Environment):
    NOTIFICATION_TOPIC_ARN: str
    DECISION_TABLE: str


def environment(model: type[Settings], environ: Mapping[str, str] | None = None) -> Settings:
    """The function's settings; a missing or malformed variable fails the invocation by name."""
    return model.model_validate(dict(os.environ if environ is None else environ))
