"""The deployable stack: composes the gate, tags it, and carries the reviewed cdk-nag acknowledgements."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Tags, Validations
from constructs import Construct

from infra.config import GateConfig
from infra.gate import TrainingGate, TrainingGateProps

STACK_NAME = "TrainingGateStack"


class TrainingGateStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: GateConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.gate = TrainingGate(self, "Gate", props=TrainingGateProps(config=config))
        Tags.of(self).add("app", "training-gate")
        # Findings that are a property of this deployment, not of the reusable construct.
        Validations.of(self.gate.storage.reports_bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason="Reports bucket: server access logs would need a second bucket; CloudTrail data events "
                "are the audit trail for report writes",
            )
        )
        Validations.of(self.gate.storage.failed_starts).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-SQS3",
                reason="FailedStarts queue: it is itself the dead-letter queue of the EventBridge target",
            )
        )
