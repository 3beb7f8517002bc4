"""Powertools instances shared by the handlers of one function (one function per module import)."""

from collections.abc import Mapping

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

NAMESPACE = "TrainingGate"
logger = Logger()
# Nothing is patched by default: patch_all would import and wrap requests, httplib, sqlite3 and more
# at every cold start, and the functions make no outbound calls but boto's.
tracer = Tracer(auto_patch=False)
metrics = Metrics(namespace=NAMESPACE)
# Every handler correlates its logs by the training job name it works on.
JOB_NAME_PATH = "job.training_job_name"


def trace_aws_calls() -> None:
    """A subsegment for every boto call; called at import by the handlers that reach AWS."""
    tracer.patch(["botocore"])


def publish_metric_values(group: str, values: Mapping[str, float]) -> None:
    """One `MetricValue` per judged metric, with the metric and the model package group as dimensions.

    Each goes out in its own EMF document, so its dimensions never mix with the handler's other
    metrics; the job name is deliberately not a dimension (one time series per job is unbounded)."""
    for name, value in values.items():
        document = EphemeralMetrics(namespace=NAMESPACE)
        document.add_dimension(name="ModelPackageGroup", value=group)
        document.add_dimension(name="Metric", value=name)
        document.add_metric(name="MetricValue", unit=MetricUnit.NoUnit, value=value)
        document.flush_metrics()  # honours POWERTOOLS_METRICS_DISABLED, as the handler's metrics do
