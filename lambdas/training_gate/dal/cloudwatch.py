"""Algorithm metrics SageMaker publishes to CloudWatch for a training job."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from training_gate.constants import TRAINING_METRICS_NAMESPACE
from training_gate.dal.clients import client


class TrainingJobMetrics:
    """Read the way the SageMaker SDK reads them: dimension TrainingJobName, statistic Average."""

    MAX_DATAPOINTS = 1440  # GetMetricStatistics' limit per call

    def __init__(self, cloudwatch: Any | None = None):
        self._cloudwatch = cloudwatch or client("cloudwatch")
        self.api_calls = 0

    def latest(
        self, training_job_name: str, metric_names: list[str], start: datetime, end: datetime
    ) -> dict[str, float]:
        seconds = max((end - start).total_seconds(), 60.0)
        period = max(60, math.ceil(seconds / self.MAX_DATAPOINTS / 60) * 60)
        latest: dict[str, float] = {}
        for name in metric_names:
            self.api_calls += 1
            points = self._cloudwatch.get_metric_statistics(
                Namespace=TRAINING_METRICS_NAMESPACE,
                MetricName=name,
                Dimensions=[{"Name": "TrainingJobName", "Value": training_job_name}],
                StartTime=start,
                EndTime=end,
                Period=period,
                Statistics=["Average"],
            ).get("Datapoints", [])
            if points:
                latest[name] = max(points, key=lambda p: p["Timestamp"])["Average"]
        return latest
