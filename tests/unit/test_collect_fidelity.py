"""The deployed path (CollectMetrics, then EvaluatePolicy's re-choice) under the metric rules, with
CloudWatch Logs replaced by streams in memory that honour the filterPattern the collector sends."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tests.support.builders import sources, training_job
from training_gate.domain.metrics import DEFAULT_SOURCE, recombine
from training_gate.domain.models import MetricValue
from training_gate.domain.policy import Outcome, Policy, ReasonCode, decide
from training_gate.logic.collect import collect_job_metrics

HF_ALGO_1 = [
    "{'loss': 0.7, 'learning_rate': 2e-05, 'epoch': 1.0}",
    "{'eval_loss': 0.61, 'eval_accuracy': 0.9181768259198243, 'eval_f1': 0.8, 'epoch': 1.0}",
    "eval_loss: 0.61",
    "eval_accuracy: 0.9181768259198243",
]
HF_ALGO_2 = ["{'loss': 0.69, 'learning_rate': 2e-05, 'epoch': 1.0}"]


class StreamsInMemory:
    def __init__(self, streams: dict[str, list[str]]) -> None:
        self.streams = streams
        self.filter_patterns: list[str | None] = []

    def stream_names(self, job_name: str) -> list[str]:
        return [name for name in self.streams if name.startswith(f"{job_name}/")]

    def pages(self, stream_names: list[str], filter_pattern: str | None = None) -> Iterator[list[tuple[str, str]]]:
        self.filter_patterns.append(filter_pattern)
        terms = re.findall(r'\?"([^"]*)"', filter_pattern) if filter_pattern else None
        yield [
            (name, line)
            for name in stream_names
            for line in self.streams[name]
            if terms is None or any(term in line for term in terms)
        ]


def collect(definitions: list[dict[str, str]]):
    logs = StreamsInMemory({"hf/algo-1-1700000000": HF_ALGO_1, "hf/algo-2-1700000000": HF_ALGO_2})
    return collect_job_metrics(training_job("hf"), sources(definitions), logs)  # type: ignore[arg-type]


def test_the_collector_reads_a_defined_metric_with_the_jobs_regex_only():
    result = collect([{"Name": "eval_accuracy", "Regex": r"'eval_accuracy': ([0-9]\.[0-9])"}])
    accuracy = result.metrics["accuracy"]
    assert (accuracy.raw, accuracy.matches, accuracy.host, accuracy.source) == ("0.9", 1, "algo-1", "log")
    # Names the job does not define still come from the defaults, marked as such.
    assert result.metrics["loss"].source == result.metrics["f1"].source == DEFAULT_SOURCE
    assert result.metrics["loss"].original_name == "eval_loss"


def test_a_placeholder_definition_is_one_warning_and_a_missing_metric_that_says_why():
    definitions = [
        {"Name": "base_metric", "Regex": "<><><><><><>"},
        {"Name": "eval_loss", "Regex": r"'eval_loss': ([0-9.]+)"},
    ]
    collected = collect(definitions)
    assert collected.metrics["loss"].raw == "0.61" and collected.log_streams == 2
    placeholder = "MetricDefinitions: metric 'base_metric': regex '<><><><><><>' has no capture group"
    assert [w for w in collected.warnings if w.startswith(placeholder)] == [collected.unavailable["base_metric"]]
    # What EvaluatePolicy does: the state's result, re-chosen with the inspection's holdout values.
    holdout = [MetricValue.from_raw("0.93", name="accuracy", original_name="accuracy", source="holdout")]
    metrics = recombine(collected, holdout)
    policy = Policy(
        rules=[
            {"metric": "base_metric", "operator": ">", "threshold": 0.0},
            {"metric": "loss", "operator": "<", "threshold": 0.7},
        ]
    )
    decision = decide(policy, metrics, None)
    assert (decision.outcome, decision.reason_codes) == (Outcome.INCONCLUSIVE, [ReasonCode.METRIC_MISSING])
    assert collected.unavailable["base_metric"] in decision.reasons[0]
    assert len(decision.warnings) == len(set(decision.warnings))
    assert metrics.log_streams == 2
