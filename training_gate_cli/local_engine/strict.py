"""AWS rules moto does not enforce, enforced by the local engine so that tests fail where AWS would.

Each rule cites the AWS page it comes from and has a canary in tests/engine/test_strict_rules.py.
"""

from __future__ import annotations

from typing import Any

# Lambda: "Invocation payload (request and response): 6 MB each for synchronous"
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
LAMBDA_RESPONSE_MAX = 6 * 1024 * 1024
# Step Functions: "Maximum input or output size for a task, state, or execution: 256 KiB of data as a
# UTF-8 encoded string" and "Maximum execution history size: 25,000 events"
# (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
STATE_PAYLOAD_MAX = 256 * 1024
HISTORY_EVENTS_MAX = 25_000
# Service names as Step Functions spells them in aws-sdk error names.
_SERVICE_NAMES = {
    "sagemaker": "SageMaker",
    "sns": "Sns",
    "s3": "S3",
    "lambda": "Lambda",
    "dynamodb": "DynamoDb",
    "eventbridge": "EventBridge",
    "events": "EventBridge",
    "sfn": "Sfn",
    "stepfunctions": "Sfn",
}


def aws_sdk_error_name(service: str, error_code: str) -> str:
    """An aws-sdk task's error as Step Functions names it: `<Service>.<ExceptionName>`, with the
    `Exception` suffix the SDK's exception classes carry; an error the service model does not list
    (throttling on SageMaker) surfaces as the service's generic exception
    (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html#use-awssdk-integ)."""
    prefix = _SERVICE_NAMES.get(service.lower(), service[:1].upper() + service[1:])
    if not error_code or error_code in ("ThrottlingException", "Throttling", "InternalFailure", "ServiceUnavailable"):
        return f"{prefix}.{prefix}Exception"
    name = error_code if error_code.endswith("Exception") else f"{error_code}Exception"
    return f"{prefix}.{name}"


def lambda_response_problem(payload: bytes) -> str | None:
    if len(payload) > LAMBDA_RESPONSE_MAX:
        return (
            f"Response payload size ({len(payload)} bytes) exceeded maximum allowed payload size "
            f"({LAMBDA_RESPONSE_MAX} bytes)."
        )
    return None


def payload_size(value: Any) -> int:
    import json

    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return len(text.encode("utf-8"))
