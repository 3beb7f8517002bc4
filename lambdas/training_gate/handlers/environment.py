"""Each function's environment, parsed into one typed model (the variables infra/ sets).

Settings too large for Lambda's 4 KB of environment (the policy, the inspection settings, the groups, the
inference settings) come from the settings document the stack deploys (infra/settings.py): the function's
environment names it (GATE_SETTINGS) with its sha256, and its variables are read as if they were the
function's own. It is read once per process, and only by a function that needs one of its variables; a
variable set in the environment itself wins."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Json

from training_gate.constants import POLICY_PARAMETER_PREFIX, TRAINING_LOG_GROUP
from training_gate.domain.policy import Policy
from training_gate.domain.settings import SETTINGS_SHA256_VARIABLE, SETTINGS_VARIABLE, InferenceConfig

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
    FAIL_STEP_ON_REJECT: bool = False
    GATE_POLICY: Json[Policy]
    MODEL_PACKAGE_GROUPS: CommaList


class DescribeTrainingJobEnvironment(_Environment):
    SCOPED_BY_PREFIX: bool = False


class PrefixScopeEnvironment(_Environment):
    """Read only when SCOPED_BY_PREFIX: the prefixes are in the settings document. Without them every
    child of a tuning job is judged on its own (twice at worst, never unjudged)."""

    JOB_NAME_PREFIXES: Json[list[str]] = Field(default_factory=list)


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


class AnswerPipelinesEnvironment(_Environment):
    DECISION_TABLE: str


class StartCallbackEnvironment(_Environment):
    STATE_MACHINE_ARN: str


class NotifyOwnersEnvironment(_Environment):
    NOTIFICATION_TOPIC_ARN: str
    OPERATIONS_TOPIC_ARN: str
    DECISION_TABLE: str


@functools.cache
def _settings_document(uri: str, sha256: str) -> dict[str, str]:
    from training_gate.dal.s3 import read_settings

    return read_settings(uri, sha256)


def forget_settings() -> None:
    """Read the settings document again at the next call (the local engine runs every function in one process:
    each invocation then reads it as its own function's cold start would, with its own role)."""
    _settings_document.cache_clear()


def variables(environ: Mapping[str, str] | None = None, wanted: set[str] | None = None) -> dict[str, str]:
    """The function's variables: its environment, over the settings document it names when it lacks one of
    `wanted` (a function whose variables are all in its environment never reads the document)."""
    own = dict(os.environ if environ is None else environ)
    uri = own.get(SETTINGS_VARIABLE)
    if not uri or (wanted is not None and wanted <= own.keys()):
        return own
    return {**_settings_document(uri, own.get(SETTINGS_SHA256_VARIABLE, "")), **own}


def environment(model: type[Settings], environ: Mapping[str, str] | None = None) -> Settings:
    """The function's settings; a missing or malformed variable fails the invocation by name."""
    return model.model_validate(variables(environ, set(model.model_fields)))
