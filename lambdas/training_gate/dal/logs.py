"""A training job's CloudWatch log streams."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from training_gate.constants import TRAINING_LOG_GROUP
from training_gate.dal.clients import ClientError, client, error_code

_HOST_IN_STREAM = re.compile(r"/(?P<host>algo-\d+)(?:-\d+)?$")


def host_of_stream(stream_name: str) -> str:
    match = _HOST_IN_STREAM.search(stream_name)
    return match.group("host") if match else stream_name.rsplit("/", 1)[-1]


class TrainingLogs:
    """Reads a training job's log streams, page by page, counting API calls."""

    MAX_STREAMS_PER_CALL = 100  # FilterLogEvents accepts at most 100 logStreamNames

    def __init__(self, logs: Any | None = None, log_group: str = TRAINING_LOG_GROUP):
        self._logs = logs or client("logs")
        self._group = log_group
        self.api_calls = 0

    def stream_names(self, training_job_name: str) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": self._group, "logStreamNamePrefix": f"{training_job_name}/"}
        try:
            while True:
                self.api_calls += 1
                page = self._logs.describe_log_streams(**kwargs)
                names += [s["logStreamName"] for s in page.get("logStreams", [])]
                if not page.get("nextToken"):
                    return names
                kwargs["nextToken"] = page["nextToken"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return []
            raise

    def pages(self, stream_names: list[str], filter_pattern: str | None = None) -> Iterator[list[tuple[str, str]]]:
        """Pages of (stream name, message), each stream's events in order. With a filterPattern,
        CloudWatch returns only events that could match, so fewer pages travel."""
        for first in range(0, len(stream_names), self.MAX_STREAMS_PER_CALL):
            kwargs: dict[str, Any] = {
                "logGroupName": self._group,
                "logStreamNames": stream_names[first : first + self.MAX_STREAMS_PER_CALL],
            }
            if filter_pattern:
                kwargs["filterPattern"] = filter_pattern
            while True:
                self.api_calls += 1
                page = self._logs.filter_log_events(**kwargs)
                events = page.get("events", [])
                if events:
                    yield [(event["logStreamName"], event.get("message", "")) for event in events]
                token = page.get("nextToken")
                if not token:
                    break
                kwargs["nextToken"] = token
