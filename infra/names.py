"""The names a gate gives what it names itself, derived from its stack's name, so that two gates (staging and
production, say) live side by side in one account and region without sharing anything.

Most resources are named by CloudFormation (`<stack>-<logical id>-<suffix>`, within each service's limit). The
gate names a few itself: the prefix of the per-group policy parameters, the state machine's log group, the
dashboard, and the service name its functions log and publish metrics under. The stack named
`TrainingGateStack`, the only one earlier releases deployed, keeps the names it had (its stored policies stay
where they are); any other stack name gets names of its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aws_cdk import Stack
from constructs import Construct

DEFAULT_STACK_NAME = "TrainingGateStack"
# SSM parameter names: at most 1,011 characters (and 15 levels) for the full name.
# https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-parameter-name-constraints.html
PARAMETER_NAME_MAX = 1011
MODEL_PACKAGE_GROUP_MAX = 63
# CloudWatch dashboard names: up to 255 characters of A-Z, a-z, 0-9, "-" and "_".
DASHBOARD_NAME_MAX = 255
LOG_GROUP_NAME_MAX = 512
# SQS queue names: 1-80 characters of A-Z, a-z, 0-9, "-" and "_".
QUEUE_NAME_MAX = 80
# Contains "sagemaker": the AmazonSageMakerPipelinesIntegrations managed policy lets a pipeline's role send
# to queues whose name does (https://docs.aws.amazon.com/sagemaker/latest/dg/security-iam-awsmanpol-pipelines.html).
CALLBACK_QUEUE_SUFFIX = "sagemaker-callbacks"


@dataclass(frozen=True)
class GateNames:
    stack_name: str

    @property
    def is_default(self) -> bool:
        return self.stack_name == DEFAULT_STACK_NAME

    @property
    def policy_parameter_prefix(self) -> str:
        """Where a group's stored policy lives: `<prefix><group>`."""
        if self.is_default:
            return "/training-gate/policies/"
        return f"/training-gate/{self.stack_name}/policies/"

    def service(self, module: str) -> str:
        """POWERTOOLS_SERVICE_NAME: the `service` of every log line and the dimension of every metric."""
        return f"training-gate-{module}" if self.is_default else f"{self.stack_name}-{module}"

    @property
    def dashboard(self) -> str:
        return f"training-gate-{self.stack_name}"

    @property
    def callback_queue(self) -> str:
        """The queue SageMaker pipelines' CallbackSteps send to: named by the gate, so that a pipeline's role
        with the managed Pipelines policy may send to it, and two gates never share one."""
        if self.is_default:
            return f"training-gate-{CALLBACK_QUEUE_SUFFIX}"
        name = f"{self.stack_name}-{CALLBACK_QUEUE_SUFFIX}"
        if len(name) <= QUEUE_NAME_MAX:
            return name
        digest = hashlib.sha256(self.stack_name.encode()).hexdigest()[:8]
        keep = QUEUE_NAME_MAX - len(CALLBACK_QUEUE_SUFFIX) - len(digest) - 2
        return f"{self.stack_name[:keep]}-{digest}-{CALLBACK_QUEUE_SUFFIX}"

    @property
    def state_machine_log_group(self) -> str:
        # Vended logs need the /aws/vendedlogs/ prefix for the resource policy Step Functions writes.
        return f"/aws/vendedlogs/states/training-gate-{self.stack_name}"


def gate_names(scope: Construct) -> GateNames:
    return GateNames(Stack.of(scope).stack_name)
