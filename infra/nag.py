"""cdk-nag acknowledgements: each names the rule, the exact finding and why it is acceptable."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import Construct

NAG_IAM5 = "AwsSolutions::AwsSolutions-IAM5"
XRAY_REASON = "X-Ray PutTraceSegments/PutTelemetryRecords accept no narrower resource than *"


def acknowledge_wildcard(scope: Construct, finding: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{NAG_IAM5}[{finding}]", reason=reason))


def acknowledge(scope: Construct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def logical_id(construct: Construct) -> str:
    """The logical ID of a construct's CloudFormation resource, as cdk-nag prints it in findings."""
    stack = Stack.of(construct)
    default = construct.node.default_child
    assert isinstance(default, CfnResource)
    return str(stack.resolve(stack.get_logical_id(default)))
