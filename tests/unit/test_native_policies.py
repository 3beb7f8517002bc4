"""Default metric policies for native frameworks: named as the jobs report them, judged for the right reason."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import FIXTURES
from training_gate.domain.framework_policies import (
    XGBOOST_DEFAULT_METRIC,
    default_metric,
    default_policy,
    derived_values,
)
from training_gate.domain.metrics import canonical_name, combine, scan_streams
from training_gate.domain.models import MetricValue
from training_gate.domain.policy import Outcome, Policy, ReasonCode, decide

BUILT_IN_XGBOOST = FIXTURES / "sagemaker-logs" / "03_xgboost_builtin_churn_error"


def _builtin_definitions() -> list[dict[str, str]]:
    return json.loads((BUILT_IN_XGBOOST / "metric_definitions.json").read_text())


def _value(name: str, raw: str) -> MetricValue:
    return MetricValue.from_raw(raw, name=canonical_name(name), original_name=name, source="log")


@pytest.mark.parametrize("objective", sorted(XGBOOST_DEFAULT_METRIC))
@pytest.mark.parametrize("version", [(0, 90), (1, 7), (3, 0)])
def test_every_xgboost_default_policy_is_a_valid_policy(objective, version):
    document = default_policy("xgboost", objective, version, num_class=3)
    assert document is not None
    Policy.model_validate(document)


@pytest.mark.parametrize("objective", ["binary:logistic", "multi:softprob", "reg:squarederror", "rank:pairwise"])
def test_the_default_metric_is_one_the_built_in_container_defines(objective):
    # The built-in container's MetricDefinitions name validation:<metric>; the policy names its canonical form.
    defined = {canonical_name(d["Name"]) for d in _builtin_definitions()}
    for version in [(0, 90), (1, 7)]:
        assert default_metric("xgboost", objective, version) in defined


def test_the_default_eval_metric_changed_in_1_3():
    assert default_metric("xgboost", "binary:logistic", (1, 2)) == "error"
    assert default_metric("xgboost", "binary:logistic", (1, 3)) == "logloss"
    assert default_metric("xgboost", "multi:softprob", (0, 90)) == "merror"


def test_a_first_built_in_xgboost_job_is_judged_on_what_it_logged():
    # GIVEN the real 0.90-2 churn job's log, read with the container's own MetricDefinitions
    lines = (BUILT_IN_XGBOOST / "log.txt").read_text().split("\n")
    metrics = scan_streams([("algo-1", lines)], _builtin_definitions()).result()
    policy = Policy.model_validate(default_policy("xgboost", "binary:logistic", (0, 90)))

    # WHEN the default policy for its objective and version decides
    decision = decide(policy, metrics, None)

    # THEN it passes on validation:error (0.0616 < 0.5), not inconclusive for want of accuracy
    assert decision.outcome == Outcome.PASS, decision.reasons
    assert decision.rules[0].original_name == "validation:error"


def test_a_model_no_better_than_chance_is_rejected_for_that_reason():
    policy = Policy.model_validate(default_policy("xgboost", "binary:logistic", (1, 7)))
    decision = decide(policy, combine([_value("validation:logloss", "0.71")]), None)
    assert decision.outcome == Outcome.REJECT
    assert decision.reason_codes == [ReasonCode.THRESHOLD_NOT_MET]


def test_multiclass_bars_scale_with_the_number_of_classes():
    rules = default_policy("xgboost", "multi:softprob", (1, 7), num_class=4)["rules"]
    assert rules == [{"metric": "mlogloss", "operator": "<", "threshold": pytest.approx(math.log(4))}]
    rules = default_policy("xgboost", "multi:softmax", (1, 0), num_class=4)["rules"]
    assert rules == [{"metric": "merror", "operator": "<", "threshold": pytest.approx(0.75)}]


def test_regression_asks_only_for_a_reported_finite_metric():
    policy = Policy.model_validate(default_policy("xgboost", "reg:squarederror", (1, 7)))
    assert decide(policy, combine([_value("validation:rmse", "12.5")]), None).outcome == Outcome.PASS
    missing = decide(policy, combine([]), None)
    assert missing.outcome == Outcome.INCONCLUSIVE
    assert missing.reason_codes == [ReasonCode.METRIC_MISSING]
    assert decide(policy, combine([_value("validation:rmse", "nan")]), None).outcome == Outcome.REJECT


@pytest.mark.parametrize(
    ("framework", "objective", "logged", "metric"),
    [
        ("xgboost", "reg:squarederror", "validation:mae", "mae"),
        ("xgboost", "rank:ndcg", "validation:map", "map"),
        ("lightgbm", "regression", "validation:l1", "l1"),
        ("catboost", "RMSE", "validation:MAE", "mae"),
    ],
)
def test_a_regression_or_ranking_job_is_judged_on_the_metric_of_its_family_it_logged(
    framework, objective, logged, metric
):
    reported = {canonical_name(logged)}
    policy = Policy.model_validate(default_policy(framework, objective, (3, 0), reported=reported))
    assert [rule.metric for rule in policy.rules] == [metric]
    assert decide(policy, combine([_value(logged, "0.25")]), None).outcome == Outcome.PASS


def test_accuracy_is_derived_from_error_for_the_shipped_accuracy_rule():
    derived = derived_values([_value("validation:error", "0.061562"), _value("train:error", "0.02")])
    assert [(d.name, d.original_name, d.value) for d in derived] == [
        ("accuracy", "validation:accuracy", pytest.approx(0.938438))
    ]
    policy = Policy.model_validate({"version": 1, "rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.9}]})
    assert decide(policy, combine(derived), None).outcome == Outcome.PASS


def test_a_reported_accuracy_is_never_replaced_by_a_derived_one():
    values = [_value("validation:merror", "0.2"), _value("validation:accuracy", "0.7")]
    assert derived_values(values) == []


def test_lightgbm_and_catboost_have_defaults_and_onnx_uses_the_shipped_policy():
    assert default_policy("lightgbm", "binary")["rules"][0]["metric"] == "binary_logloss"
    assert default_policy("catboost", "Logloss")["rules"][0]["metric"] == "logloss"
    assert default_policy("onnx", "") is None
