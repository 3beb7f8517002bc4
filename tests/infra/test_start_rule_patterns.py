"""The start rules' event patterns fit EventBridge's event pattern size quota, checked when the configuration is
read (cdk-nag and cfn-lint do not know the quota; PutRule refuses a longer pattern at deploy)."""

from __future__ import annotations

import json

import pytest

from infra.config import ConfigError, load_config, read_context
from infra.patterns import EVENT_PATTERN_QUOTA_DEFAULT, TRAINING_JOB_DETAIL_TYPE, pattern_size, training_job_detail


def _config(**changes: object):
    return load_config({**read_context(), **changes})


def test_the_size_counted_is_the_compact_json_of_the_whole_pattern():
    detail = training_job_detail(["churn-"], ("training-gate", "enabled"))
    counted = pattern_size(TRAINING_JOB_DETAIL_TYPE, detail)
    # GIVEN the pattern as the rule holds it, with a 12-digit account and a region of 20 characters
    pattern = {
        "source": ["aws.sagemaker"],
        "detail-type": [TRAINING_JOB_DETAIL_TYPE],
        "account": ["123456789012"],
        "region": ["r" * 20],
        "detail": detail,
    }
    assert counted == len(json.dumps(pattern, separators=(",", ":")))


def test_prefixes_that_make_a_pattern_longer_than_the_default_quota_fail_naming_the_setting():
    prefixes = ["p" * 60 + f"{i:02d}" for i in range(25)]  # 25 prefixes of 62 characters
    with pytest.raises(
        ConfigError, match=r"event pattern would be \d+ characters, over .* quota of 2048.*event_pattern_quota"
    ):
        _config(job_name_prefixes=prefixes)


def test_a_raised_quota_admits_the_same_prefixes_and_the_patterns_fit_it():
    prefixes = ["p" * 60 + f"{i:02d}" for i in range(25)]
    config = _config(job_name_prefixes=prefixes, event_pattern_quota=4096)
    detail = training_job_detail(config.job_name_prefixes, config.job_tag_pair)
    assert EVENT_PATTERN_QUOTA_DEFAULT < pattern_size(TRAINING_JOB_DETAIL_TYPE, detail) <= 4096


@pytest.mark.parametrize("quota", [2047, 4097])
def test_the_quota_setting_is_bounded_by_what_eventbridge_grants(quota: int):
    with pytest.raises(ConfigError, match="event_pattern_quota"):
        _config(event_pattern_quota=quota)


def test_the_shipped_configuration_fits_the_default_quota():
    config = _config()
    assert (
        pattern_size(TRAINING_JOB_DETAIL_TYPE, training_job_detail(config.job_name_prefixes, config.job_tag_pair)) < 400
    )
