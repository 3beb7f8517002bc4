"""Collect a training job's metrics from FinalMetricDataList and its CloudWatch log streams."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from training_gate.dal.aws import ArtifactStore, TrainingJobMetrics, TrainingLogs, host_of_stream
from training_gate.domain.metrics import (
    DEFAULT_PATTERNS,
    MetricPattern,
    StreamMetrics,
    build_filter_pattern,
    canonical_name,
    combine,
    compile_definitions,
    compile_usable_definitions,
    final_metric_values,
    parse_stream,
    stream_values,
)
from training_gate.domain.models import MetricsResult, MetricValue
from training_gate.logic.evaluation_files import evaluation_metrics_from_output


def with_defaults(patterns: list[MetricPattern], use_default_patterns: bool = True) -> list[MetricPattern]:
    return [*patterns, *DEFAULT_PATTERNS] if use_default_patterns else patterns


def values_from_hosts(hosts: Iterable[StreamMetrics], patterns: list[MetricPattern]) -> list[MetricValue]:
    """Per-host values; a default pattern only fills a metric the job's own definitions do not give."""
    defined_names = {p.name for p in patterns if p.name is not None}
    values: list[MetricValue] = []
    for host in hosts:
        found = stream_values(host)
        by_definition = {v.name for v in found if v.original_name in defined_names}
        values += [v for v in found if v.original_name in defined_names or v.name not in by_definition]
    return values


def metrics_from_streams(
    streams: Iterable[tuple[str, Iterable[str]]],
    definitions: list[dict[str, Any]],
    use_default_patterns: bool = True,
) -> list[MetricValue]:
    """Parse local streams (one per host, as lines) exactly as CloudWatch streams are parsed."""
    patterns = with_defaults(compile_definitions(definitions), use_default_patterns)
    return values_from_hosts((parse_stream(host, lines, patterns) for host, lines in streams), patterns)


def scan_pages(pages: Iterable[list[tuple[str, str]]], patterns: list[MetricPattern]) -> dict[str, StreamMetrics]:
    """Scan CloudWatch pages host by host. Messages are joined with newlines, so a message holding
    several lines is split exactly where SageMaker splits it, and nowhere else."""
    hosts: dict[str, StreamMetrics] = {}
    for page in pages:
        by_host: dict[str, list[str]] = {}
        for stream, message in page:
            by_host.setdefault(host_of_stream(stream), []).append(message)
        for host, messages in by_host.items():
            hosts.setdefault(host, StreamMetrics(host=host)).scan("\n".join(messages), patterns)
    return hosts


def _timestamp(value: Any, default: datetime) -> datetime:
    """Step Functions hands timestamps over as ISO strings (or epoch seconds); anything else: default."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return default
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return default


def cloudwatch_metric_values(job: dict[str, Any], reader: TrainingJobMetrics) -> list[MetricValue]:
    names = [d["Name"] for d in job.get("AlgorithmSpecification", {}).get("MetricDefinitions") or [] if "Name" in d]
    if not names:
        return []
    now = datetime.now(UTC)
    start = _timestamp(job.get("TrainingStartTime") or job.get("CreationTime"), now - timedelta(days=14))
    end = _timestamp(job.get("TrainingEndTime"), now) + timedelta(minutes=5)
    latest = reader.latest(job["TrainingJobName"], names, start - timedelta(minutes=5), end)
    return [
        MetricValue.from_raw(
            repr(float(value)), name=canonical_name(name), original_name=name, source="cloudwatch_metric"
        )
        for name, value in latest.items()
    ]


def collect_job_metrics(
    job: dict[str, Any],
    logs: TrainingLogs,
    store: ArtifactStore | None = None,
    cloudwatch: TrainingJobMetrics | None = None,
) -> MetricsResult:
    """Every source the job offers: FinalMetricDataList, its log streams, evaluation files in its
    output, and (when a reader is given) its CloudWatch metrics."""
    job_name = job["TrainingJobName"]
    definitions = job.get("AlgorithmSpecification", {}).get("MetricDefinitions") or []
    # A job's broken definition is reported, not fatal: the other sources may still decide.
    usable, problems = compile_usable_definitions(definitions)
    definition_warnings = [f"MetricDefinitions: {problem}" for problem in problems]
    patterns = with_defaults(usable)
    details = final_metric_values(job.get("FinalMetricDataList") or [])
    stream_names = logs.stream_names(job_name)
    hosts = scan_pages(logs.pages(stream_names, build_filter_pattern(patterns)), patterns)
    details += values_from_hosts(hosts.values(), patterns)
    if cloudwatch is not None:
        details += cloudwatch_metric_values(job, cloudwatch)
    warning = None
    if store is not None:
        from_files, warning = evaluation_metrics_from_output(job, store)
        details += from_files
    result = combine(details)
    result.warnings[:0] = definition_warnings
    if warning:
        result.warnings.append(warning)
    result.log_streams = len(stream_names)
    if not stream_names:
        result.warnings.append(f"no logs: the job has no log streams under {job_name}/")
    return result
