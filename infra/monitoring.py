"""Alarms for everything that needs an operator, and a dashboard driven by the domain's own names."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.functions import GateFunctions
from infra.names import gate_names
from infra.storage import Storage
from infra.workflow import GateWorkflow
from training_gate.domain.policy import Outcome, ReasonCode

ALARM_PERIOD = Duration.minutes(5)


def _failed_invocations(rule: events.Rule) -> cloudwatch.Metric:
    """Events a rule matched but could not deliver to its target (after its retries)."""
    return cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name="FailedInvocations",
        dimensions_map={"RuleName": rule.rule_name},
        statistic="Sum",
        period=ALARM_PERIOD,
    )


@dataclass(frozen=True)
class MonitoringProps:
    storage: Storage
    functions: GateFunctions
    workflow: GateWorkflow
    failed_starts: sqs.Queue


class GateMonitoring(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, props: MonitoringProps) -> None:
        super().__init__(scope, construct_id)
        self._props = props
        self._admit_cloudwatch_alarms()
        self.alarms = self._build_alarms()
        self.dashboard = self._build_dashboard()

    def _admit_cloudwatch_alarms(self) -> None:
        """Alarms publish to the operations topic only if its policy admits CloudWatch, limited to this
        account's alarms (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html).
        The key's policy admits CloudWatch too (infra/storage.py, or the README for a key of your own)."""
        stack = Stack.of(self)
        self._props.storage.operations_topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self._props.storage.operations_topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm:*")},
                },
            )
        )

    def _build_alarms(self) -> list[cloudwatch.Alarm]:
        props = self._props
        # One path per failure: an execution that fails, times out or is aborted reaches operations
        # through the alert function, so there is no alarm on executions or on the workflow functions'
        # errors (each such error ends an execution as GateError). What has no other path does: the
        # deliveries, the dead letters, the topics, throttling, and the alert function itself.
        metrics: dict[str, cloudwatch.IMetric] = {
            "FailedEventDeliveries": _failed_invocations(props.workflow.trigger),
            "FailedTuningEventDeliveries": _failed_invocations(props.workflow.tuning_trigger),
            "FailedAlertDeliveries": _failed_invocations(props.workflow.alert_rule),
            "DeadLetters": props.failed_starts.metric_approximate_number_of_messages_visible(period=ALARM_PERIOD),
            "UndeliveredAlerts": props.workflow.failed_alerts.metric_approximate_number_of_messages_visible(
                period=ALARM_PERIOD
            ),
            # A pipeline's callback message that never started an execution: its pipeline waits.
            "CallbackDeadLetters": props.storage.callback_dead_letters.metric_approximate_number_of_messages_visible(
                period=ALARM_PERIOD
            ),
            # A notification SNS accepted but could not deliver (an endpoint refusing, a key disabled).
            "OwnerNotificationsFailed": props.storage.topic.metric_number_of_notifications_failed(period=ALARM_PERIOD),
            "OperationsNotificationsFailed": props.storage.operations_topic.metric_number_of_notifications_failed(
                period=ALARM_PERIOD
            ),
        }
        metrics["AlertOperationsErrors"] = props.functions.alert_operations.metric_errors(period=ALARM_PERIOD)
        # The bridge reports a message it could not start as a batch item failure, not an error; an error
        # here failed a whole batch (SQS delivers it again, then to the dead-letter queue).
        if props.functions.start_callback is not None:
            metrics["StartCallbackErrors"] = props.functions.start_callback.metric_errors(period=ALARM_PERIOD)
        for name, function in props.functions.all.items():
            metrics[f"{name}Throttles"] = function.metric_throttles(period=ALARM_PERIOD)
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
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(props.storage.operations_topic))
            alarms.append(alarm)
        return alarms

    def _build_dashboard(self) -> cloudwatch.Dashboard:
        names = gate_names(self)

        def gate_metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="TrainingGate",
                metric_name=name,
                dimensions_map={"service": names.service("evaluate_policy")},
                statistic="Sum",
                period=Duration.hours(1),
            )

        machine = self._props.workflow.state_machine
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=names.dashboard)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Decisions",
                left=[gate_metric(f"Decisions_{outcome.value}") for outcome in Outcome],
                stacked=True,
            ),
            cloudwatch.GraphWidget(
                title="Failures by reason",
                # Every reason code the policy can give, so a new one is graphed the day it exists.
                left=[gate_metric(f"Reason_{code.value}") for code in ReasonCode],
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
                            f'MetricName="MetricValue" service="{names.service("evaluate_policy")}"\', '
                            "'Maximum', 3600)"
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
                    machine.metric_time(statistic="p50", period=Duration.hours(1)),
                    machine.metric_time(statistic="p90", period=Duration.hours(1)),
                ],
            ),
        )
        return dashboard
