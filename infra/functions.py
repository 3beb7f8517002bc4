"""The gate's functions, each with a role that may do exactly what its code does."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Annotations, ArnFormat, Aws, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import REPO_ROOT, GateConfig
from infra.inspector_image import image_pair, inspector_image_code
from infra.nag import XRAY_REASON, acknowledge_resource, acknowledge_wildcard
from infra.names import gate_names
from infra.powertools import powertools_layer_arn
from infra.settings import DeploymentSettings, check_environment
from infra.storage import Storage
from training_gate.archive import ArchiveLimits
from training_gate.constants import TRAINING_LOG_GROUP
from training_gate.inspector.config import DISK_RESERVE_BYTES

LAMBDAS_DIR = REPO_ROOT / "lambdas"
INSPECTOR_HANDLER = "training_gate.handlers.inspect_artifact.handler"
RUNTIME = lambda_.Runtime.PYTHON_3_14
FUNCTION_TIMEOUT = Duration.seconds(60)
FUNCTION_MEMORY_MB = 512
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
# The zip functions run on Lambda's default architecture; the layer must be built for the same one.
ARCHITECTURE = lambda_.Architecture.X86_64
# Zip functions carry the gate's code without scikit-learn and without the inspector.
ZIP_EXCLUDES = [
    "inspector.Dockerfile",
    "inspector-image",
    "training_gate/inspector",
    "training_gate/handlers/inspect_artifact.py",
    "training_gate/logic/artifact.py",
    "*.egg-info",
    "**/__pycache__",
    "*.pyc",
]
# Settings whose size depends on the configuration: read from the settings document (infra/settings.py), never
# from the environment. Each names the cdk.json settings it comes from.
DOCUMENT_VARIABLES = {
    "GATE_POLICY": "policy",
    "MODEL_PACKAGE_GROUPS": "model_package_group and additional_model_package_groups",
    "INFERENCE_CONFIG": "inference",
    "INSPECT_CONFIG": "sample_input, model_file, extra_allowed_globals, holdout and inspection",
    "JOB_NAME_PREFIXES": "job_name_prefixes",
}
# What each environment variable comes from, for the size check's message.
ENVIRONMENT_SETTINGS = {
    "SCOPED_BY_PREFIX": "job_name_prefixes",
    "DEFAULT_POLL_INTERVAL_SECONDS": "poll_interval_seconds",
    "DEFAULT_MAX_POLLS": "max_polls",
    "MODEL_PACKAGE_GROUP": "model_package_group",
    "POLICY_PARAMETER_PREFIX": "policy_parameter_prefix, or the stack name",
    "POWERTOOLS_SERVICE_NAME": "the stack name",
    "READ_CLOUDWATCH_METRICS": "read_cloudwatch_metrics",
    "FAIL_STEP_ON_REJECT": "fail_step_on_reject",
}
# SendPipelineExecutionStepSuccess and SendPipelineExecutionStepFailure name a callback token, not a resource:
# the request carries no ARN a policy could scope to.
CALLBACK_REASON = "sagemaker:SendPipelineExecutionStep* act on a callback token, which no resource ARN names"
CALLBACK_ACTIONS = ["sagemaker:SendPipelineExecutionStepSuccess", "sagemaker:SendPipelineExecutionStepFailure"]
# The bridge starts at most this many executions per invocation (SQS event source batch size).
CALLBACK_BATCH_SIZE = 10


@dataclass(frozen=True)
class FunctionProps:
    config: GateConfig
    storage: Storage


class GateFunctions(Construct):
    """One function per state that needs code, plus the operations alert."""

    def __init__(self, scope: Construct, construct_id: str, *, props: FunctionProps) -> None:
        super().__init__(scope, construct_id)
        self._config = props.config
        self._storage = props.storage
        self._names = gate_names(self)
        self.roles: dict[str, iam.Role] = {}
        self.environments: dict[str, dict[str, str]] = {}
        self.settings = DeploymentSettings(self, "Settings", values=self._document(self._config))
        self._powertools = lambda_.LayerVersion.from_layer_version_arn(
            self, "Powertools", powertools_layer_arn(self, self._config, RUNTIME.name, ARCHITECTURE.name)
        )
        self.validate_input = self._build_validate_input()
        self.describe_training_job = self._build_describe_training_job()
        self.inspect_artifact = self._build_inspector()
        self.collect_metrics = self._build_collect_metrics()
        self.evaluate_policy = self._build_evaluate_policy()
        self.register_model = self._build_register_model()
        self.record_outcome = self._build_record_outcome()
        self.describe_failure = self._build_describe_failure()
        self.describe_tuning_job = self._build_describe_tuning_job()
        self.notify_owners = self._build_notify_owners()
        self.answer_pipelines = self._build_answer_pipelines()
        self.alert_operations = self._build_alert_operations()
        # Built with the workflow, whose state machine it starts (build_start_callback).
        self.start_callback: lambda_.Function | None = None
        self.environment_bytes = {
            name: check_environment(self, name, variables, {**ENVIRONMENT_SETTINGS, **DOCUMENT_VARIABLES})
            for name, variables in self.environments.items()
        }

    @staticmethod
    def _document(config: GateConfig) -> dict[str, str]:
        """The settings document: each value exactly as the environment variable would hold it."""
        return {
            "GATE_POLICY": json.dumps(config.policy.model_dump(mode="json"), separators=(",", ":")),
            "MODEL_PACKAGE_GROUPS": ",".join(config.model_package_groups),
            "INFERENCE_CONFIG": json.dumps(config.inference.model_dump(mode="json"), separators=(",", ":")),
            "JOB_NAME_PREFIXES": json.dumps(config.job_name_prefixes, separators=(",", ":")),
            # Whatever shape these settings take, as the validated configuration dumps them.
            "INSPECT_CONFIG": json.dumps(
                {
                    **config.model_dump(
                        mode="json", include={"sample_input", "model_file", "extra_allowed_globals", "holdout"}
                    ),
                    **config.inspection.model_dump(mode="json", exclude_none=True),
                },
                separators=(",", ":"),
            ),
        }

    @property
    def workflow_functions(self) -> dict[str, lambda_.IFunction]:
        """The functions the ASL invokes, by the name its `${<Name>FunctionArn}` placeholders use."""
        return {
            "ValidateInput": self.validate_input,
            "DescribeTrainingJob": self.describe_training_job,
            "InspectArtifact": self.inspect_artifact,
            "CollectMetrics": self.collect_metrics,
            "EvaluatePolicy": self.evaluate_policy,
            "RegisterModel": self.register_model,
            "RecordOutcome": self.record_outcome,
            "DescribeFailure": self.describe_failure,
            "DescribeTuningJob": self.describe_tuning_job,
            "NotifyOwners": self.notify_owners,
            "AnswerPipelines": self.answer_pipelines,
        }

    @property
    def all(self) -> dict[str, lambda_.IFunction]:
        bridge = {"StartCallback": self.start_callback} if self.start_callback is not None else {}
        return {**self.workflow_functions, "AlertOperations": self.alert_operations, **bridge}

    @property
    def policy_parameter_prefix(self) -> str:
        """Where this gate's per-group policies are stored: its own, so two gates never read each other's."""
        return self._config.policy_parameter_prefix or self._names.policy_parameter_prefix

    # -- shared building blocks ----------------------------------------------------------------

    def _function_role(self, name: str, star_reason: str = XRAY_REASON) -> tuple[iam.Role, logs.LogGroup]:
        """A role that may write only to the function's own log group (no managed policies)."""
        log_group = logs.LogGroup(self, f"{name}Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        role = iam.Role(self, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        streams = f"{log_group.log_group_arn}:log-stream:*"
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn, streams]
            )
        )
        acknowledge_resource(
            role, streams, f"{name}: the streams of its own log group only; stream names are chosen by Lambda"
        )
        acknowledge_wildcard(role, "Resource::*", f"{name}: {star_reason}")
        self.roles[name] = role
        return role, log_group

    def _environment(self, name: str, module: str, variables: dict[str, str], settings: bool) -> dict[str, str]:
        """The function's environment (kept for the size check); `settings`: it reads the settings document."""
        environment = {"POWERTOOLS_SERVICE_NAME": self._names.service(module), **variables}
        if settings:
            environment.update(self.settings.environment)
            self.roles[name].add_to_policy(self.settings.statement())
        self.environments[name] = environment
        return environment

    def _zip_function(
        self,
        name: str,
        module: str,
        environment: dict[str, str],
        star_reason: str = XRAY_REASON,
        settings: bool = False,
    ) -> lambda_.Function:
        role, log_group = self._function_role(name, star_reason)
        return lambda_.Function(
            self,
            name,
            runtime=RUNTIME,
            handler=f"training_gate.handlers.{module}.handler",
            code=lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=ZIP_EXCLUDES),
            layers=[self._powertools],
            architecture=ARCHITECTURE,
            role=role,
            log_group=log_group,
            timeout=FUNCTION_TIMEOUT,
            memory_size=FUNCTION_MEMORY_MB,
            tracing=lambda_.Tracing.ACTIVE,
            environment=self._environment(name, module, environment, settings),
        )

    def _reports(self, function: lambda_.Function, name: str, actions: list[str], why: str) -> None:
        reports = self._storage.reports_bucket.arn_for_objects("reports/*")
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=[reports]))
        kms_actions = ["kms:GenerateDataKey"] + (["kms:Decrypt"] if "s3:GetObject" in actions else [])
        self._storage.key.grant(function, *kms_actions)
        acknowledge_resource(self.roles[name], reports, f"{name}: {why}")

    def _decision_table(self, function: lambda_.Function, actions: list[str]) -> None:
        function.add_to_role_policy(
            iam.PolicyStatement(actions=actions, resources=[self._storage.decision_table.table_arn])
        )

    def _decision_events(self, function: lambda_.Function) -> None:
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[Stack.of(self).format_arn(service="events", resource="event-bus", resource_name="default")],
            )
        )

    def _training_jobs(self, function: lambda_.Function, name: str, actions: list[str], why: str) -> None:
        jobs = Stack.of(self).format_arn(service="sagemaker", resource="training-job", resource_name="*")
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=[jobs]))
        acknowledge_resource(self.roles[name], jobs, why)

    def _group_arns(self) -> tuple[list[str], list[str]]:
        """ARNs of the allowed model package groups, and of the package versions inside them. SageMaker
        lowercases the resource names in its ARNs, so IAM must match the lowercase form."""
        stack = Stack.of(self)
        groups = [g.lower() for g in self._config.model_package_groups]
        return (
            [stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=g) for g in groups],
            [stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{g}/*") for g in groups],
        )

    def _approval_updates(self, function: lambda_.Function, name: str) -> None:
        """A job that registered its own package gets the gate's decision as that package's approval."""
        _, package_arns = self._group_arns()
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:UpdateModelPackage"], resources=package_arns)
        )
        self._acknowledge_packages(name)

    def _acknowledge_packages(self, name: str) -> None:
        _, package_arns = self._group_arns()
        for package_arn in dict.fromkeys(package_arns):
            acknowledge_resource(
                self.roles[name], package_arn, f"{name}: package versions <group>/<n> in the allowed groups only"
            )

    def _artifact_reads(self, function: lambda_.Function, name: str, why: str, listing: str) -> None:
        """s3:GetObject in the configured artifact buckets only (object keys are chosen by each job), and
        kms:Decrypt with the keys of SSE-KMS artifact buckets.

        And s3:ListBucket on those buckets: without it S3 answers a read of a key that does not exist with 403
        AccessDenied, not 404 (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
        "Permissions"), and a missing object would be taken for the gate's own misconfiguration."""
        patterns = self._config.artifact_bucket_patterns
        objects = [f"arn:{Aws.PARTITION}:s3:::{p}/*" for p in patterns]
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=objects))
        for arn in objects:
            acknowledge_resource(self.roles[name], arn, f"{name}: {why}, only in the artifact_bucket_patterns")
        buckets = [f"arn:{Aws.PARTITION}:s3:::{p}" for p in patterns]
        function.add_to_role_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=buckets))
        for pattern, bucket in zip(patterns, buckets, strict=True):
            if "*" in pattern:
                acknowledge_resource(self.roles[name], bucket, f"{name}: {listing}, only in the configured buckets")
        if self._config.artifact_kms_key_arns:
            function.add_to_role_policy(
                iam.PolicyStatement(actions=["kms:Decrypt"], resources=list(self._config.artifact_kms_key_arns))
            )

    # -- the functions ---------------------------------------------------------------------------

    def _build_validate_input(self) -> lambda_.Function:
        config = self._config
        return self._zip_function(
            "ValidateInput",
            "validate_input",
            {
                "DEFAULT_POLL_INTERVAL_SECONDS": str(config.poll_interval_seconds),
                "DEFAULT_MAX_POLLS": str(config.max_polls),
                "DEFAULT_TUNING_CANDIDATES": str(config.tuning_candidates),
                "GATE_TUNING_CHILDREN": "true" if config.gate_tuning_children else "false",
                "FAIL_STEP_ON_REJECT": "true" if config.fail_step_on_reject else "false",
            },
            settings=True,
        )

    def _build_describe_training_job(self) -> lambda_.Function:
        # Scoped by prefixes, it decides whether a tuning job's execution judges a child (domain/scope.py):
        # the prefixes (up to 4 KB of them) come from the settings document; unscoped, it never reads it.
        scoped = bool(self._config.job_name_prefixes)
        environment = {"SCOPED_BY_PREFIX": "true" if scoped else "false"}
        function = self._zip_function("DescribeTrainingJob", "describe_training_job", environment, settings=scoped)
        self._training_jobs(
            function,
            "DescribeTrainingJob",
            ["sagemaker:DescribeTrainingJob"],
            "DescribeTrainingJob: must read whichever job ended; the EventBridge rule scopes which",
        )
        return function

    def _build_collect_metrics(self) -> lambda_.Function:
        config = self._config
        cloudwatch_reason = "; cloudwatch:GetMetricStatistics has no resource-level permissions"
        collect = self._zip_function(
            "CollectMetrics",
            "collect_metrics",
            {
                "TRAINING_LOG_GROUP": TRAINING_LOG_GROUP,
                "READ_CLOUDWATCH_METRICS": "true" if config.read_cloudwatch_metrics else "false",
                "REPORTS_BUCKET": self._storage.reports_bucket.bucket_name,
            },
            star_reason=XRAY_REASON + (cloudwatch_reason if config.read_cloudwatch_metrics else ""),
        )
        if config.read_cloudwatch_metrics:
            collect.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricStatistics"], resources=["*"]))
        # The log group ARN with ":*": what IAM matches for these actions
        # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html).
        training_logs = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{TRAINING_LOG_GROUP}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        collect.add_to_role_policy(
            iam.PolicyStatement(actions=["logs:DescribeLogStreams", "logs:FilterLogEvents"], resources=[training_logs])
        )
        acknowledge_resource(
            self.roles["CollectMetrics"],
            training_logs,
            "CollectMetrics: SageMaker writes one stream per host and job in this group; only reads are granted",
        )
        self._training_jobs(
            collect,
            "CollectMetrics",
            ["sagemaker:DescribeTrainingJob"],
            "CollectMetrics: reads the MetricDefinitions of whichever job ended",
        )
        self._artifact_reads(
            collect,
            "CollectMetrics",
            "reads evaluation files from each job's output.tar.gz",
            "tells a job that wrote no output.tar.gz (404) from a read it may not make (403)",
        )
        self._reports(
            collect, "CollectMetrics", ["s3:PutObject"], "writes metrics.json under reports/<job>/<execution>/"
        )
        return collect

    def _build_evaluate_policy(self) -> lambda_.Function:
        config = self._config
        evaluate = self._zip_function(
            "EvaluatePolicy",
            "evaluate_policy",
            {
                "MODEL_PACKAGE_GROUP": config.model_package_group,
                "POLICY_PARAMETER_PREFIX": self.policy_parameter_prefix,
                "REPORTS_BUCKET": self._storage.reports_bucket.bucket_name,
                "DECISION_TABLE": self._storage.decision_table.table_name,
            },
            star_reason=XRAY_REASON + "; sagemaker:ListModelPackages has no resource-level permissions",
            settings=True,
        )
        stack = Stack.of(self)
        _, package_arns = self._group_arns()
        evaluate.add_to_role_policy(iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"]))
        evaluate.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=package_arns)
        )
        self._acknowledge_packages("EvaluatePolicy")
        # A tuning job's decision is about its best candidate, read again when the last one tried is not it;
        # the tags of whichever job ended name its group when group_from_tag is set.
        self._training_jobs(
            evaluate,
            "EvaluatePolicy",
            ["sagemaker:DescribeTrainingJob"]
            + (["sagemaker:ListTags"] if config.policy.outcome.group_from_tag else []),
            "EvaluatePolicy: reads whichever job ended (a tuning job's best candidate, the job's tags for its group)",
        )
        parameter_arn = stack.format_arn(
            service="ssm", resource="parameter", resource_name=f"{self.policy_parameter_prefix.strip('/')}/*"
        )
        evaluate.add_to_role_policy(iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[parameter_arn]))
        acknowledge_resource(
            self.roles["EvaluatePolicy"],
            parameter_arn,
            "EvaluatePolicy: reads the per-group policies stored under the gate's own parameter prefix",
        )
        self._decision_table(evaluate, ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"])
        self._reports(
            evaluate,
            "EvaluatePolicy",
            ["s3:GetObject", "s3:PutObject"],
            "reads metrics.json and writes one report per execution under reports/<job>/<execution>/",
        )
        return evaluate

    def _build_register_model(self) -> lambda_.Function:
        register = self._zip_function(
            "RegisterModel",
            "register_model",
            {"DECISION_TABLE": self._storage.decision_table.table_name},
            star_reason=XRAY_REASON + "; sagemaker:ListModelPackages has no resource-level permissions",
            settings=True,
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
            iam.PolicyStatement(actions=["sagemaker:CreateModelPackage"], resources=[*group_arns, *package_arns])
        )
        # A package lost between its creation and its record is found again by its metadata.
        register.add_to_role_policy(iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"]))
        register.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=package_arns)
        )
        self._approval_updates(register, "RegisterModel")
        self._decision_table(register, ["dynamodb:GetItem", "dynamodb:UpdateItem"])
        self._decision_events(register)
        self._reports(
            register,
            "RegisterModel",
            ["s3:GetObject", "s3:PutObject"],
            "reads the decision's report, writes its statistics and adds the registration to it, under reports/",
        )
        return register

    def _build_record_outcome(self) -> lambda_.Function:
        record = self._zip_function(
            "RecordOutcome", "record_outcome", {"DECISION_TABLE": self._storage.decision_table.table_name}
        )
        self._decision_table(record, ["dynamodb:GetItem", "dynamodb:UpdateItem"])
        self._decision_events(record)
        self._approval_updates(record, "RecordOutcome")
        return record

    def _build_alert_operations(self) -> lambda_.Function:
        topic = self._storage.operations_topic
        alert = self._zip_function(
            "AlertOperations",
            "alert_operations",
            {"OPERATIONS_TOPIC_ARN": topic.topic_arn, "DECISION_TABLE": self._storage.decision_table.table_name},
            star_reason=f"{XRAY_REASON}; {CALLBACK_REASON}",
        )
        alert.add_to_role_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn]))
        self._storage.operations_key.grant(alert, "kms:GenerateDataKey", "kms:Decrypt")
        # How an execution ended is written on the decision item it owned (found by the job's key), and the
        # pipelines waiting on what it held are answered (what no Catch sees ends here).
        self._decision_table(alert, ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"])
        alert.add_to_role_policy(iam.PolicyStatement(actions=CALLBACK_ACTIONS, resources=["*"]))
        return alert

    def _build_answer_pipelines(self) -> lambda_.Function:
        """Answers the SageMaker pipelines waiting on a decision: reads and records on the decision item."""
        function = self._zip_function(
            "AnswerPipelines",
            "answer_pipelines",
            {"DECISION_TABLE": self._storage.decision_table.table_name},
            star_reason=f"{XRAY_REASON}; {CALLBACK_REASON}",
        )
        self._decision_table(function, ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"])
        function.add_to_role_policy(iam.PolicyStatement(actions=CALLBACK_ACTIONS, resources=["*"]))
        return function

    def build_start_callback(self, state_machine: sfn.IStateMachine) -> lambda_.Function:
        """The bridge from the callback queue to the workflow: an SQS event source mapping (batches of
        messages, partial batch responses) on a function that names each execution after its message."""
        name = "StartCallback"
        function = self._zip_function(
            name,
            "start_callback",
            {"STATE_MACHINE_ARN": state_machine.state_machine_arn},
            star_reason=f"{XRAY_REASON}; {CALLBACK_REASON} (a stopping pipeline is answered at once)",
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine.state_machine_arn])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:SendPipelineExecutionStepFailure"], resources=["*"])
        )
        # Grants the function's role what the event source mapping polls with (receive, delete, visibility).
        function.add_event_source(
            event_sources.SqsEventSource(
                self._storage.callbacks, batch_size=CALLBACK_BATCH_SIZE, report_batch_item_failures=True
            )
        )
        self.environment_bytes[name] = check_environment(
            self, name, self.environments[name], {**ENVIRONMENT_SETTINGS, **DOCUMENT_VARIABLES}
        )
        self.start_callback = function
        return function

    def _build_describe_failure(self) -> lambda_.Function:
        function = self._zip_function(
            "DescribeFailure", "describe_failure", {"DECISION_TABLE": self._storage.decision_table.table_name}
        )
        # The notice is claimed like a decision: one item, taken over when its owner no longer runs.
        self._decision_table(function, ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"])
        return function

    def _build_describe_tuning_job(self) -> lambda_.Function:
        function = self._zip_function("DescribeTuningJob", "describe_tuning_job", {})
        # Both actions take the tuning job as their resource (hyper-parameter-tuning-job/<name>).
        tuning_jobs = Stack.of(self).format_arn(
            service="sagemaker", resource="hyper-parameter-tuning-job", resource_name="*"
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                ],
                resources=[tuning_jobs],
            )
        )
        acknowledge_resource(
            self.roles["DescribeTuningJob"],
            tuning_jobs,
            "DescribeTuningJob: must read whichever tuning job ended; the EventBridge rule scopes which",
        )
        return function

    def _build_notify_owners(self) -> lambda_.Function:
        """A decision's message, sent only while the execution owns the decision (checked in the same step):
        the owners', or operations' for a skipped decision (nothing for the owners to retrain)."""
        topic, operations = self._storage.topic, self._storage.operations_topic
        function = self._zip_function(
            "NotifyOwners",
            "notify_owners",
            {
                "NOTIFICATION_TOPIC_ARN": topic.topic_arn,
                "OPERATIONS_TOPIC_ARN": operations.topic_arn,
                "DECISION_TABLE": self._storage.decision_table.table_name,
            },
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn, operations.topic_arn])
        )
        self._storage.key.grant(function, "kms:GenerateDataKey", "kms:Decrypt")
        self._storage.operations_key.grant(function, "kms:GenerateDataKey", "kms:Decrypt")
        self._decision_table(function, ["dynamodb:GetItem", "dynamodb:UpdateItem"])
        return function

    def grant_describe_executions(self, execution_arn_pattern: str) -> None:
        """EvaluatePolicy and DescribeFailure check whether a decision's owner still runs; AlertOperations
        reads a failed execution's error and cause. Granted once the state machine exists (its name is in
        the ARN)."""
        for name in ("EvaluatePolicy", "AlertOperations", "DescribeFailure"):
            # A policy of its own, not the role's default one: the functions exist before the state
            # machine (it invokes them), so their default policies cannot name it without a cycle.
            policy = iam.Policy(
                self,
                f"{name}DescribeExecutions",
                roles=[self.roles[name]],
                statements=[
                    iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[execution_arn_pattern])
                ],
            )
            acknowledge_resource(
                policy,
                execution_arn_pattern,
                f"{name}: the executions of the gate's own state machine, whose names are chosen at start",
            )

    def _work_space_warning(self, config: GateConfig) -> None:
        """An artifact within the deployment's own caps that cannot fit the work space is a gate error at each
        inspection: said at synth, where the two settings meet."""
        unpacked = config.inspection.max_total_bytes or ArchiveLimits.max_total_bytes
        storage = config.inspector_ephemeral_storage_mb << 20
        if unpacked + DISK_RESERVE_BYTES > storage:
            Annotations.of(self).add_warning_v2(
                "training-gate:inspector-work-space",
                f"inspector_ephemeral_storage_mb {config.inspector_ephemeral_storage_mb} holds less than the "
                f"{unpacked} bytes an artifact may unpack to (inspection.max_total_bytes): an artifact between the "
                "two is a gate error for operations at every inspection; raise inspector_ephemeral_storage_mb or "
                "lower max_total_bytes",
            )

    def _build_inspector(self) -> lambda_.DockerImageFunction:
        """Container image: scikit-learn does not fit a zip package, and its version must be pinned."""
        config = self._config
        pair = image_pair(config.sklearn_version, config.inspector_python_version)
        unsupported = pair.support_warning()
        if unsupported:
            Annotations.of(self).add_warning_v2("training-gate:inspector-runtime-end-of-support", unsupported)
        if pair.base.digest is None:
            Annotations.of(self).add_warning_v2(
                "training-gate:inspector-base-not-pinned",
                f"the inspector's base image {pair.base.image} is not pinned by digest, so a later deploy may build on "
                "a newer image: run `python scripts/lock_inspector_image.py --base-digests` (needs Docker) and commit "
                "lambdas/inspector-image/base-images.json",
            )
        self._work_space_warning(config)
        role, log_group = self._function_role("InspectArtifact")
        inspector = lambda_.DockerImageFunction(
            self,
            "InspectArtifact",
            code=inspector_image_code(config.sklearn_version, config.inspector_python_version, cmd=[INSPECTOR_HANDLER]),
            role=role,
            log_group=log_group,
            memory_size=config.inspector_memory_mb,
            ephemeral_storage_size=Size.mebibytes(config.inspector_ephemeral_storage_mb),
            timeout=Duration.seconds(config.inspector_timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            environment=self._environment("InspectArtifact", "inspect_artifact", {}, settings=True),
        )
        # CompressionType NONE: the model is an S3 prefix, which the inspector must list.
        self._artifact_reads(
            inspector,
            "InspectArtifact",
            "reads each job's model.tar.gz and nothing else",
            "lists uncompressed model prefixes, and tells a missing artifact from a denied read",
        )
        if config.holdout and config.holdout.uri.startswith("s3://"):
            inspector.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[f"arn:{Aws.PARTITION}:s3:::{config.holdout.uri[5:]}"]
                )
            )
        return inspector
