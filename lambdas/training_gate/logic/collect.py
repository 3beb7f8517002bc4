"""Collect a training job's metrics from FinalMetricDataList and its CloudWatch log streams."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from training_gate.dal.aws import TrainingLogs, host_of_stream
from training_gate.domain.metrics import (
    DEFAULT_PATTERNS,
    MetricPattern,
    combine,
    compile_definitions,
    final_metric_values,
    parse_stream,
    split_lines,
    stream_values,
)
from training_gate.domain.models import MetricsResult, MetricValue


def _lines(messages: Iterable[str]) -> Iterator[str]:
    for message in messages:
        yield from split_lines(message)


def metrics_from_streams(
    streams: Iterable[tuple[str, Iterable[str]]],
    definitions: list[dict[str, str]],
    use_default_patterns: bool = True,
) -> list[MetricValue]:
    """Parse each host's lines with the job's MetricDefinitions, then the default patterns for the
    names the definitions do not already give."""
    defined = compile_definitions(definitions)
    defined_names = {d.name for d in defined}
    values: list[MetricValue] = []
    for host, lines in streams:
        patterns: list[MetricPattern] = list(defined)
        if use_default_patterns:
            patterns += DEFAULT_PATTERNS
        found = stream_values(parse_stream(host, lines, patterns))
        by_definition = {v.name for v in found if v.original_name in defined_names}
        values += [v for v in found if v.original_name in defined_names or v.name not in by_definition]
    return values


def collect_job_metrics(job: dict[str, Any], logs: TrainingLogs) -> MetricsResult:
    job_name = job["TrainingJobName"]
    definitions = job.get("AlgorithmSpecification", {}).get("MetricDefinitions") or []
    details = final_metric_values(job.get("FinalMetricDataList") or [])
    stream_names = logs.stream_names(job_name)
    streams = ((host_of_stream(name), _lines(logs.messages(name))) for name in stream_names)
    details += metrics_from_streams(streams, definitions)
    result = combine(details)
    result.log_streams = len(stream_names)
    if not stream_names:
        result.warnings.append(f"no logs: the job has no log streams under {job_name}/")
    return result
