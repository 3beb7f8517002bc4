"""TrainingGate: the reusable construct. The workflow itself lives in statemachine/training_gate.asl.json."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Acknowledgment, ArnFormat, Aws, CfnResource, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import REPO_ROOT, GateConfig
from training_gate.dal.aws import POLICY_PARAMETER_PREFIX

ASL_PATH = REPO_ROOT / "statemachine" / "training_gate.asl.json"
LAMBDAS_DIR = REPO_ROOT / "lambdas"
INSPECTOR_HANDLER = "training_gate.handlers.inspect_artifact.handler"
RUNTIME = lambda_.Runtime.PYTHON_3_14
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
FUNCTION_TIMEOUT = Duration.seconds(60)
FUNCTION_MEMORY_MB = 512
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
EVENT_DELIVERY_ATTEMPTS = 8
POWERTOOLS_ACCOUNT = "017000801446"
NAG_IAM5 = "AwsSolutions::AwsSolutions-IAM5"
XRAY_REASON = "X-Ray PutTraceSegments/PutTelemetryRecords accept no narrower resource than *"
CLOUDWATCH_READ_REASON = "; cloudwatch:GetMetricStatistics has no resource-level permissions either"
# Terminal states that start the gate; InProgress/Stopping changes are not worth an execution.
TERMINAL_STATUSES = ["Completed", "Failed", "Stopped"]


@dataclass(frozen=True)
class TrainingGateProps:
    config: GateConfig


class TrainingGate(Construct):
    """EventBridge rule -> Step Functions (the ASL) -> functions -> Model Registry / SNS."""

    def __init__(self, scope: Construct, construct_id: str, *, props: TrainingGateProps) -> None:
        super().__init__(scope, construct_id)
        self._config = props.config
        self.roles: dict[str, iam.Role] = {}
        self._policy_json = json.dumps(self._config.policy.model_dump(mode="json"), separators=(",", ":"))
        self.key = self._build_key()
        self.topic = self._build_topic("Notifications", self._config.notification_emails)
        self.operations_topic = self._build_topic("Operations", self._config.operations_emails)
        self.reports_bucket = self._build_reports_bucket()
        self.decision_table = self._build_decision_table()
        self._powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_ACCOUNT}:layer:"
            f"AWSLambdaPowertoolsPythonV3-python{RUNTIME.name.removeprefix('python').replace('.', '')}"
            f"-x86_64:{self._config.powertools_layer_version}",
        )
        self.functions = self._build_functions()
        self.state_machine = self._build_state_machine()
        self.rule, self.dead_letter_queue = self._build_rule()
        self.alarms = self._build_alarms()
        self.dashboard = self._build_dashboard()

    # -- cdk-nag acknowledgements: each names the rule, the exact finding and why -------------

    def _logical_id(self, construct: Construct) -> str:
        stack = Stack.of(self)
        default = construct.node.default_child
        assert isinstance(default, CfnResource)
        return str(stack.resolve(stack.get_logical_id(default)))

    @staticmethod
    def _acknowledge(scope: Construct, finding: str, reason: str) -> None:
        Validations.of(scope).acknowledge(Acknowledgment(id=f"{NAG_IAM5}[{finding}]", reason=reason))

    # -- resources -------------------------------------------------------------------------

    def _build_key(self) -> kms.IKey:
        """The key for the topics and the reports bucket: the user's, or one the stack owns."""
        if self._config.kms_key_arn:
            return kms.Key.from_key_arn(self, "Key", self._config.kms_key_arn)
        key = kms.Key(
            self,
            "Key",
            description="training-gate: notifications and reports",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch alarms publish to the encrypted operations topic.
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

    def _build_topic(self, name: str, emails: list[str]) -> sns.Topic:
        topic = sns.Topic(
            self, name, display_name=f"training-gate {name.lower()}", enforce_ssl=True, master_key=self.key
        )
        for email in emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _build_reports_bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Reports",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-reports",
                    prefix="reports/",
                    expiration=Duration.days(self._config.report_retention_days),
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _build_decision_table(self) -> dynamodb.Table:
        """One item per (training job, effective policy): the exactly-once guard and the audit log."""
        return dynamodb.Table(
            self,
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

    def _function_role(self, name: str, star_reason: str = XRAY_REASON) -> tuple[iam.Role, logs.LogGroup]:
        """A role that may write only to the function's own log group (no managed policies)."""
        log_group = logs.LogGroup(self, f"{name}Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        role = iam.Role(self, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn, f"{log_group.log_group_arn}:log-stream:*"],
            )
        )
        self._acknowledge(
            role,
            f"Resource::<{self._logical_id(log_group)}.Arn>:log-stream:*",
            f"{name}: the streams of its own log group only; stream names are chosen by Lambda",
        )
        self._acknowledge(role, "Resource::*", f"{name}: {star_reason}")
        self.roles[name] = role
        return role, log_group

    def _zip_function(
        self, name: str, module: str, environment: dict[str, str], star_reason: str = XRAY_REASON
    ) -> lambda_.Function:
        role, log_group = self._function_role(name, star_reason)
        return lambda_.Function(
            self,
            name,
            runtime=RUNTIME,
            handler=f"training_gate.handlers.{module}.handler",
            code=lambda_.Code.from_asset(
                str(LAMBDAS_DIR),
                exclude=[
                    "inspector.Dockerfile",
                    "training_gate/inspector",
                    "training_gate/handlers/inspect_artifact.py",
                    "*.egg-info",
                    "**/__pycache__",
                    "*.pyc",
                ],
            ),
            layers=[self._powertools],
            role=role,
            log_group=log_group,
            timeout=FUNCTION_TIMEOUT,
            memory_size=FUNCTION_MEMORY_MB,
            tracing=lambda_.Tracing.ACTIVE,
            environment={"POWERTOOLS_SERVICE_NAME": f"training-gate-{module}", **environment},
        )

    def _build_functions(self) -> dict[str, lambda_.IFunction]:
        config = self._config
        validate = self._zip_function(
            "ValidateInput",
            "validate_input",
            {
                "DEFAULT_POLL_INTERVAL_SECONDS": str(config.poll_interval_seconds),
                "DEFAULT_MAX_POLLS": str(config.max_polls),
                "GATE_POLICY": self._policy_json,
            },
        )
        collect = self._zip_function(
            "CollectMetrics",
            "collect_metrics",
            {
                "TRAINING_LOG_GROUP": TRAINING_LOG_GROUP,
                "READ_CLOUDWATCH_METRICS": "true" if config.read_cloudwatch_metrics else "false",
            },
            star_reason=XRAY_REASON
            + (
                "; cloudwatch:GetMetricStatistics has no resource-level permissions"
                if config.read_cloudwatch_metrics
                else ""
            ),
        )
        if config.read_cloudwatch_metrics:
            collect.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricStatistics"], resources=["*"]))
        collect.add_to_role_policy(
            iam.PolicyStatement(
                actions=["logs:DescribeLogStreams", "logs:FilterLogEvents"],
                resources=[
                    Stack.of(self).format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{TRAINING_LOG_GROUP}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self._acknowledge(
            self.roles["CollectMetrics"],
            "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:*",
            "CollectMetrics: SageMaker writes one stream per host and job in this group; only reads are granted",
        )
        self._grant_artifact_reads(collect, "CollectMetrics", "reads evaluation files from each job's output.tar.gz")
        evaluate = self._zip_function(
            "EvaluatePolicy",
            "evaluate_policy",
            {
                "GATE_POLICY": self._policy_json,
                "MODEL_PACKAGE_GROUP": config.model_package_group,
                "MODEL_PACKAGE_GROUPS": ",".join(config.model_package_groups),
                "POLICY_PARAMETER_PREFIX": POLICY_PARAMETER_PREFIX,
                "REPORTS_BUCKET": self.reports_bucket.bucket_name,
                "DECISION_TABLE": self.decision_table.table_name,
                "INFERENCE_CONFIG": json.dumps(config.inference.model_dump(mode="json")),
            },
            star_reason=XRAY_REASON + "; sagemaker:ListModelPackages has no resource-level permissions",
        )
        self._grant_registry_reads(evaluate)
        evaluate.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[self.decision_table.table_arn],
            )
        )
        self._grant_decision_events(evaluate)
        self._grant_approval_updates(evaluate, "EvaluatePolicy")
        self.key.grant(evaluate, "kms:GenerateDataKey")  # SSE-KMS report writes
        register = self._build_register()
        evaluate.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[self.reports_bucket.arn_for_objects("reports/*")])
        )
        self._acknowledge(
            self.roles["EvaluatePolicy"],
            f"Resource::<{self._logical_id(self.reports_bucket)}.Arn>/reports/*",
            "EvaluatePolicy: writes one report per execution under reports/<job>/<execution>/",
        )
        describe_failure = self._zip_function("DescribeFailure", "describe_failure", {})
        return {
            "ValidateInput": validate,
            "InspectArtifact": self._build_inspector(),
            "CollectMetrics": collect,
            "EvaluatePolicy": evaluate,
            "DescribeFailure": describe_failure,
            "RegisterModel": register,
        }

    def _build_register(self) -> lambda_.Function:
        register = self._zip_function(
            "RegisterModel", "register_model", {"DECISION_TABLE": self.decision_table.table_name}
        )
        group_arns, package_arns = self._group_arns()
        register.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:CreateModelPackageGroup",
                    "sagemaker:AddTags",
                ],
                resources=group_arns,
            )
        )
        register.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateModelPackage", "sagemaker:AddTags"], resources=[*group_arns, *package_arns]
            )
        )
        register.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[self.decision_table.table_arn])
        )
        self._grant_decision_events(register)
        self._grant_approval_updates(register, "RegisterModel")
        # It adds the registration to the execution's report.
        register.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"], resources=[self.reports_bucket.arn_for_objects("reports/*")]
            )
        )
        self.key.grant(register, "kms:GenerateDataKey", "kms:Decrypt")
        self._acknowledge(
            self.roles["RegisterModel"],
            f"Resource::<{self._logical_id(self.reports_bucket)}.Arn>/reports/*",
            "RegisterModel: adds the registration to the report of its own execution, under reports/",
        )
        return register

    def _grant_decision_events(self, function: lambda_.Function) -> None:
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[Stack.of(self).format_arn(service="events", resource="event-bus", resource_name="default")],
            )
        )

    def _grant_approval_updates(self, function: lambda_.Function, name: str) -> None:
        """A job that registered its own package gets the gate's decision as that package's approval."""
        _, package_arns = self._group_arns()
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:UpdateModelPackage"], resources=package_arns)
        )
        for group in self._config.model_package_groups:
            self._acknowledge(
                self.roles[name],
                f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/{group}/*",
                f"{name}: package versions <group>/<n> in the allowed groups only",
            )

    def _group_arns(self) -> tuple[list[str], list[str]]:
        """ARNs of the allowed model package groups, and of the package versions inside them."""
        stack = Stack.of(self)
        groups = self._config.model_package_groups
        return (
            [stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=g) for g in groups],
            [stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{g}/*") for g in groups],
        )

    def _grant_registry_reads(self, evaluate: lambda_.Function) -> None:
        """The champion (latest Approved package of a group), the job's tags, and stored group policies."""
        stack = Stack.of(self)
        _, package_arns = self._group_arns()
        evaluate.add_to_role_policy(iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"]))
        evaluate.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=package_arns)
        )
        if self._config.policy.outcome.group_from_tag:
            evaluate.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:ListTags"],
                    resources=[stack.format_arn(service="sagemaker", resource="training-job", resource_name="*")],
                )
            )
            self._acknowledge(
                self.roles["EvaluatePolicy"],
                "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*",
                "EvaluatePolicy: reads the tags of whichever job ended, to derive its model package group",
            )
        parameter_arn = stack.format_arn(
            service="ssm", resource="parameter", resource_name=f"{POLICY_PARAMETER_PREFIX.strip('/')}/*"
        )
        evaluate.add_to_role_policy(iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[parameter_arn]))
        self._acknowledge(
            self.roles["EvaluatePolicy"],
            f"Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/"
            f"{POLICY_PARAMETER_PREFIX.strip('/')}/*",
            "EvaluatePolicy: reads the per-group policies stored under the gate's own parameter prefix",
        )

    def _build_inspector(self) -> lambda_.DockerImageFunction:
        """Container image: scikit-learn does not fit a zip package, and its version must be pinned."""
        config = self._config
        role, log_group = self._function_role("InspectArtifact")
        inspector = lambda_.DockerImageFunction(
            self,
            "InspectArtifact",
            code=lambda_.DockerImageCode.from_image_asset(
                str(LAMBDAS_DIR),
                file="inspector.Dockerfile",
                cmd=[INSPECTOR_HANDLER],
                build_args={
                    "SKLEARN_VERSION": config.sklearn_version,
                    "PYTHON_VERSION": config.inspector_python_version,
                },
                exclude=["*.egg-info", "**/__pycache__", "*.pyc"],
            ),
            role=role,
            log_group=log_group,
            memory_size=config.inspector_memory_mb,
            timeout=Duration.seconds(config.inspector_timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                "POWERTOOLS_SERVICE_NAME": "training-gate-inspect_artifact",
                "INSPECT_CONFIG": json.dumps(
                    {
                        "sample_input": config.sample_input,
                        "model_file": config.model_file,
                        "extra_allowed_globals": config.extra_allowed_globals,
                        "holdout": config.holdout.model_dump(mode="json") if config.holdout else None,
                    }
                ),
            },
        )
        self._grant_artifact_reads(inspector, "InspectArtifact", "reads each job's model.tar.gz and nothing else")
        # CompressionType NONE: the model is an S3 prefix, which the inspector must list.
        inspector.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[f"arn:{Aws.PARTITION}:s3:::{p}" for p in config.artifact_bucket_patterns],
            )
        )
        for pattern in config.artifact_bucket_patterns:
            if "*" in pattern:
                self._acknowledge(
                    role,
                    f"Resource::arn:<AWS::Partition>:s3:::{pattern}",
                    "InspectArtifact: lists uncompressed model prefixes, only in the configured artifact buckets",
                )
        if config.holdout and config.holdout.uri.startswith("s3://"):
            inspector.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[f"arn:{Aws.PARTITION}:s3:::{config.holdout.uri[5:]}"]
                )
            )
        return inspector

    def _grant_artifact_reads(self, function: lambda_.Function, name: str, why: str) -> None:
        """s3:GetObject in the configured artifact buckets only; object keys are chosen by each job."""
        patterns = self._config.artifact_bucket_patterns
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[f"arn:{Aws.PARTITION}:s3:::{p}/*" for p in patterns]
            )
        )
        for pattern in patterns:
            self._acknowledge(
                self.roles[name],
                f"Resource::arn:<AWS::Partition>:s3:::{pattern}/*",
                f"{name}: {why}, only in the configured artifact_bucket_patterns",
            )

    def _build_state_machine(self) -> sfn.StateMachine:
        stack = Stack.of(self)
        role = iam.Role(self, "StateMachineRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
        # Unqualified ARNs only: the ASL invokes $LATEST, so no version wildcard is granted.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[fn.function_arn for fn in self.functions.values()]
            )
        )
        # Explicit rather than grant_publish, which would add the kms:GenerateDataKey* wildcard.
        role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
        self.key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeTrainingJob"],
                resources=[stack.format_arn(service="sagemaker", resource="training-job", resource_name="*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[self.decision_table.table_arn])
        )
        self._acknowledge(
            role,
            "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*",
            "StateMachine: DescribeTrainingJob must read whichever job ended; the EventBridge rule scopes which",
        )
        self._acknowledge(role, "Resource::*", f"StateMachine: {XRAY_REASON}; so does CloudWatch Logs delivery")
        substitutions = {f"{name}FunctionArn": fn.function_arn for name, fn in self.functions.items()}
        substitutions["NotificationTopicArn"] = self.topic.topic_arn
        substitutions["DecisionTableName"] = self.decision_table.table_name
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            log_group_name=f"/aws/vendedlogs/states/training-gate-{stack.stack_name}",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        if self._config.state_machine_log_level != "ALL":
            Validations.of(self).acknowledge(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-SF1",
                    reason=f"StateMachine: log level {self._config.state_machine_log_level} chosen in cdk.json "
                    "(state_machine_log_level); ALL is the default",
                )
            )
        return sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_string(ASL_PATH.read_text()),
            definition_substitutions=substitutions,
            role=role,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group,
                level=sfn.LogLevel[self._config.state_machine_log_level],
                include_execution_data=False,
            ),
        )

    def _build_rule(self) -> tuple[events.Rule, sqs.Queue]:
        config = self._config
        detail: dict[str, object] = {"TrainingJobStatus": TERMINAL_STATUSES}
        if config.job_name_prefixes:
            detail["TrainingJobName"] = [{"prefix": prefix} for prefix in config.job_name_prefixes]
        if config.required_job_tag:
            detail["Tags"] = {config.required_job_tag.key: [config.required_job_tag.value]}
        rule = events.Rule(
            self,
            "TrainingJobStateChange",
            description="Start training-gate when a SageMaker training job ends",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Training Job State Change"],
                detail=detail,
            ),
        )
        dead_letters = sqs.Queue(
            self,
            "FailedStarts",
            retention_period=Duration.days(14),
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
        )
        rule.add_target(
            targets.SfnStateMachine(
                self.state_machine,
                input=events.RuleTargetInput.from_object(
                    {"TrainingJobName": events.EventField.from_path("$.detail.TrainingJobName")}
                ),
                dead_letter_queue=dead_letters,
                retry_attempts=EVENT_DELIVERY_ATTEMPTS,
                max_event_age=Duration.hours(24),
            )
        )
        return rule, dead_letters

    # -- operations: alarms and a dashboard ------------------------------------------------------

    def _build_alarms(self) -> list[cloudwatch.Alarm]:
        """Everything that needs an operator, distinct from a model being rejected (which is the gate working)."""
        machine = self.state_machine
        # Executions that ended in GateError, timed out or were aborted: Step Functions' own status
        # events carry the error name, so they can be told apart from ModelRejected.
        broken = events.Rule(
            self,
            "GateBroken",
            description="training-gate executions that failed with GateError, timed out or were aborted",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "stateMachineArn": [machine.state_machine_arn],
                    "$or": [{"status": ["TIMED_OUT", "ABORTED"]}, {"status": ["FAILED"], "error": ["GateError"]}],
                },
            ),
        )
        broken.add_target(targets.SnsTopic(self.operations_topic))
        metrics: dict[str, cloudwatch.IMetric] = {
            "GateErrors": cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="TriggeredRules",
                dimensions_map={"RuleName": broken.rule_name},
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            "ExecutionsTimedOut": machine.metric_timed_out(period=Duration.minutes(5)),
            "FailedEventDeliveries": cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="FailedInvocations",
                dimensions_map={"RuleName": self.rule.rule_name},
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            "DeadLetters": self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5)
            ),
        }
        for name, function in self.functions.items():
            metrics[f"{name}Errors"] = function.metric_errors(period=Duration.minutes(5))
            metrics[f"{name}Throttles"] = function.metric_throttles(period=Duration.minutes(5))
        alarms = []
        for name, metric in metrics.items():
            alarm = metric.create_alarm(
                self,
                f"{name}Alarm",
                alarm_description=f"training-gate: {name} > 0 - see the operations runbook in the README",
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.operations_topic))
            alarms.append(alarm)
        return alarms

    def _build_dashboard(self) -> cloudwatch.Dashboard:
        def gate_metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="TrainingGate",
                metric_name=name,
                dimensions_map={"service": "training-gate-evaluate_policy"},
                statistic="Sum",
                period=Duration.hours(1),
            )

        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"training-gate-{Stack.of(self).stack_name}")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Decisions",
                left=[gate_metric(f"Decisions_{outcome}") for outcome in ("pass", "reject", "inconclusive")],
                stacked=True,
            ),
            cloudwatch.GraphWidget(
                title="Failures by reason",
                left=[
                    gate_metric(f"Reason_{code}")
                    for code in (
                        "THRESHOLD_NOT_MET",
                        "METRIC_MISSING",
                        "METRIC_NOT_FINITE",
                        "WORSE_THAN_CHAMPION",
                        "ARTIFACT_CHECK_FAILED",
                        "VERSION_SKEW",
                    )
                ],
                stacked=True,
            ),
            cloudwatch.GraphWidget(
                title="Judged metric values by model package group",
                left=[
                    # One series per (group, metric) the policies judge: found by SEARCH, since the
                    # groups and metric names are the users' own.
                    cloudwatch.MathExpression(
                        expression=(
                            "SEARCH('{TrainingGate,Metric,ModelPackageGroup,service} "
                            "MetricName=\"MetricValue\"', 'Maximum', 3600)"
                        ),
                        using_metrics={},
                        label="",
                        period=Duration.hours(1),
                    )
                ],
            ),
            cloudwatch.GraphWidget(
                title="Execution time (p50, p90)",
                left=[
                    self.state_machine.metric_time(statistic="p50", period=Duration.hours(1)),
                    self.state_machine.metric_time(statistic="p90", period=Duration.hours(1)),
                ],
            ),
        )
        return dashboard
