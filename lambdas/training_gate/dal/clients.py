"""One boto3 client per service and process, with retries on throttling."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Standard mode retries throttling and 5xx with exponential backoff and jitter on every client.
_RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_RETRY_CONFIG)


def region() -> str:
    """The region the default session would call, as the user's AWS configuration says."""
    return boto3.session.Session().region_name or "us-east-1"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


__all__ = ["ClientError", "client", "error_code", "error_message", "region"]
