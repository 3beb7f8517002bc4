"""Whether a tuning job's own execution will judge the training jobs it launched.

Both start rules scope by the same job-name prefixes, but the names differ: a tuning job's name is at most
32 characters and its training jobs are named `<tuning job>-<NNN>-<8 hex>`. A prefix that reaches into
that suffix (`churn-weekly-` for a tuning job the SDK named `churn-weekly`), or is longer than 32
characters, matches every child and never the tuning job, whose rule then starts nothing. A child ends
quietly only when its tuning job is certainly in scope; otherwise it is judged on its own, so a job is
judged twice at worst and never left unjudged.

Tags are no such problem: a tuning job's tags are applied to the training jobs it launches
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html, Tags).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TUNING_JOB_NAME_MAX = 32  # HyperParameterTuningJobName: 1-32 characters
_CHILD_SUFFIX = re.compile(r"-\d{3}-[0-9a-f]{8}$")
_ARN_NAME = re.compile(r":hyper-parameter-tuning-job/([^/]+)$")


def tuning_job_name(child_name: str, tuning_job_arn: str) -> str | None:
    """The tuning job's name as its rule sees it, with its case. SageMaker ARNs may spell a name in lower
    case (so the ARN alone cannot say whether a case-sensitive prefix matches); the child's own name starts
    with it exactly. None when the two do not agree."""
    found = _ARN_NAME.search(tuning_job_arn)
    if not found:
        return None
    from_arn = found.group(1)
    stem = _CHILD_SUFFIX.sub("", child_name)
    if stem != child_name and stem.lower() == from_arn.lower():
        return stem
    return from_arn if from_arn.lower() != from_arn else None


def judged_with_tuning_job(child_name: str, tuning_job_arn: str | None, prefixes: Sequence[str]) -> bool:
    """True when the tuning job's execution judges this child: it has one, and (scoped by prefixes) the
    tuning job's name certainly starts with one of them."""
    if tuning_job_arn is None:
        return False
    if not prefixes:
        return True
    name = tuning_job_name(child_name, tuning_job_arn)
    return name is not None and any(name.startswith(prefix) for prefix in prefixes)


def prefixes_no_tuning_job_matches(prefixes: Sequence[str]) -> list[str]:
    return [prefix for prefix in prefixes if len(prefix) > TUNING_JOB_NAME_MAX]
