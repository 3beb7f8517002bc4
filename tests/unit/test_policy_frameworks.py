"""The framework the inspection found chooses the rules, a policy may require frameworks and formats, and the
model's framework, format and reader reach the report, the message, the decision event and the package."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from infra.config import ConfigError, load_config, read_context
from training_gate.domain.contract import Claim, Evaluation, Notification, TrainingJob
from training_gate.domain.framework_policies import derived_for_model
from training_gate.domain.metrics import canonical_name, combine
from training_gate.domain.models import (
    FRAMEWORK_FORMATS,
    READER_NOT_INSTALLED_DETAIL,
    ArtifactInfo,
    CheckResult,
    CheckStatus,
    InspectionResult,
    MetricsResult,
    MetricValue,
    ModelInfo,
    Recognition,
)
from training_gate.domain.policy import Outcome, Policy, ReasonCode, decide, framework_policy
from training_gate.domain.report import decision_event, decision_message, decision_subject
from training_gate.domain.report_document import REPORT_SCHEMA_VERSION, Report
from training_gate.domain.settings import InferenceConfig
from training_gate.inspector.frameworks import REGISTRY
from training_gate.logic.register import METADATA_ENTRIES_MAX, registration_request

SHIPPED = Policy.model_validate(read_context()["policy"])
PASSED = [CheckResult(name="load", status=CheckStatus.PASS, detail="loaded")]


def _values(**values: str) -> MetricsResult:
    return combine(
        [MetricValue.from_raw(raw, name=canonical_name(n), original_name=n, source="log") for n, raw in values.items()]
    )


def inspection(framework: str | None = "xgboost", fmt: str = "ubjson", objective: str = "binary:logistic", **kw):
    model = ModelInfo.model_validate(
        {
            "class": "Booster",
            "framework": framework,
            "format": fmt,
            "reader": framework,
            "reader_version": "3.2.0",
            "writer_version": kw.pop("writer", "3.0.5"),
            "bytes_validated": True,
            "objective": objective,
            "num_class": kw.pop("num_class", 0),
        }
    )
    checks = kw.pop("checks", PASSED)
    return InspectionResult(
        verdict=InspectionResult.verdict_of(checks),
        checks=checks,
        artifact=ArtifactInfo(uri="s3://b/m", sha256="a" * 64),
        model=model,
        **kw,
    )


def judged(policy: Policy, found: InspectionResult, metrics: MetricsResult):
    effective, rules_from = framework_policy(policy, found, metrics)
    return effective, rules_from, decide(effective, metrics, found)


# -- the rules the framework chooses ---------------------------------------------------------------------------


def test_a_built_in_xgboost_job_is_judged_by_the_metrics_it_logged_not_the_shipped_accuracy_rules():
    metrics = _values(**{"validation:error": "0.08", "validation:logloss": "0.21", "validation:auc": "0.97"})
    effective, rules_from, decision = judged(SHIPPED, inspection(), metrics)
    assert rules_from == "the gate's default rules for xgboost binary:logistic"
    assert [(r.metric, r.operator) for r in effective.rules] == [("logloss", "<"), ("error", "<"), ("auc", ">")]
    assert effective.rules[0].threshold == pytest.approx(math.log(2))
    assert decision.outcome == Outcome.PASS, decision.reasons
    assert effective.sha256() != SHIPPED.sha256() and decision.policy_sha256 == effective.sha256()


def test_an_xgboost_model_no_better_than_chance_is_rejected_for_that_metric():
    metrics = _values(**{"validation:error": "0.55", "validation:auc": "0.51"})
    _, _, decision = judged(SHIPPED, inspection(), metrics)
    assert decision.outcome == Outcome.REJECT
    assert decision.reason_codes == [ReasonCode.THRESHOLD_NOT_MET]
    assert decision.reasons == ["error 0.55 not < 0.5"]


@pytest.mark.parametrize(("writer", "missing"), [("3.0.5", "logloss"), ("1.2", "error"), ("0.x", "error")])
def test_a_job_that_logged_none_of_its_metrics_is_inconclusive_on_the_one_its_version_logs(writer, missing):
    _, _, decision = judged(SHIPPED, inspection(writer=writer), _values(**{"train:error": "0.01"}))
    assert decision.outcome == Outcome.INCONCLUSIVE
    assert decision.reasons == [f"{missing} was not found in any source"]


def test_multiclass_bars_follow_the_number_of_classes():
    metrics = _values(**{"validation:mlogloss": "1.3", "validation:merror": "0.6"})
    effective, _, decision = judged(SHIPPED, inspection(objective="multi:softprob", num_class=4), metrics)
    assert [r.threshold for r in effective.rules] == [pytest.approx(math.log(4)), pytest.approx(0.75)]
    assert decision.outcome == Outcome.PASS


def test_the_policys_own_rules_for_a_framework_win_over_the_defaults():
    policy = SHIPPED.model_copy(
        update={
            "framework_rules": {"xgboost": Policy(rules=[{"metric": "auc", "operator": ">", "threshold": 0.9}]).rules}
        }
    )
    _, rules_from, decision = judged(policy, inspection(), _values(**{"validation:auc": "0.85"}))
    assert rules_from == "the policy's framework_rules for xgboost"
    assert decision.reasons == ["auc 0.85 not > 0.9"]


@pytest.mark.parametrize("framework", ["scikit-learn", "onnx", None])
def test_scikit_learn_onnx_and_unloaded_models_keep_the_policys_rules(framework):
    metrics = _values(accuracy="0.95", precision="0.9", recall="0.9", f1="0.9")
    effective, rules_from, decision = judged(SHIPPED, inspection(framework, fmt="joblib"), metrics)
    assert (effective.sha256(), rules_from) == (SHIPPED.sha256(), None)
    assert decision.outcome == Outcome.PASS


def test_accuracy_is_derived_from_error_only_for_an_xgboost_classifier():
    values = [MetricValue.from_raw("0.1", name="error", original_name="validation:error", source="log")]
    assert [v.value for v in derived_for_model(inspection().model, values)] == [pytest.approx(0.9)]
    assert derived_for_model(inspection(objective="reg:squarederror").model, values) == []
    assert derived_for_model(inspection("lightgbm", "text", "binary").model, values) == []


# -- required frameworks and formats ------------------------------------------------------------------------------


def test_unknown_frameworks_and_formats_are_refused_naming_them():
    with pytest.raises(ValidationError, match=r"unknown framework.*xgbost"):
        Policy(rules=SHIPPED.rules, required_frameworks={"xgbost": []})
    with pytest.raises(ValidationError, match=r"xgboost has no format.*bson"):
        Policy(rules=SHIPPED.rules, required_frameworks={"xgboost": ["bson"]})
    with pytest.raises(ValidationError, match=r"unknown framework.*tensorflw"):
        Policy(rules=SHIPPED.rules, framework_rules={"tensorflw": SHIPPED.rules})


def test_synthesis_refuses_a_required_framework_it_does_not_know():
    raw = {**read_context(), "policy": {**read_context()["policy"], "required_frameworks": {"sklearn": []}}}
    with pytest.raises(ConfigError, match=r"training-gate\.policy\.required_frameworks.*unknown framework.*sklearn"):
        load_config(raw)


def test_the_policy_hash_is_unchanged_by_the_new_keys_left_empty():
    explicit = Policy.model_validate(
        {**SHIPPED.model_dump(mode="json"), "framework_rules": {}, "required_frameworks": {}}
    )
    assert explicit.sha256() == SHIPPED.sha256()


def test_a_model_of_a_framework_or_format_the_policy_does_not_take_is_rejected():
    policy = SHIPPED.model_copy(update={"required_frameworks": {"xgboost": ["ubjson", "json"], "lightgbm": []}})
    metrics = _values(**{"validation:auc": "0.9"})
    _, _, allowed = judged(policy, inspection(fmt="ubjson"), metrics)
    assert allowed.outcome == Outcome.PASS
    _, _, old = judged(policy, inspection(fmt="old-binary"), metrics)
    assert old.reason_codes == [ReasonCode.FRAMEWORK_NOT_ALLOWED]
    assert old.reasons == ["the model is xgboost old-binary; the policy requires lightgbm, xgboost (ubjson, json)"]
    _, _, other = judged(policy, inspection("scikit-learn", "joblib"), _values(accuracy="0.99"))
    assert (other.outcome, other.reason_codes[0]) == (Outcome.REJECT, ReasonCode.FRAMEWORK_NOT_ALLOWED)


def test_a_skipped_model_of_a_framework_the_policy_does_not_take_is_rejected_not_skipped():
    checks = [
        CheckResult(name="find_model", status=CheckStatus.SKIPPED, detail="no scikit-learn model: recognised PyTorch")
    ]
    found = InspectionResult(
        verdict="skip",
        checks=checks,
        artifact=ArtifactInfo(uri="s3://b/m"),
        recognition=Recognition(framework="PyTorch"),
    )
    policy = SHIPPED.model_copy(update={"required_frameworks": {"scikit-learn": []}})
    decision = decide(policy, {}, found)
    assert (decision.outcome, decision.reason_codes) == (Outcome.REJECT, [ReasonCode.FRAMEWORK_NOT_ALLOWED])
    assert decide(SHIPPED, {}, found).outcome == Outcome.SKIPPED


def test_the_vocabulary_names_every_framework_of_the_registry():
    assert {framework.key for framework in REGISTRY} == set(FRAMEWORK_FORMATS)


# -- said everywhere -------------------------------------------------------------------------------------------------


def _evaluation(found: InspectionResult, decision) -> Evaluation:
    from training_gate.domain.report import model_facts

    return Evaluation(
        outcome=decision.outcome,
        summary="s",
        reason_codes=decision.reason_codes,
        table="t",
        policy_sha256=decision.policy_sha256,
        model_package_group="g",
        report_uri="s3://r/report.json",
        notification=Notification(subject="s", message="m"),
        dry_run=False,
        claim=Claim.OWNER,
        decided_by="arn:exec",
        model=model_facts(found),
    )


def test_the_message_the_event_and_the_package_say_framework_format_and_reader():
    found = inspection()
    metrics = _values(**{"validation:auc": "0.9", **{f"m{i}": "0.5" for i in range(45)}})
    effective, rules_from, decision = judged(SHIPPED, found, metrics)
    decision.rules_from = rules_from
    message = decision_message("job", decision, found, "s3://r/report.json")
    assert "Model: xgboost ubjson, Booster, written by 3.0.5, read by xgboost 3.2.0" in message
    assert "Rules: the gate's default rules for xgboost binary:logistic" in message

    job = TrainingJob(
        training_job_name="job", training_job_arn="arn:aws:sagemaker:us-east-1:1:training-job/job", status="Completed"
    )
    event = decision_event(job, _evaluation(found, decision), "arn:exec")
    assert event["model"] == {
        "class": "Booster",
        "framework": "xgboost",
        "format": "ubjson",
        "reader": "xgboost",
        "reader_version": "3.2.0",
        "writer_version": "3.0.5",
        "bytes_validated": True,
    }

    report = Report(
        dry_run=False, training_job="job", execution_arn="arn:exec", model_package_group="g",
        decision=decision, policy=effective, inspection=found, metrics=metrics,
    )  # fmt: skip
    assert report.document()["schema_version"] == REPORT_SCHEMA_VERSION == 4
    request = registration_request(job, report, "s3://r/report.json", ("s3://r/s.json", "0" * 64), InferenceConfig())
    properties = request["CustomerMetadataProperties"]
    assert properties["model_framework"] == "xgboost" and properties["model_format"] == "ubjson"
    assert properties["model_reader"] == "xgboost 3.2.0" and properties["model_writer_version"] == "3.0.5"
    assert properties["model_bytes_validated"] == "true"
    assert len(properties) == METADATA_ENTRIES_MAX  # the metrics fill what the fixed entries leave


def test_catboost_says_its_bytes_were_not_validated_and_a_missing_reader_says_so_in_the_subject():
    catboost = ModelInfo.model_validate(
        {
            "framework": "catboost",
            "format": "cbm",
            "reader": "catboost",
            "reader_version": "1.2.10",
            "bytes_validated": False,
        }
    )
    assert "its bytes were NOT validated by the gate before its reader" in catboost.summary()
    checks = [
        CheckResult(name="load", status=CheckStatus.SKIPPED, detail=f"{READER_NOT_INSTALLED_DETAIL}: XGBoost ...")
    ]
    found = InspectionResult(verdict="skip", checks=checks, artifact=ArtifactInfo(uri="s3://b/m"))
    decision = decide(SHIPPED, {}, found)
    assert decision.reason_codes == [ReasonCode.READER_NOT_INSTALLED]
    assert decision_subject("job", decision).startswith("Model skipped, no reader in the inspector: job")
    assert "does not carry its reader" in decision_message("job", decision, found, None)


def test_a_model_that_did_not_load_is_judged_by_the_rules_of_the_framework_recognition_named():
    checks = [CheckResult(name="load", status=CheckStatus.FAIL, detail="refused: CHILD_OUT_OF_RANGE")]
    found = InspectionResult(
        verdict="reject",
        checks=checks,
        artifact=ArtifactInfo(uri="s3://b/m"),
        recognition=Recognition(framework="XGBoost"),
    )
    rules = Policy(rules=[{"metric": "auc", "operator": ">", "threshold": 0.8}]).rules
    policy = SHIPPED.model_copy(update={"framework_rules": {"xgboost": rules}})
    effective, rules_from, decision = judged(policy, found, _values(**{"validation:auc": "0.9"}))
    assert rules_from == "the policy's framework_rules for xgboost" and effective.rules == rules
    assert decision.reason_codes == [ReasonCode.ARTIFACT_CHECK_FAILED]  # the refusal, not a missing accuracy
