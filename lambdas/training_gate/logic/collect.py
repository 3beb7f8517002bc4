"""Collect a training job's metrics from FinalMetricDataList and its CloudWatch log streams."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from training_gate.dal.aws import ArtifactStore, TrainingJobMetrics, TrainingLogs, host_of_stream
from training_gate.domain.metrics import (
    LogScan,
    MetricPattern,
    StreamMetrics,
    build_filter_pattern,
    canonical_name,
    check_definitions,
    combine,
    final_metric_values,
    log_patterns,
    scan_streams,
    unavailable_metrics,
)
from training_gate.domain.models import MetricsResult, MetricValue
from training_gate.logic.evaluation_files import evaluation_metrics_from_output


def metrics_from_streams(
    streams: Iterable[tuple[str, Iterable[str]]],
    definitions: list[dict[str, Any]],
    use_default_patterns: bool = True,
) -> list[MetricValue]:
    """Parse local streams (one per host, as lines) exactly as CloudWatch streams are parsed."""
    return scan_streams(streams, definitions, use_default_patterns).values()


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
    # A definition the gate cannot apply is a warning and records no data, as in SageMaker.
    checks = check_definitions(definitions)
    patterns = log_patterns(checks)
    details = final_metric_values(job.get("FinalMetricDataList") or [])
    stream_names = logs.stream_names(job_name)
    scan = LogScan(checks=checks, hosts=scan_pages(logs.pages(stream_names, build_filter_pattern(patterns)), patterns))
    details += scan.values()
    if cloudwatch is not None:
        details += cloudwatch_metric_values(job, cloudwatch)
    warning = None
    if store is not None:
        from_files, warning = evaluation_metrics_from_output(job, store)
        details += from_files
    result = combine(details)
    result.warnings[:0] = scan.warnings()
    result.unavailable = unavailable_metrics(checks)
    if warning:
        result.warnings.append(warning)
    result.log_streams = len(stream_names)
    if not stream_names:
        result.warnings.append(f"no logs: the job has no log streams under {job_name}/")
    return result
