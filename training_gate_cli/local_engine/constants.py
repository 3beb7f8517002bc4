"""The emulated account's fixed identity and the environment every in-process handler sees."""

from __future__ import annotations

from training_gate.constants import TRAINING_LOG_GROUP

MOTO_VERSION = "5.2.5"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
LOCAL_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_NAMESPACE": "TrainingGate",
}
POLL_SECONDS = 0.02

__all__ = ["ACCOUNT_ID", "LOCAL_ENVIRONMENT", "MOTO_VERSION", "POLL_SECONDS", "REGION", "TRAINING_LOG_GROUP"]


class LocalEngineError(RuntimeError):
    """The template cannot be run locally, or an execution did not finish."""
