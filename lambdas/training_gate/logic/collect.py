"""Collect a training job's metrics from FinalMetricDataList and its CloudWatch log streams."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from training_gate.dal.cloudwatch import TrainingJobMetrics
from training_gate.dal.logs import TrainingLogs, host_of_stream
from training_gate.dal.s3 import ArtifactStore
from training_gate.dal.sagemaker import TrainingJobs
from training_gate.domain.contract import JobMetricSources, MetricsSummary, TrainingJob, bounded_warnings
from training_gate.domain.metrics import (
    LogScan,
    MetricPattern,
    StreamMetrics,
    build_filter_pattern,
    canonical_name,
    check_definitions,
    combine,
    fidelity_report,
    final_metric_values,
    log_patterns,
    scan_streams,
    unavailable_metrics,
)
from training_gate.domain.models import MetricsResult, MetricValue
from training_gate.domain.report_document import report_prefix
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


def cloudwatch_metric_values(
    job: TrainingJob, sources: JobMetricSources, reader: TrainingJobMetrics
) -> list[MetricValue]:
    names = [d.Name for d in sources.metric_definitions if d.Name]
    if not names:
        return []
    now = datetime.now(UTC)
    start = _timestamp(job.training_start_time or job.creation_time, now - timedelta(days=14))
    end = _timestamp(job.training_end_time, now) + timedelta(minutes=5)
    latest = reader.latest(job.training_job_name, names, start - timedelta(minutes=5), end)
    return [
        MetricValue.from_raw(
            repr(float(value)), name=canonical_name(name), original_name=name, source="cloudwatch_metric"
        )
        for name, value in latest.items()
    ]


def collect_job_metrics(
    job: TrainingJob,
    sources: JobMetricSources,
    logs: TrainingLogs,
    store: ArtifactStore | None = None,
    cloudwatch: TrainingJobMetrics | None = None,
) -> MetricsResult:
    """Every source the job offers: FinalMetricDataList, its log streams, evaluation files in its
    output, and (when a reader is given) its CloudWatch metrics."""
    return scan_job_metrics(job, sources, logs, store, cloudwatch)[0]


def scan_job_metrics(
    job: TrainingJob,
    sources: JobMetricSources,
    logs: TrainingLogs,
    store: ArtifactStore | None = None,
    cloudwatch: TrainingJobMetrics | None = None,
) -> tuple[MetricsResult, LogScan]:
    """The metrics, and the log scan that says how each was read (the fidelity report's input)."""
    job_name = job.training_job_name
    definitions = [d.model_dump() for d in sources.metric_definitions]
    # A definition the gate cannot apply is a warning and records no data, as in SageMaker.
    checks = check_definitions(definitions)
    patterns = log_patterns(checks)
    details = final_metric_values([m.model_dump() for m in sources.final_metrics if m.Value is not None])
    stream_names = logs.stream_names(job_name)
    scan = LogScan(checks=checks, hosts=scan_pages(logs.pages(stream_names, build_filter_pattern(patterns)), patterns))
    details += scan.values()
    if cloudwatch is not None:
        details += cloudwatch_metric_values(job, sources, cloudwatch)
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
    result.warnings = list(dict.fromkeys(result.warnings))
    return result, scan


METRIC_NAMES_IN_STATE = 100


def summarize(result: MetricsResult, metrics_uri: str | None, fidelity_uri: str | None = None) -> MetricsSummary:
    """The bounded hand-off: the full result stays in S3 at `metrics_uri`."""
    warnings, total = bounded_warnings(result.warnings)
    names = sorted(result.metrics)
    return MetricsSummary(
        metrics_uri=metrics_uri,
        fidelity_uri=fidelity_uri,
        metric_names=[n[:128] for n in names[:METRIC_NAMES_IN_STATE]],
        metrics_total=len(names),
        warnings=warnings,
        warnings_total=total,
        log_streams=result.log_streams,
    )


def collect_metrics(
    job: TrainingJob,
    jobs: TrainingJobs,
    logs: TrainingLogs,
    store: ArtifactStore,
    reports_bucket: str | None,
    execution_name: str,
    cloudwatch: TrainingJobMetrics | None = None,
) -> MetricsSummary:
    """CollectMetrics' use case: read every source, keep the full result in S3, hand over a summary."""
    sources = jobs.describe(job.training_job_name).sources
    result, scan = scan_job_metrics(job, sources, logs, store, cloudwatch)
    metrics_uri = fidelity_uri = None
    if reports_bucket:
        prefix = report_prefix(job.training_job_name, execution_name)
        metrics_uri, _ = store.put_json(reports_bucket, f"{prefix}/metrics.json", result.model_dump(mode="json"))
        # How each metric was read, host by host: bulky with many hosts, so beside the report.
        fidelity_uri, _ = store.put_json(reports_bucket, f"{prefix}/fidelity.json", fidelity_report(scan, result))
    return summarize(result, metrics_uri, fidelity_uri)
