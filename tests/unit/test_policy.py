"""The decision: operators at their boundary, missing and non-finite values, artifact failures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from training_gate.domain.models import ArtifactInfo, CheckResult, CheckStatus, InspectionResult, MetricValue
from training_gate.domain.policy import Outcome, Policy, ReasonCode, decide


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
            {"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}], "approval_status": "Yes"},
            "approval_status",
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
