"""The gate's stateful resources: keys, topics, the reports bucket, the decision table, the queue of
events that could not start an execution, and the queue SageMaker pipelines' CallbackSteps send to (with
its dead-letter queue).

They are created directly in the gate's own scope, not in a child construct: a resource's logical ID
comes from its construct path, and CloudFormation replaces a resource whose logical ID changes (the
table, bucket and key are retained, so they would be orphaned). tests/infra/test_logical_ids.py pins
them."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import GateConfig
from infra.names import gate_names

DEAD_LETTER_RETENTION = Duration.days(14)
# Lambda's SQS event source: "set the source queue's visibility timeout to at least six times the timeout
# that you configure on your function" (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
CALLBACK_VISIBILITY = Duration.minutes(6)
# A message the bridge could not start an execution for is delivered again, then kept for operations.
CALLBACK_MAX_RECEIVES = 5


@dataclass(frozen=True)
class Storage:
    key: kms.IKey
    operations_key: kms.IKey
    topic: sns.Topic
    operations_topic: sns.Topic
    reports_bucket: s3.Bucket
    decision_table: dynamodb.Table
    failed_starts: sqs.Queue
    callbacks: sqs.Queue
    callback_dead_letters: sqs.Queue


def _stack_key(scope: Construct, construct_id: str, description: str) -> kms.Key:
    key = kms.Key(
        scope, construct_id, description=description, enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN
    )
    # CloudWatch alarms and EventBridge publish to the gate's encrypted topics. No aws:SourceArn
    # condition on EventBridge's statement: EventBridge does not send one to KMS.
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[
                iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                iam.ServicePrincipal("events.amazonaws.com"),
            ],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
        )
    )
    return key


KEY_POLICY_STATEMENT = (
    '{"Effect": "Allow", "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]}, '
    '"Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}'
)


def _key(scope: Construct, construct_id: str, arn: str | None, description: str) -> kms.IKey:
    if arn:
        # The stack cannot change the policy of a key it does not own: without this statement, alarms
        # and events addressed to the encrypted topic are dropped without a trace.
        Annotations.of(scope).add_warning_v2(
            f"training-gate:{construct_id}Policy",
            f"{construct_id} {arn} is yours: its key policy must allow CloudWatch alarms and EventBridge to use it, "
            f"or their messages to the gate's topics are dropped. Add: {KEY_POLICY_STATEMENT}",
        )
        return kms.Key.from_key_arn(scope, construct_id, arn)
    return _stack_key(scope, construct_id, description)


def _topic(scope: Construct, name: str, key: kms.IKey, emails: list[str]) -> sns.Topic:
    topic = sns.Topic(scope, name, display_name=f"training-gate {name.lower()}", enforce_ssl=True, master_key=key)
    for email in emails:
        topic.add_subscription(subscriptions.EmailSubscription(email))
    return topic


def build_storage(scope: Construct, config: GateConfig) -> Storage:
    key = _key(scope, "Key", config.kms_key_arn, "training-gate: owners' notifications and reports")
    # Operations hear about every failure, including a failure of the owners' key (disabled,
    # deleted, its policy changed): their topic never shares it.
    operations_key = _key(
        scope, "OperationsKey", config.operations_kms_key_arn, "training-gate: operations notifications"
    )
    reports = s3.Bucket(
        scope,
        "Reports",
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-old-reports",
                prefix="reports/",
                expiration=Duration.days(config.report_retention_days),
                noncurrent_version_expiration=Duration.days(30),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ],
        removal_policy=RemovalPolicy.RETAIN,
    )
    table = dynamodb.Table(
        scope,
        "Decisions",
        partition_key=dynamodb.Attribute(name="training_job", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="policy_sha256", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=RemovalPolicy.RETAIN,
    )
    failed_starts = sqs.Queue(
        scope,
        "FailedStarts",
        retention_period=DEAD_LETTER_RETENTION,
        enforce_ssl=True,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
    )
    # SQS-managed encryption: a pipeline's role sends to the queue without a grant on any key of ours.
    callback_dead_letters = sqs.Queue(
        scope,
        "CallbackDeadLetters",
        retention_period=DEAD_LETTER_RETENTION,
        enforce_ssl=True,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
    )
    callbacks = sqs.Queue(
        scope,
        "Callbacks",
        queue_name=gate_names(scope).callback_queue,
        retention_period=DEAD_LETTER_RETENTION,
        visibility_timeout=CALLBACK_VISIBILITY,
        enforce_ssl=True,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=CALLBACK_MAX_RECEIVES, queue=callback_dead_letters),
    )
    return Storage(
        key=key,
        operations_key=operations_key,
        topic=_topic(scope, "Notifications", key, config.notification_emails),
        operations_topic=_topic(scope, "Operations", operations_key, config.operations_emails),
        reports_bucket=reports,
        decision_table=table,
        failed_starts=failed_starts,
        callbacks=callbacks,
        callback_dead_letters=callback_dead_letters,
    )
