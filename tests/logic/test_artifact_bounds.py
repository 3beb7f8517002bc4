"""The inspection travels in the state: it stays bounded whatever the artifact's evaluation files hold."""

from __future__ import annotations

from tests.support.builders import metric, passing_inspection
from training_gate.domain.models import CheckResult, CheckStatus
from training_gate.logic.artifact import CHECK_DETAIL_MAX, INSPECTION_METRICS_MAX, bounded


def test_thousands_of_evaluation_values_are_capped_with_a_warning_that_says_so():
    many = passing_inspection().model_copy(
        update={"metrics": [metric(f"class_{i}_f1", 0.9, source="evaluation_file") for i in range(3000)]}
    )
    result = bounded(many)
    assert len(result.metrics) == INSPECTION_METRICS_MAX
    (warning,) = [c for c in result.checks if c.name == "evaluation_files"]
    assert warning.status == CheckStatus.WARN and "3000 values" in warning.detail
    assert len(result.model_dump_json()) < 64 * 1024


def test_a_check_quoting_the_artifact_at_length_is_cut():
    long = passing_inspection().model_copy(
        update={"checks": [CheckResult(name="load", status=CheckStatus.FAIL, detail="x" * 100_000)]}
    )
    assert len(bounded(long).checks[0].detail) == CHECK_DETAIL_MAX
    assert bounded(passing_inspection()) == passing_inspection()
