"""Decision events on the default EventBridge bus."""

from __future__ import annotations

import json
from typing import Any

from training_gate.constants import DECISION_EVENT_DETAIL_TYPE, DECISION_EVENT_SOURCE
from training_gate.dal.clients import client


class DecisionEventRefused(Exception):
    """EventBridge answered, but did not accept the entry (PutEvents reports failures per entry)."""


class DecisionEvents:
    """One custom event per decision, for retraining pipelines to subscribe to."""

    def __init__(self, events: Any | None = None):
        self._events = events or client("events")

    def publish(self, detail: dict[str, Any], resources: list[str]) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Source": DECISION_EVENT_SOURCE,
                    "DetailType": DECISION_EVENT_DETAIL_TYPE,
                    "Detail": json.dumps(detail),
                    "Resources": resources,
                }
            ]
        )
        # A 200 answer can still carry a refused entry: only FailedEntryCount tells.
        # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
        if response.get("FailedEntryCount"):
            raise DecisionEventRefused(f"EventBridge refused the decision event: {response['Entries']}")
