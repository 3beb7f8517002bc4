"""The decision: operators at their boundary, missing and non-finite values, artifact failures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from training_gate.domain.models import ArtifactInfo, CheckResult, CheckStatus, InspectionResult, MetricValue
from training_gate.domain.policy import Decision, Outcome, Policy, ReasonCode, RuleResult, decide


def metric(name: str, raw: str) -> MetricValue:
    return MetricValue.from_raw(raw, name=name, original_name=name, source="log")


def policy(op: str = ">", threshold: float = 0.9, **extra) -> Policy:
    return Policy(rules=[{"metric": "accuracy", "operator": op, "threshold": threshold, **extra}])


@pytest.mark.parametrize(
    ("op", "value", "passes"),
    [
        (">", "0.9", False),
        (">", "0.9000001", True),
        (">", "0.8999999", False),
        (">=", "0.9", True),
        (">=", "0.8999999", False),
        ("<", "0.9", False),
        ("<", "0.8999999", True),
        ("<=", "0.9", True),
        ("<=", "0.9000001", False),
    ],
)
def test_operators_at_just_above_and_just_below_the_threshold(op: str, value: str, passes: bool):
    decision = decide(policy(op), {"accuracy": metric("accuracy", value)}, None)
    assert (decision.outcome == Outcome.PASS) is passes


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "n/a"])
def test_non_finite_values_never_pass(raw: str):
    decision = decide(policy(">", -1e300), {"accuracy": metric("accuracy", raw)}, None)
    assert decision.outcome == Outcome.REJECT
    assert decision.reason_codes == [ReasonCode.METRIC_NOT_FINITE]


def test_missing_required_metric_is_inconclusive_not_a_pass():
    decision = decide(policy(), {}, None)
    assert decision.outcome == Outcome.INCONCLUSIVE
    assert decision.reason_codes == [ReasonCode.METRIC_MISSING]


def test_missing_optional_metric_does_not_block():
    decision = decide(policy(required=False), {}, None)
    assert decision.outcome == Outcome.PASS


def test_failed_artifact_check_rejects_even_with_good_metrics():
    inspection = InspectionResult(
        verdict="reject",
        checks=[CheckResult(name="load", status=CheckStatus.FAIL, detail="refused global 'os.system'")],
        artifact=ArtifactInfo(uri="s3://b/k"),
    )
    decision = decide(policy(), {"accuracy": metric("accuracy", "0.99")}, inspection)
    assert decision.outcome == Outcome.REJECT
    assert ReasonCode.ARTIFACT_CHECK_FAILED in decision.reason_codes
    assert "os.system" in decision.reasons[0]


def test_rule_names_are_canonicalised_like_metrics():
    rules = Policy(rules=[{"metric": "F1-Score", "operator": ">", "threshold": 0.85}]).rules
    assert rules[0].metric == "f1"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"rules": []}, "rules"),
        ({"rules": [{"metric": "accuracy", "operator": "=>", "threshold": 0.9}]}, "operator"),
        ({"rules": [{"metric": "accuracy", "operator": ">", "threshold": "high"}]}, "threshold"),
        ({"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9, "colour": 1}]}, "colour"),
        (
            {
                "rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}],
                "outcome": {"approval_status": "Yes"},
            },
            "outcome.approval_status",
        ),
    ],
)
def test_bad_policies_name_the_field(document: dict, field: str):
    with pytest.raises(ValidationError, match=field):
        Policy.model_validate(document)


def test_policy_hash_changes_with_the_policy_and_only_then():
    assert policy().sha256() == policy().sha256()
    assert policy(threshold=0.9).sha256() != policy(threshold=0.91).sha256()


@given(
    threshold=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    low=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    raise_by=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_raising_a_higher_is_better_value_never_turns_pass_into_reject(threshold, low, raise_by):
    before = decide(policy(">", threshold), {"accuracy": metric("accuracy", repr(low))}, None)
    after = decide(policy(">", threshold), {"accuracy": metric("accuracy", repr(low + raise_by))}, None)
    assert not (before.outcome == Outcome.PASS and after.outcome != Outcome.PASS)


# -- champion, sources, artifact-check policy, overrides -------------------------------------------

from training_gate.domain.models import MetricsResult  # noqa: E402
from training_gate.domain.policy import Champion  # noqa: E402


def champion_policy(**champion) -> Policy:
    return Policy(
        rules=[
            {"metric": "accuracy", "operator": ">", "threshold": 0.5},
            {"metric": "rmse", "operator": "<", "threshold": 10},
        ],
        champion={"enabled": True, **champion},
    )


def candidate(accuracy: str, rmse: str) -> dict[str, MetricValue]:
    return {"accuracy": metric("accuracy", accuracy), "rmse": metric("rmse", rmse)}


CHAMPION = Champion(model_package_arn="arn:champion/3", metrics={"accuracy": 0.90, "rmse": 5.0})


@pytest.mark.parametrize(
    ("accuracy", "rmse", "outcome"),
    [
        ("0.91", "4.9", Outcome.PASS),  # better on both
        ("0.90", "5.0", Outcome.PASS),  # equal is not worse
        ("0.89", "4.0", Outcome.REJECT),  # accuracy worse (higher is better)
        ("0.95", "5.1", Outcome.REJECT),  # rmse worse (lower is better)
    ],
)
def test_champion_comparison_honours_each_metrics_direction(accuracy, rmse, outcome):
    decision = decide(champion_policy(), candidate(accuracy, rmse), None, CHAMPION)
    assert decision.outcome == outcome
    if outcome == Outcome.REJECT:
        assert decision.reason_codes == [ReasonCode.WORSE_THAN_CHAMPION]
    assert {r.metric: r.champion for r in decision.rules} == {"accuracy": 0.90, "rmse": 5.0}
    assert decision.champion_arn == "arn:champion/3"


@pytest.mark.parametrize(
    ("settings", "accuracy", "rmse", "passes"),
    [
        ({"min_absolute_change": 0.01}, "0.911", "4.0", True),
        ({"min_absolute_change": 0.01}, "0.905", "4.0", False),
        ({"min_relative_change": 0.10}, "0.99", "4.5", True),  # +10% and -10%
        ({"min_relative_change": 0.10}, "0.99", "4.6", False),  # rmse only -8%
    ],
)
def test_minimum_absolute_and_relative_change(settings, accuracy, rmse, passes):
    decision = decide(champion_policy(**settings), candidate(accuracy, rmse), None, CHAMPION)
    assert (decision.outcome == Outcome.PASS) is passes


def test_first_run_without_a_champion_uses_absolute_thresholds_or_rejects():
    absolute = decide(champion_policy(), candidate("0.6", "9"), None, None)
    assert absolute.outcome == Outcome.PASS
    assert "first run" in absolute.warnings[0]
    strict = decide(champion_policy(first_run="reject"), candidate("0.6", "9"), None, None)
    assert strict.outcome == Outcome.REJECT and strict.reason_codes == [ReasonCode.NO_CHAMPION]


def test_champion_without_a_stored_value_is_a_warning_not_a_pass_or_fail():
    partial = Champion(model_package_arn="arn:c", metrics={"accuracy": 0.5})
    decision = decide(champion_policy(), candidate("0.6", "9"), None, partial)
    assert decision.outcome == Outcome.PASS
    assert "champion has no stored value for rmse" in decision.warnings[0]


def test_preferred_source_is_used_when_present_and_falls_back_otherwise():
    details = [
        MetricValue.from_raw("0.95", name="accuracy", original_name="val_acc", source="log", host="algo-1"),
        MetricValue.from_raw("0.85", name="accuracy", original_name="holdout accuracy", source="holdout"),
    ]
    metrics = MetricsResult(metrics={"accuracy": details[0]}, details=details)
    prefers_holdout = Policy(rules=[{"metric": "accuracy", "operator": ">", "threshold": 0.9, "source": "holdout"}])
    decision = decide(prefers_holdout, metrics, None)
    assert decision.outcome == Outcome.REJECT and decision.rules[0].source == "holdout"
    without_holdout = MetricsResult(metrics={"accuracy": details[0]}, details=details[:1])
    assert decide(prefers_holdout, without_holdout, None).rules[0].source == "log"


def _inspection_with(check_name: str) -> InspectionResult:
    return InspectionResult(
        verdict="reject",
        checks=[CheckResult(name=check_name, status=CheckStatus.FAIL, detail="pickled with 1.3.2, runs 1.9.1")],
        artifact=ArtifactInfo(uri="s3://b/k"),
    )


def test_version_skew_fails_unless_the_policy_makes_it_a_warning():
    good = {"accuracy": metric("accuracy", "0.99")}
    strict = decide(policy(), good, _inspection_with("version_skew"))
    assert strict.outcome == Outcome.REJECT and strict.reason_codes == [ReasonCode.VERSION_SKEW]
    lenient = Policy(rules=policy().rules, artifact_checks={"version_skew": "warn"})
    relaxed = decide(lenient, good, _inspection_with("version_skew"))
    assert relaxed.outcome == Outcome.PASS
    assert relaxed.warnings == ["version skew allowed by the policy: pickled with 1.3.2, runs 1.9.1"]
    # Other artifact checks are never relaxed by the version-skew setting.
    assert decide(lenient, good, _inspection_with("load")).outcome == Outcome.REJECT


def test_source_disagreement_warns_by_default_and_can_reject():
    metrics = MetricsResult(
        metrics={"accuracy": metric("accuracy", "0.95")},
        details=[],
        warnings=["accuracy: ..."],
        disagreements=["accuracy"],
    )
    assert decide(policy(), metrics, None).outcome == Outcome.PASS
    strict = Policy(rules=policy().rules, artifact_checks={"source_disagreement": "fail"})
    decision = decide(strict, metrics, None)
    assert decision.outcome == Outcome.REJECT and decision.reason_codes == [ReasonCode.SOURCE_DISAGREEMENT]


def test_overrides_merge_objects_replace_lists_and_are_validated():
    base = champion_policy()
    merged = base.with_overrides(
        {"champion": {"min_absolute_change": 0.02}, "rules": [{"metric": "f1", "operator": ">", "threshold": 0.8}]}
    )
    assert merged.champion.enabled and merged.champion.min_absolute_change == 0.02
    assert [r.metric for r in merged.rules] == ["f1"]
    assert merged.sha256() != base.sha256()
    with pytest.raises(ValidationError, match="threshold"):
        base.with_overrides({"rules": [{"metric": "f1", "operator": ">", "threshold": "high"}]})
    assert base.with_overrides(None) is base


def _rule(metric: str, value: float | None) -> RuleResult:
    return RuleResult(
        metric=metric, original_name=None, value=value, raw=None, operator=">", threshold=0.5,
        required=True, source="log", passed=value is not None and value > 0.5, detail="",
    )  # fmt: skip


def test_observed_values_are_finite_once_per_metric_and_usable_as_dimensions():
    decision = Decision(
        outcome=Outcome.PASS,
        reasons=[],
        reason_codes=[],
        policy_sha256="0" * 64,
        rules=[
            _rule("accuracy", 0.93),
            _rule("accuracy", 0.1),  # a second rule on the same metric judges the same value
            _rule("f1", None),
            _rule("recall", float("nan")),
            _rule("auc", float("inf")),
            _rule("bad\nname", 0.7),
            _rule("x" * 1025, 0.7),
            _rule("validation:precision", 0.88),
        ],
    )
    assert decision.observed_values() == {"accuracy": 0.93, "validation:precision": 0.88}


def _inspection(verdict: str, *checks: CheckResult) -> InspectionResult:
    return InspectionResult(verdict=verdict, checks=list(checks), artifact=ArtifactInfo(uri="s3://b/m.tar.gz"))


NOT_A_MODEL = CheckResult(
    name="find_model",
    status=CheckStatus.SKIPPED,
    detail="no scikit-learn model: no model file matching *.joblib; the artifact holds: xgboost-model",
)


def test_an_artifact_with_no_sklearn_model_is_skipped_not_rejected_even_with_failing_metrics():
    decision = decide(policy(), {"accuracy": metric("accuracy", "0.1")}, _inspection("skip", NOT_A_MODEL))
    assert decision.outcome == Outcome.SKIPPED
    assert decision.reason_codes == [ReasonCode.NOT_A_SKLEARN_MODEL]
    assert "xgboost-model" in decision.reasons[0]
    assert decision.rules == []  # nothing was judged
    assert decision.policy_sha256 == policy().sha256()


def test_the_inspection_verdict_is_skip_only_when_nothing_failed_and_no_model_was_found():
    failed = CheckResult(name="unpack", status=CheckStatus.FAIL, detail="truncated")
    not_run = CheckResult(name="find_model", status=CheckStatus.SKIPPED, detail="not run: unpack failed")
    assert InspectionResult.verdict_of([NOT_A_MODEL]) == "skip"
    assert InspectionResult.verdict_of([failed, NOT_A_MODEL]) == "reject"
    assert InspectionResult.verdict_of([not_run]) == "pass"
    assert InspectionResult.verdict_of([CheckResult(name="load", status=CheckStatus.PASS, detail="ok")]) == "pass"
