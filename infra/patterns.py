"""The event patterns of the rules that start the gate, built once for the rules and for the synth-time size check.

EventBridge refuses a rule whose pattern is longer than the account's "Event pattern size" quota: 2,048
characters by default, adjustable
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html). cdk-nag and cfn-lint do not know
it, so a long list of job_name_prefixes would synthesize clean and fail at deploy; the check here fails
synthesis instead, naming the setting. Kept free of aws_cdk so the configuration model can run it.
"""

from __future__ import annotations

import json
from typing import Any

EVENT_PATTERN_QUOTA_DEFAULT = 2048
EVENT_PATTERN_QUOTA_MAX = 4096
# Terminal states that start the gate; InProgress/Stopping changes are not worth an execution.
TERMINAL_STATUSES = ["Completed", "Failed", "Stopped"]
TRAINING_JOB_DETAIL_TYPE = "SageMaker Training Job State Change"
TUNING_JOB_DETAIL_TYPE = "SageMaker HyperParameter Tuning Job State Change"
# The longest values the account and region tokens take at deploy time: a 12-digit account, and a region
# name as long as any in use (ap-southeast-5, cn-northwest-1: 14) with room to spare.
_LONGEST_ACCOUNT = "0" * 12
_LONGEST_REGION = "x" * 20


def _detail(status_key: str, name_key: str, prefixes: list[str], tag: tuple[str, str] | None) -> dict[str, Any]:
    detail: dict[str, Any] = {status_key: TERMINAL_STATUSES}
    if prefixes:
        detail[name_key] = [{"prefix": prefix} for prefix in prefixes]
    if tag:
        # SageMaker's state-change events carry the job's tags as an object in detail.Tags.
        detail["Tags"] = {tag[0]: [tag[1]]}
    return detail


def training_job_detail(prefixes: list[str], tag: tuple[str, str] | None) -> dict[str, Any]:
    return _detail("TrainingJobStatus", "TrainingJobName", prefixes, tag)


def tuning_job_detail(prefixes: list[str], tag: tuple[str, str] | None) -> dict[str, Any]:
    return _detail("HyperParameterTuningJobStatus", "HyperParameterTuningJobName", prefixes, tag)


def pattern_size(detail_type: str, detail: dict[str, Any]) -> int:
    """The pattern's length as the rule holds it (compact JSON), with the account and region at their longest."""
    pattern = {
        "source": ["aws.sagemaker"],
        "detail-type": [detail_type],
        "account": [_LONGEST_ACCOUNT],
        "region": [_LONGEST_REGION],
        "detail": detail,
    }
    return len(json.dumps(pattern, separators=(",", ":"), ensure_ascii=False))


def pattern_problems(prefixes: list[str], tag: tuple[str, str] | None, quota: int) -> list[str]:
    """Why EventBridge would refuse one of the start rules, or []."""
    problems = []
    for what, detail_type, detail in (
        ("training job", TRAINING_JOB_DETAIL_TYPE, training_job_detail(prefixes, tag)),
        ("tuning job", TUNING_JOB_DETAIL_TYPE, tuning_job_detail(prefixes, tag)),
    ):
        size = pattern_size(detail_type, detail)
        if size > quota:
            problems.append(
                f"the {what} rule's event pattern would be {size} characters, over EventBridge's event pattern "
                f"size quota of {quota} (event_pattern_quota): use fewer or shorter job_name_prefixes, or raise "
                "the quota with Service Quotas and set event_pattern_quota to it"
            )
    return problems
