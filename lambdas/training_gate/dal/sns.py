"""Publishing to the gate's topics from code (the workflow publishes to the owners' topic itself)."""

from __future__ import annotations

from typing import Any

from training_gate.dal.clients import client


class Topic:
    def __init__(self, topic_arn: str, sns: Any | None = None):
        self._sns = sns or client("sns")
        self.arn = topic_arn

    def publish(self, subject: str, message: str, attributes: dict[str, str] | None = None) -> str:
        kwargs: dict[str, Any] = {"TopicArn": self.arn, "Subject": subject, "Message": message}
        if attributes:
            kwargs["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        return str(self._sns.publish(**kwargs)["MessageId"])
