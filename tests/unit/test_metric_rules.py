"""Issue #17's rules, one by one: the job's definitions are the truth, SageMaker's tolerance of
definitions it accepts, no silent collisions, and the fidelity report that says why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from training_gate.domain.metrics import (
    DEFAULT_SOURCE,
    canonical_name,
    fidelity_report,
    metrics_document,
    recombine,
    scan_streams,
)
from training_gate.domain.models import MetricValue
from training_gate.domain.policy import Champion, Outcome, Policy, ReasonCode, decide
from training_gate.domain.report import decision_table

HF_DICT = "{'eval_loss': 0.61, 'eval_accuracy': 0.9181768259198243, 'epoch': 1.0}"
HF_SUMMARY = ["eval_loss: 0.61", "eval_accuracy: 0.9181768259198243"]


def collect(definitions: list, *hosts: tuple[str, list[str]]):
    scan = scan_streams(list(hosts), definitions)
    return scan, scan.result()


def rule(metric: str, op: str = ">", threshold: float = 0.5, **extra) -> dict:
    return {"metric": metric, "operator": op, "threshold": threshold, **extra}


def judge(result, *rules: dict, **policy):
    return decide(Policy(rules=list(rules), **policy), result, None)


# 1. The job's definitions are the truth.


def test_a_defined_metric_is_read_with_the_jobs_regex_only():
    # SageMaker applies `'eval_accuracy': ([0-9]\.[0-9])` to the dict line once and records 0.9.
    definitions = [{"Name": "eval_accuracy", "Regex": r"'eval_accuracy': ([0-9]\.[0-9])"}]
    _, result = collect(definitions, ("algo-1", [HF_DICT, *HF_SUMMARY]))
    accuracy = result.metrics["accuracy"]
    assert (accuracy.original_name, accuracy.raw, accuracy.matches, accuracy.source) == (
        "eval_accuracy",
        "0.9",
        1,
        "log",
    )
    assert [d.original_name for d in result.details if d.name == "accuracy"] == ["eval_accuracy"]


def test_defaults_skip_a_name_the_job_defines_even_when_no_line_matches_it():
    # The HPO style: the job defines validation:accuracy for a print style the run never produced.
    definitions = [{"Name": "validation:accuracy", "Regex": r"Validation-accuracy=([0-9.]+)"}]
    _, result = collect(definitions, ("algo-1", ["Epoch 3 - val_accuracy: 0.95 - val_loss: 0.2"]))
    assert "accuracy" not in result.metrics
    assert result.metrics["loss"].source == DEFAULT_SOURCE  # a name the job does not define is still read
    decision = judge(result, rule("accuracy", ">", 0.9))
    assert (decision.outcome, decision.reason_codes) == (Outcome.INCONCLUSIVE, [ReasonCode.METRIC_MISSING])


def test_defaults_fill_names_no_definition_names_and_say_so():
    definitions = [{"Name": "train:loss", "Regex": r"Train Loss: ([0-9.]+)"}]
    _, result = collect(
        definitions, ("algo-1", ["Train Loss: 0.3", "[INFO] Validation accuracy: 0.93", "{'eval_loss': 0.2}"])
    )
    sources = {d.original_name: d.source for d in result.details}
    assert sources == {"train:loss": "log", "Validation accuracy": DEFAULT_SOURCE, "eval_loss": DEFAULT_SOURCE}
    decision = judge(result, rule("accuracy", ">", 0.9))
    assert decision.outcome == Outcome.PASS and decision.rules[0].source == DEFAULT_SOURCE


def test_a_policy_can_refuse_default_values():
    _, result = collect([], ("algo-1", ["val_accuracy: 0.95"]))
    refused = judge(result, rule("accuracy", ">", 0.9), log_defaults="refuse")
    assert (refused.outcome, refused.reason_codes) == (Outcome.INCONCLUSIVE, [ReasonCode.METRIC_MISSING])
    assert "only by a default pattern (log-default)" in refused.reasons[0]
    # The same value from the job's own definition is judged.
    _, own = collect(
        [{"Name": "val_accuracy", "Regex": r"val_accuracy: ([0-9.]+)"}], ("algo-1", ["val_accuracy: 0.95"])
    )
    assert judge(own, rule("accuracy", ">", 0.9), log_defaults="refuse").outcome == Outcome.PASS


def test_a_rule_may_prefer_default_values():
    details = [
        MetricValue.from_raw("0.95", name="accuracy", original_name="val_acc", source="evaluation_file"),
        MetricValue.from_raw("0.85", name="accuracy", original_name="val_accuracy", source=DEFAULT_SOURCE, host="a"),
    ]
    assert judge(dict_of(details), rule("accuracy", ">", 0.9, source=DEFAULT_SOURCE)).outcome == Outcome.REJECT


def dict_of(details: list[MetricValue]):
    from training_gate.domain.metrics import combine

    return combine(details)


# 2. SageMaker's tolerance.

UNUSABLE = [
    ({"Name": "base_metric", "Regex": "<><><><><><>"}, "has no capture group"),
    ({"Name": "validation:auc", "Regex": r"auc=(\p{N}+)"}, "invalid regex"),  # Java accepts \p{N}; Python does not
    ({"Name": "accuracy", "Regex": "acc=([0-9.]+"}, "invalid regex"),
]


@pytest.mark.parametrize(("definition", "problem"), UNUSABLE)
def test_a_definition_sagemaker_accepts_never_fails_the_collection(definition: dict, problem: str):
    usable = {"Name": "f1", "Regex": r"f1=([0-9.]+)"}
    _, result = collect([definition, usable], ("algo-1", ["f1=0.8 auc=12 acc=0.97", "val_accuracy: 0.99"]))
    assert result.metrics["f1"].value == 0.8
    canonical = canonical_name(definition["Name"])
    assert canonical not in result.metrics  # no data, and no default in its place
    (warning,) = [w for w in result.warnings if problem in w]
    assert f"metric {definition['Name']!r}" in warning
    decision = judge(result, rule(canonical, ">", 0.1))
    assert (decision.outcome, decision.reason_codes) == (Outcome.INCONCLUSIVE, [ReasonCode.METRIC_MISSING])
    assert warning in decision.reasons[0]


def test_a_name_empty_once_canonicalised_is_a_warning_not_an_error():
    _, result = collect([{"Name": "   ", "Regex": r"x=([0-9.]+)"}], ("algo-1", ["x=1"]))
    assert result.metrics == {}
    assert result.warnings == [
        "MetricDefinitions: metric '   ': the name is empty once canonicalised, so no rule can name it"
    ]


@pytest.mark.parametrize("raw", ["(0.2285)", "n/a"])
@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
def test_a_non_numeric_capture_is_recorded_visible_and_never_passes(raw: str, op: str):
    scan, result = collect([{"Name": "validation:f1", "Regex": r"f1=(\S+)"}], ("algo-1", [f"f1={raw}"]))
    (detail,) = result.details
    assert (detail.raw, detail.value) == (raw, None)
    place = fidelity_report(scan, result)["metrics"]["f1"]["readings"][0]["hosts"]["algo-1"]
    assert (place["raw"], place["numeric"], place["value"]) == (raw, False, None)
    decision = judge(result, rule("f1", op, 0.0))
    assert decision.outcome != Outcome.PASS and not decision.rules[0].passed
    assert decision.rules[0].detail == f"f1 is {raw!r}, not a number"


def test_nan_is_numeric_but_not_finite():
    scan, result = collect([{"Name": "validation:f1", "Regex": r"f1=(\S+)"}], ("algo-1", ["f1=nan"]))
    assert fidelity_report(scan, result)["metrics"]["f1"]["readings"][0]["hosts"]["algo-1"]["numeric"] is True
    assert judge(result, rule("f1")).rules[0].detail == "f1 is 'nan', not a finite number"


# 3. No silent collisions.


@pytest.mark.parametrize("prefixed", ["validation:loss", "val_loss", "eval_loss", "valid_loss", "Validation loss"])
@pytest.mark.parametrize("order", [1, -1])
def test_a_validation_prefixed_name_outranks_an_unprefixed_one(prefixed: str, order: int):
    definitions = [
        {"Name": "loss", "Regex": r"train step loss ([0-9.]+)"},
        {"Name": prefixed, "Regex": r"held-out loss ([0-9.]+)"},
    ][::order]
    _, result = collect(definitions, ("algo-1", ["train step loss 0.2", "held-out loss 0.7"][::order]))
    assert result.metrics["loss"].original_name == prefixed and "loss" not in result.ambiguous
    decision = judge(result, rule("loss", "<", 0.5))  # judged on the validation loss, so it fails
    assert (decision.outcome, decision.rules[0].value) == (Outcome.REJECT, 0.7)


@pytest.mark.parametrize("train_name", ["train:loss", "train_loss", "Training loss"])
def test_a_training_name_never_stands_in_for_the_judged_metric(train_name: str):
    _, result = collect([{"Name": train_name, "Regex": r"loss ([0-9.]+)"}], ("algo-1", ["loss 0.1"]))
    assert "loss" not in result.metrics and result.metrics["train:loss"].value == 0.1
    assert judge(result, rule("loss", "<", 0.5)).reason_codes == [ReasonCode.METRIC_MISSING]


def test_two_names_of_the_same_rank_with_different_values_are_ambiguous():
    definitions = [
        {"Name": "eval_loss", "Regex": r"eval_loss=([0-9.]+)"},
        {"Name": "validation:loss", "Regex": r"vloss=([0-9.]+)"},
    ]
    _, result = collect(definitions, ("algo-1", ["eval_loss=0.3 vloss=0.6"]))
    assert result.ambiguous == {"loss": ["eval_loss", "validation:loss"]}
    decision = judge(result, rule("loss", "<", 0.5))
    assert (decision.outcome, decision.reason_codes) == (Outcome.INCONCLUSIVE, [ReasonCode.METRIC_AMBIGUOUS])
    assert "eval_loss=0.3" in decision.reasons[0] and "validation:loss=0.6" in decision.reasons[0]
    assert decision.observed_values() == {}  # an ambiguous value is never published as the metric
    assert "| loss (eval_loss / validation:loss) | ambiguous | < 0.5 |" in decision_table(decision)
    # A rule that names the exact original metric decides.
    exact = judge(result, rule("validation:loss", "<", 0.5, exact=True))
    assert (exact.outcome, exact.rules[0].value, exact.rules[0].original_name) == (
        Outcome.REJECT,
        0.6,
        "validation:loss",
    )
    assert judge(result, rule("eval_loss", "<", 0.5, exact=True)).outcome == Outcome.PASS


def test_names_of_the_same_rank_that_agree_are_not_ambiguous():
    definitions = [
        {"Name": "val_acc", "Regex": r"a=([0-9.]+)"},
        {"Name": "validation:accuracy", "Regex": r"b=([0-9.]+)"},
    ]
    _, result = collect(definitions, ("algo-1", ["a=0.90 b=0.9"]))
    assert result.ambiguous == {} and judge(result, rule("accuracy")).outcome == Outcome.PASS


def test_an_ambiguous_metric_is_inconclusive_even_against_a_champion():
    definitions = [{"Name": "eval_loss", "Regex": r"e=([0-9.]+)"}, {"Name": "val_loss", "Regex": r"v=([0-9.]+)"}]
    _, result = collect(definitions, ("algo-1", ["e=0.3 v=0.4"]))
    policy = Policy(rules=[rule("loss", "<", 0.5)], champion={"enabled": True})
    decision = decide(policy, result, None, Champion(model_package_arn="arn", metrics={"loss": 0.1}))
    assert (decision.outcome, decision.reason_codes) == (Outcome.INCONCLUSIVE, [ReasonCode.METRIC_AMBIGUOUS])


def test_each_warning_is_emitted_once_through_collection_and_decision():
    definitions = [{"Name": "base_metric", "Regex": "<><>"}, {"Name": "val_acc", "Regex": r"acc=([0-9.]+)"}]
    _, collected = collect(definitions, ("algo-1", ["acc=0.95"]), ("algo-2", ["acc=0.5"]))
    # What EvaluatePolicy does with CollectMetrics' result and the inspection's holdout values.
    holdout = [MetricValue.from_raw("0.94", name="accuracy", original_name="accuracy", source="holdout")]
    metrics = recombine(collected, holdout)
    assert len(collected.warnings) == 2 and metrics.warnings == collected.warnings
    decision = decide(Policy(rules=[rule("accuracy", ">", 0.9)]), metrics, None)
    assert len(decision.warnings) == len(set(decision.warnings)) == 2
    assert metrics.unavailable == collected.unavailable == {"base_metric": collected.warnings[0]}


# Multi-host.


@pytest.mark.parametrize("definitions", [[{"Name": "eval_loss", "Regex": r"'eval_loss': ([0-9.]+)"}], []])
def test_only_algo_1_logs_evaluation_lines(definitions: list):
    algo_1 = ["{'loss': 0.9}", "{'eval_loss': 0.42}"]
    algo_2 = ["{'loss': 0.8}", "{'loss': 0.7}"]
    scan, result = collect(definitions, ("algo-1", algo_1), ("algo-2", algo_2))
    assert (result.metrics["loss"].host, result.metrics["loss"].raw) == ("algo-1", "0.42")
    assert result.warnings == []
    readings = fidelity_report(scan, result)["metrics"]["loss"]["readings"]
    (reading,) = [r for r in readings if r["original_name"] == "eval_loss" and r["applied"]]
    assert reading["hosts"]["algo-1"]["chosen"] is True
    if definitions:  # the job's definition is reported for every host, matched or not
        assert reading["hosts"]["algo-2"] == {
            "matches": 0,
            "raw": None,
            "value": None,
            "numeric": False,
            "chosen": False,
            "not_chosen": "no line matched",
        }
    else:
        assert set(reading["hosts"]) == {"algo-1"}


def test_another_host_is_reported_only_when_the_primary_has_nothing():
    definitions = [{"Name": "eval_loss", "Regex": r"eval_loss=([0-9.]+)"}]
    _, result = collect(definitions, ("algo-1", ["training"]), ("algo-2", ["eval_loss=0.5"]))
    assert result.metrics["loss"].host == "algo-2"


# 4. Fidelity report.


def test_the_fidelity_report_says_which_definition_was_used_and_why_others_were_not():
    definitions = [
        {"Name": "loss", "Regex": r"'loss': ([0-9.]+)"},
        {"Name": "eval_loss", "Regex": r"'eval_loss': ([0-9.]+)"},
        {"Name": "base_metric", "Regex": "<><><><><><>"},
    ]
    scan, result = collect(definitions, ("algo-1", ["{'loss': 0.7}", HF_DICT, "eval_loss: 0.9"]), ("algo-2", []))
    document = metrics_document(scan, result)
    assert set(document) == {"metrics", "details", "warnings", "fidelity"}
    assert document["metrics"] == {"loss": 0.61, "accuracy": 0.9181768259198243}  # accuracy: no definition names it
    report = document["fidelity"]
    assert [(d["name"], d["usable"]) for d in report["definitions"]] == [
        ("loss", True),
        ("eval_loss", True),
        ("base_metric", False),
    ]
    assert report["metrics"]["base_metric"]["unavailable"].endswith("has no capture group, so it records no data")
    loss = report["metrics"]["loss"]
    assert loss["chosen"] == {
        "original_name": "eval_loss",
        "source": "log",
        "host": "algo-1",
        "raw": "0.61",
        "value": 0.61,
    }
    why = {
        (r["original_name"], r["definition"], host): (place["matches"], place["raw"], place["not_chosen"])
        for r in loss["readings"]
        for host, place in r["hosts"].items()
    }
    assert why == {
        ("loss", "job", "algo-1"): (1, "0.7", "eval_loss is validation-prefixed and ranks above loss"),
        ("loss", "job", "algo-2"): (0, None, "no line matched"),
        ("eval_loss", "job", "algo-1"): (1, "0.61", None),
        ("eval_loss", "job", "algo-2"): (0, None, "no line matched"),
        ("eval_loss", "default", "algo-1"): (
            2,
            "0.9",
            "default pattern not applied: the job's MetricDefinitions name loss",
        ),
    }
    (default,) = [r for r in loss["readings"] if r["definition"] == "default"]
    assert default["regex"] and default["applied"] is False and default["source"] == DEFAULT_SOURCE


# 5. Nothing shifts under existing users.


def test_new_policy_fields_at_their_defaults_leave_the_hash_alone():
    base = Policy(rules=[rule("accuracy")])
    explicit = Policy(rules=[rule("accuracy", exact=False)], log_defaults="accept")
    assert explicit.sha256() == base.sha256()
    assert Policy(rules=[rule("accuracy")], log_defaults="refuse").sha256() != base.sha256()
    assert Policy(rules=[rule("accuracy", exact=True)]).sha256() != base.sha256()


def test_an_exact_rule_keeps_its_name_and_a_plain_one_is_canonicalised():
    assert Policy(rules=[rule("eval_loss", exact=True)]).rules[0].metric == "eval_loss"
    assert Policy(rules=[rule("eval_loss")]).rules[0].metric == "loss"
    with pytest.raises(ValidationError):
        Policy(rules=[rule("eval_loss", exact="true")])
    with pytest.raises(ValidationError):
        Policy(rules=[rule("loss")], log_defaults="sometimes")
