"""The workflow: the ASL file (the single source of truth), its role, and the rules that start it
and report how it ended."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Annotations, ArnFormat, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import REPO_ROOT, GateConfig
from infra.functions import LOG_RETENTION, GateFunctions
from infra.integrations import INTEGRATIONS, integration_arn
from infra.nag import XRAY_REASON, acknowledge, acknowledge_wildcard
from infra.names import gate_names
from infra.patterns import TRAINING_JOB_DETAIL_TYPE, TUNING_JOB_DETAIL_TYPE, training_job_detail, tuning_job_detail
from infra.storage import DEAD_LETTER_RETENTION, Storage
from training_gate.domain.scope import TUNING_JOB_NAME_MAX, prefixes_no_tuning_job_matches

ASL_PATH = REPO_ROOT / "statemachine" / "training_gate.asl.json"
EVENT_DELIVERY_ATTEMPTS = 8
# How an execution ended that the operations alert looks at (it ignores the designed outcomes).
ALERT_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]


@dataclass(frozen=True)
class WorkflowProps:
    config: GateConfig
    storage: Storage
    functions: GateFunctions
    failed_starts: sqs.Queue


class GateWorkflow(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, props: WorkflowProps) -> None:
        super().__init__(scope, construct_id)
        self._config = props.config
        self._storage = props.storage
        self._functions = props.functions
        self.state_machine = self._build_state_machine()
        props.functions.grant_describe_executions(
            Stack.of(self).format_arn(
                service="states",
                resource="execution",
                resource_name=f"{self.state_machine.state_machine_name}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
        )
        self.trigger = self._build_trigger(props.failed_starts)
        self.tuning_trigger = self._build_tuning_trigger(props.failed_starts)
        # SageMaker pipelines' CallbackSteps start the workflow too: queue -> StartCallback -> execution.
        self.callback_bridge = props.functions.build_start_callback(self.state_machine)
        self.failed_alerts = sqs.Queue(
            self,
            "FailedAlerts",
            retention_period=DEAD_LETTER_RETENTION,
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
        )
        acknowledge(self.failed_alerts, "AwsSolutions-SQS3", "FailedAlerts: it is itself a dead-letter queue")
        # An alert the function itself fails on (after Lambda's own retries of the asynchronous
        # invocation) is kept too, with the event naming the execution: EventBridge's dead-letter queue
        # holds only events it could not hand to Lambda at all.
        props.functions.alert_operations.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.failed_alerts), retry_attempts=2
        )
        self.alert_rule = self._build_alert_rule()

    def _build_state_machine(self) -> sfn.StateMachine:
        functions = self._functions.workflow_functions
        role = iam.Role(self, "StateMachineRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
        # Unqualified ARNs only: the ASL invokes $LATEST, so no version wildcard is granted.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[f.function_arn for f in functions.values()]
            )
        )
        # No sns:Publish: every message of a decision (the owners', and operations' of a skipped one) is
        # sent by NotifyOwners, which checks the decision's ownership in the step that publishes (a redrive
        # re-enters that step, so a direct integration could not check it).
        acknowledge_wildcard(role, "Resource::*", f"StateMachine: {XRAY_REASON}; so does CloudWatch Logs delivery")
        substitutions = {f"{name}FunctionArn": fn.function_arn for name, fn in functions.items()}
        # Service integrations are named in the stack's partition (arn:aws-cn:states:::sns:publish in China).
        for placeholder, integration in INTEGRATIONS.items():
            substitutions[placeholder] = integration_arn(Aws.PARTITION, integration)
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            log_group_name=gate_names(self).state_machine_log_group,
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )
        if self._config.state_machine_log_level != "ALL":
            acknowledge(
                self,
                "AwsSolutions-SF1",
                f"StateMachine: log level {self._config.state_machine_log_level} chosen in cdk.json "
                "(state_machine_log_level); ALL is the default",
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

    def _build_trigger(self, failed_starts: sqs.Queue) -> events.Rule:
        config = self._config
        detail = training_job_detail(config.job_name_prefixes, config.job_tag_pair)
        if config.default_tag_scope:
            # A deployment from before the opt-in default gated every job; after an upgrade untagged jobs
            # silently stop being judged, so synth says so until the scope is written down in cdk.json.
            Annotations.of(self).add_warning_v2(
                "training-gate:untagged-jobs-not-gated",
                f"training-gate judges only training jobs tagged {config.job_tag.key}={config.job_tag.value} "
                "(the default scope): untagged jobs are no longer gated. Tag the jobs to gate, or write the "
                "scope in cdk.json to silence this: required_job_tag (this tag or another), job_name_prefixes, "
                "or gate_all_jobs: true to gate every job as before.",
            )
        rule = events.Rule(
            self,
            "TrainingJobStateChange",
            description="Start training-gate when a SageMaker training job of this account and region ends",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[TRAINING_JOB_DETAIL_TYPE],
                # An event forwarded from another account or region names a job that is not ours.
                account=[Aws.ACCOUNT_ID],
                region=[Aws.REGION],
                detail=detail,
            ),
        )
        rule.add_target(
            targets.SfnStateMachine(
                self.state_machine,
                input=events.RuleTargetInput.from_object(
                    {
                        "TrainingJobName": events.EventField.from_path("$.detail.TrainingJobName"),
                        "source_account": events.EventField.account,
                        "source_region": events.EventField.region,
                    }
                ),
                dead_letter_queue=failed_starts,
                retry_attempts=EVENT_DELIVERY_ATTEMPTS,
                max_event_age=Duration.hours(24),
            )
        )
        return rule

    def _build_tuning_trigger(self, failed_starts: sqs.Queue) -> events.Rule:
        """A tuning job that ends starts the same workflow, judged by its best training jobs. Its event
        names no best job (the workflow describes the tuning job) and carries its tags as an object, as
        a training job's does; the training jobs it launched carry the same tags and end quietly."""
        config = self._config
        detail = tuning_job_detail(config.job_name_prefixes, config.job_tag_pair)
        unmatched = prefixes_no_tuning_job_matches(config.job_name_prefixes)
        if unmatched:
            # Their training jobs match, their tuning jobs never can: each child is then judged on its own
            # (domain/scope.py), which is not what a team tuning under such a prefix expects.
            Annotations.of(self).add_warning_v2(
                "training-gate:prefix-longer-than-a-tuning-job-name",
                f"job_name_prefixes {', '.join(unmatched)}: longer than {TUNING_JOB_NAME_MAX} characters, the "
                "longest name a tuning job may have, so no tuning job's end starts the gate; the training jobs "
                "such a tuning job launches are each judged on their own. Shorten the prefix to gate the "
                "tuning job by its best training jobs.",
            )
        rule = events.Rule(
            self,
            "TuningJobStateChange",
            description="Start training-gate when a SageMaker tuning job of this account and region ends",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[TUNING_JOB_DETAIL_TYPE],
                account=[Aws.ACCOUNT_ID],
                region=[Aws.REGION],
                detail=detail,
            ),
        )
        rule.add_target(
            targets.SfnStateMachine(
                self.state_machine,
                input=events.RuleTargetInput.from_object(
                    {
                        "HyperParameterTuningJobName": events.EventField.from_path(
                            "$.detail.HyperParameterTuningJobName"
                        ),
                        "source_account": events.EventField.account,
                        "source_region": events.EventField.region,
                    }
                ),
                dead_letter_queue=failed_starts,
                retry_attempts=EVENT_DELIVERY_ATTEMPTS,
                max_event_age=Duration.hours(24),
            )
        )
        return rule

    def _build_alert_rule(self) -> events.Rule:
        """Every execution that ends failed, timed out or aborted reaches the alert function, which
        reads its error with DescribeExecution and tells operations unless it was a designed outcome.
        This covers what no Catch can: States.DataLimitExceeded, runtime errors, timeouts, aborts."""
        rule = events.Rule(
            self,
            "ExecutionEnded",
            description="training-gate executions that failed, timed out or were aborted",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [self.state_machine.state_machine_arn], "status": ALERT_STATUSES},
            ),
        )
        rule.add_target(
            targets.LambdaFunction(
                self._functions.alert_operations,
                dead_letter_queue=self.failed_alerts,
                retry_attempts=EVENT_DELIVERY_ATTEMPTS,
                max_event_age=Duration.hours(24),
            )
        )
        return rule
