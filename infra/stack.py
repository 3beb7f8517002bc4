"""The deployable stack: composes the gate, tags it, and carries the reviewed cdk-nag acknowledgements."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Stack, Tags, Validations
from constructs import Construct

from infra.config import GateConfig
from infra.gate import TrainingGate, TrainingGateProps
from infra.names import DEFAULT_STACK_NAME

STACK_NAME = DEFAULT_STACK_NAME


class TrainingGateStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: GateConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.gate = TrainingGate(self, "Gate", props=TrainingGateProps(config=config))
        Tags.of(self).add("app", "training-gate")
        self._outputs()
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
        Validations.of(self.gate.storage.callback_dead_letters).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-SQS3",
                reason="CallbackDeadLetters queue: it is itself the dead-letter queue of the callback queue",
            )
        )

    def _outputs(self) -> None:
        """What the README's deploy section tells people to look at after a deploy, by name
        (`aws cloudformation describe-stacks --stack-name TrainingGateStack --query "Stacks[0].Outputs"`)."""
        gate = self.gate
        outputs = {
            "StateMachineArn": (gate.state_machine.state_machine_arn, "start a manual execution here"),
            "TrainingJobRuleName": (gate.workflow.trigger.rule_name, "starts the gate for tagged jobs"),
            "TuningJobRuleName": (gate.workflow.tuning_trigger.rule_name, "starts the gate for tagged tuning jobs"),
            "NotificationTopicArn": (gate.storage.topic.topic_arn, "the model owners' topic"),
            "OperationsTopicArn": (gate.storage.operations_topic.topic_arn, "gate errors, skips and alarms"),
            "ReportsBucketName": (gate.storage.reports_bucket.bucket_name, "reports/<job>/<execution>/"),
            "DecisionTableName": (gate.storage.decision_table.table_name, "one item per decision"),
            "FailedStartsQueueUrl": (gate.storage.failed_starts.queue_url, "events that could not start the gate"),
            "CallbackQueueUrl": (gate.storage.callbacks.queue_url, "a SageMaker pipeline CallbackStep's sqs_queue_url"),
            "CallbackQueueArn": (gate.storage.callbacks.queue_arn, "a pipeline's role needs sqs:SendMessage on it"),
            "CallbackDeadLettersQueueUrl": (
                gate.storage.callback_dead_letters.queue_url,
                "callback messages that could not start the gate",
            ),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)
