"""Which training jobs of a tuning job end quietly: only those whose tuning job's execution certainly starts."""

from __future__ import annotations

import pytest

from training_gate.domain.scope import judged_with_tuning_job, prefixes_no_tuning_job_matches, tuning_job_name

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:hyper-parameter-tuning-job/"


def test_a_standalone_training_job_is_never_judged_with_a_tuning_job():
    assert not judged_with_tuning_job("churn-weekly-2026", None, [])
    assert not judged_with_tuning_job("churn-weekly-2026", None, ["churn-"])


def test_scoped_by_tag_or_all_jobs_a_child_is_judged_with_its_tuning_job():
    # A tuning job's tags are applied to the training jobs it launches: the same rule admits both.
    assert judged_with_tuning_job("anything-001-0a1b2c3d", ARN + "anything", [])


@pytest.mark.parametrize(
    ("child", "tuning", "prefixes", "expected"),
    [
        ("churn-weekly-001-0a1b2c3d", "churn-weekly", ["churn-"], True),
        # The prefix reaches into the child's suffix: the tuning job's rule never matches "churn-weekly".
        ("churn-weekly-001-0a1b2c3d", "churn-weekly", ["churn-weekly-"], False),
        ("churn-weekly-001-0a1b2c3d", "churn-weekly", ["fraud-", "churn-weekly"], True),
        # Case-sensitive like EventBridge's prefix matching.
        ("Churn-Weekly-001-0a1b2c3d", "churn-weekly", ["churn-"], False),
        ("Churn-Weekly-001-0a1b2c3d", "churn-weekly", ["Churn-"], True),
    ],
)
def test_scoped_by_prefix_a_child_ends_quietly_only_when_its_tuning_job_matches(child, tuning, prefixes, expected):
    # ARNs may spell the name in lower case; the child's own name keeps its case.
    assert judged_with_tuning_job(child, ARN + tuning, prefixes) is expected


def test_the_name_with_its_case_comes_from_the_child_or_from_an_arn_that_kept_it():
    assert tuning_job_name("Churn-Weekly-001-0a1b2c3d", ARN + "churn-weekly") == "Churn-Weekly"
    assert tuning_job_name("renamed-0a1b2c3d", ARN + "Churn-Weekly") == "Churn-Weekly"


def test_when_the_case_cannot_be_known_the_child_is_judged_on_its_own():
    # A lower-case ARN and a child not named after it: the tuning job may be "Churn" or "churn".
    assert tuning_job_name("other-name", ARN + "churn") is None
    assert not judged_with_tuning_job("other-name", ARN + "churn", ["churn"])
    assert not judged_with_tuning_job("x-001-0a1b2c3d", "arn:aws:sagemaker:eu-west-1:1:training-job/x", ["x"])


def test_prefixes_longer_than_any_tuning_job_name_are_named():
    assert prefixes_no_tuning_job_matches(["a" * 32, "b" * 33, "c"]) == ["b" * 33]
