"""Metric extraction under SageMaker's semantics, checked against real training logs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from training_gate.domain.metrics import (
    DEFAULT_PATTERNS,
    MetricDefinitionError,
    canonical_name,
    combine,
    compile_definitions,
    final_metric_values,
    parse_stream,
    stream_values,
)
from training_gate.domain.models import MetricValue
from training_gate.logic.collect import metrics_from_streams

CORPUS = FIXTURES / "sagemaker-logs"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and (p / "log.txt").exists())


def _lines(path: Path) -> list[str]:
    # newline="" keeps "\r" inside lines: CloudWatch lines are split on "\n" only.
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read().split("\n")


@pytest.mark.parametrize("case", CASES)
def test_corpus_final_values_match_sagemaker_semantics(case: str):
    # GIVEN a real log and the MetricDefinitions published for it
    folder = CORPUS / case
    definitions = json.loads((folder / "metric_definitions.json").read_text())
    expected = json.loads((folder / "expected.json").read_text())
    # WHEN parsed with the definitions only (what SageMaker itself applies)
    found = parse_stream("algo-1", _lines(folder / "log.txt"), compile_definitions(definitions)).values
    # THEN every metric has SageMaker's last match and match count; unmatched ones are absent
    for name, want in expected.items():
        if want["count"] == 0:
            assert name not in found, name
            continue
        assert found[name].raw == want["raw"], name
        assert found[name].matches == want["count"], name


def test_non_finite_and_non_numeric_captures_have_no_value():
    folder = CORPUS / "A1_adv_nan_inf"
    definitions = json.loads((folder / "metric_definitions.json").read_text())
    values = {
        v.original_name: v
        for v in stream_values(parse_stream("algo-1", _lines(folder / "log.txt"), compile_definitions(definitions)))
    }
    assert values["train:loss"].raw == "nan" and values["train:loss"].value is None
    assert values["test:loss"].value is None
    assert math.isclose(values["test:accuracy"].value, 0.9221369316030429)


def test_multi_host_job_reports_algo_1_and_keeps_every_host():
    folder = CORPUS / "A3_adv_multihost_pytorch_mnist"
    definitions = json.loads((folder / "metric_definitions.json").read_text())
    per_host = json.loads((folder / "expected_per_stream.json").read_text())
    streams = [(p.stem, _lines(p)) for p in sorted((folder / "streams").glob("*.txt"))]
    details = metrics_from_streams(streams, definitions, use_default_patterns=False)
    result = combine(details)
    assert result.metrics["train:loss"].host == "algo-1"
    assert result.metrics["train:loss"].raw == per_host["algo-1"]["train:loss"]["raw"]
    hosts = {d.host: d.raw for d in details if d.original_name == "train:loss"}
    assert hosts == {h: per_host[h]["train:loss"]["raw"] for h in ("algo-1", "algo-2")}


@pytest.mark.parametrize(
    ("original", "canonical"),
    [
        ("validation:accuracy", "accuracy"),
        ("val_accuracy", "accuracy"),
        ("eval_accuracy", "accuracy"),
        ("Accuracy", "accuracy"),
        ("acc", "accuracy"),
        ("F1-Score", "f1"),
        ("validation:auc", "auc"),
        ("roc_auc", "auc"),
        ("AUC", "auc"),
        ("Training accuracy", "train:accuracy"),
        ("train:loss", "train:loss"),
        ("test:accuracy", "test:accuracy"),
    ],
)
def test_canonical_names(original: str, canonical: str):
    assert canonical_name(original) == canonical


def test_training_accuracy_never_stands_in_for_validation_accuracy():
    assert canonical_name("Training accuracy") != canonical_name("Validation accuracy")


def test_default_patterns_read_the_common_print_styles():
    lines = [
        "[INFO] Validation accuracy: 0.905",
        "Epoch 3/3 - loss: 0.31 - val_accuracy: 0.9050",
        "{'eval_accuracy': 0.91, 'eval_loss': 0.2}",
        "[10]#011train-auc:0.95#011validation-auc:0.91",
    ]
    found = {
        name: entry.raw
        for line in lines
        for name, entry in parse_stream("algo-1", [line], DEFAULT_PATTERNS).defaults.items()
    }
    assert found["Validation accuracy"] == "0.905"
    assert found["val_accuracy"] == "0.9050"
    assert found["eval_accuracy"] == "0.91"
    assert found["validation-auc"] == "0.91"


def test_strict_compilation_names_the_metric_of_an_unusable_definition():
    with pytest.raises(MetricDefinitionError, match="'validation:auc'"):
        compile_definitions([{"Name": "validation:auc", "Regex": "auc: ([0-9"}])
    with pytest.raises(MetricDefinitionError, match="no capture group"):
        compile_definitions([{"Name": "loss", "Regex": "loss: [0-9.]+"}])


def test_long_lines_are_searched_without_crashing():
    line = "x" * 5000 + " val_accuracy: 0.5"
    assert parse_stream("algo-1", [line], DEFAULT_PATTERNS).defaults["val_accuracy"].raw == "0.5"


def test_sources_disagreeing_is_a_warning_and_final_metric_wins():
    details = [
        *final_metric_values([{"MetricName": "validation:accuracy", "Value": 0.95}]),
        MetricValue.from_raw("0.80", name="accuracy", original_name="Validation accuracy", source="log", host="algo-1"),
    ]
    result = combine(details)
    assert result.metrics["accuracy"].source == "final_metric"
    assert any("accuracy" in w and "log says 0.80" in w for w in result.warnings)


def test_two_names_for_one_metric_in_one_place_is_reported_as_ambiguous():
    details = [
        MetricValue.from_raw("0.9", name="accuracy", original_name="val_acc", source="log", host="algo-1"),
        MetricValue.from_raw("0.7", name="accuracy", original_name="validation:accuracy", source="log", host="algo-1"),
    ]
    assert any("ambiguous" in w for w in combine(details).warnings)


def naive_final_values(lines: list[str], patterns) -> dict[str, tuple[str, int]]:
    """The obvious reference: every line, every pattern, in order."""
    found: dict[str, tuple[str, int]] = {}
    for line in lines:
        for pattern in patterns:
            for name, raw in pattern.names_in(line):
                found[name] = (raw, found.get(name, ("", 0))[1] + 1)
    return found


def scanned(lines: list[str], definitions: list, defaults=DEFAULT_PATTERNS) -> tuple[dict, dict]:
    """The scanner's job values and default values, as (raw, matches) by name."""
    stream = parse_stream("h", lines, [*definitions, *defaults])
    return (
        {k: (v.raw, v.matches) for k, v in stream.values.items()},
        {k: (v.raw, v.matches) for k, v in stream.defaults.items()},
    )


@pytest.mark.parametrize("case", CASES)
def test_literal_prefiltered_scan_equals_the_naive_loop_on_real_logs(case: str):
    folder = CORPUS / case
    definitions = compile_definitions(json.loads((folder / "metric_definitions.json").read_text()))
    lines = _lines(folder / "log.txt")
    own, defaults = scanned(lines, definitions)
    assert own == naive_final_values(lines, definitions)
    assert defaults == naive_final_values(lines, DEFAULT_PATTERNS)


@pytest.mark.parametrize(
    ("regex", "literal"),
    [
        (r".*Validation accuracy: ([0-9\.]+)", "Validation accuracy: "),
        (r"#011validation-auc:(\S+)", "#011validation-auc:"),
        (r"Epoch\[\d+\] Validation-accuracy=([0-9\.]+)", "] Validation-accuracy="),
        (r"(?:loss|acc): ([0-9.]+)", ": "),
        (r"(?i)accuracy: ([0-9.]+)", None),
        (r"[0-9]+ (\S+)", " "),
    ],
)
def test_required_literal_is_a_substring_every_match_must_contain(regex: str, literal: str | None):
    from training_gate.domain.metrics import required_literal

    assert required_literal(__import__("re").compile(regex)) == literal


@given(
    lines=st.lists(st.text(alphabet="ab :=.\r\t0123456789valcuryVLinfo[]_-#", max_size=40), max_size=40),
    regex=st.sampled_from([r".*a: ([0-9.]+)", r"val_(\w+)", r"(?:ab|ba)=(\d+)", r"\[(\w*)\]", r"^a(.)"]),
)
def test_scan_equals_the_naive_loop_for_any_lines(lines: list[str], regex: str):
    definitions = compile_definitions([{"Name": "m", "Regex": regex}, {"Name": "val_a", "Regex": r"val_a: (\S*)"}])
    own, defaults = scanned(lines, definitions)
    assert own == naive_final_values(lines, definitions)
    assert defaults == naive_final_values(lines, DEFAULT_PATTERNS)


def test_a_metric_defined_twice_is_refused():
    with pytest.raises(MetricDefinitionError, match="defined twice"):
        compile_definitions([{"Name": "acc", "Regex": "a(.)"}, {"Name": "acc", "Regex": "b(.)"}])


def test_evaluation_files_flat_and_model_monitor_style():
    from training_gate.domain.metrics import evaluation_file_values

    flat = evaluation_file_values({"accuracy": 0.91, "model": "rf", "f1": "nan", "ok": True}, "output:evaluation.json")
    assert [(v.name, v.raw, v.value) for v in flat] == [("accuracy", "0.91", 0.91), ("f1", "nan", None)]
    assert flat[0].source == "evaluation_file" and flat[0].location == "output:evaluation.json"
    monitor = evaluation_file_values(
        {"multiclass_classification_metrics": {"accuracy": {"value": 0.93, "standard_deviation": 0.01}}}, "m"
    )
    assert [(v.name, v.value) for v in monitor] == [("accuracy", 0.93)]
    assert evaluation_file_values(["not", "an", "object"], "m") == []


def test_hosts_that_disagree_beyond_the_tolerance_are_a_warning():
    details = [
        MetricValue.from_raw("0.91", name="accuracy", original_name="val_acc", source="log", host="algo-1"),
        MetricValue.from_raw("0.85", name="accuracy", original_name="val_acc", source="log", host="algo-2"),
        MetricValue.from_raw("0.5", name="loss", original_name="val_loss", source="log", host="algo-1"),
        MetricValue.from_raw("0.505", name="loss", original_name="val_loss", source="log", host="algo-2"),
    ]
    result = combine(details)
    assert result.metrics["accuracy"].host == "algo-1"
    assert result.warnings == ["accuracy: hosts disagree (0.85 to 0.91); reporting algo-1 (0.91)"]
