"""Publishing to the gate's topics from code."""

from __future__ import annotations

import json
from typing import Any

from training_gate.dal.clients import client


def message_attributes(attributes: dict[str, str | list[str]]) -> dict[str, dict[str, str]]:
    """SNS MessageAttributes: a string is a String, a list a String.Array (its JSON text), which
    subscription filter policies match element by element. An empty string is left out: SNS refuses it."""
    typed: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        if isinstance(value, list):
            typed[name] = {"DataType": "String.Array", "StringValue": json.dumps(value)}
        elif value:
            typed[name] = {"DataType": "String", "StringValue": value}
    return typed


class Topic:
    def __init__(self, topic_arn: str, sns: Any | None = None):
        self._sns = sns or client("sns")
        self.arn = topic_arn

    def publish(self, subject: str, message: str, attributes: dict[str, str | list[str]] | None = None) -> str:
        kwargs: dict[str, Any] = {"TopicArn": self.arn, "Subject": subject, "Message": message}
        if attributes:
            kwargs["MessageAttributes"] = message_attributes(attributes)
        return str(self._sns.publish(**kwargs)["MessageId"])
