"""cdk-nag acknowledgements: each names the rule, the exact finding and why it is acceptable.

A wildcard finding is acknowledged with the very value the policy holds (`acknowledge_resource`), flattened
as cdk-nag flattens it: the same acknowledgement then matches whether the stack is environment-agnostic
(`arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:...`) or deployed to a concrete account and
region, as `cdk deploy` synthesizes it (`arn:<AWS::Partition>:sagemaker:eu-central-1:123456789012:...`)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import Construct

NAG_IAM5 = "AwsSolutions::AwsSolutions-IAM5"
XRAY_REASON = "X-Ray PutTraceSegments/PutTelemetryRecords accept no narrower resource than *"


def flatten(reference: Any) -> str:
    """A resolved CloudFormation value as cdk-nag prints it in a finding (its utils/flatten-cfn-reference.js):
    joins concatenated, `Ref` as `<Name>`, `Fn::GetAtt` as `<Name.Attribute>`, `${...}` as `<...>`."""
    if reference is None:
        return ""
    if isinstance(reference, str):
        return reference.replace("${", "<").replace("}", ">")
    if isinstance(reference, dict):
        if "Fn::Join" in reference:
            delimiter, items = reference["Fn::Join"]
            return delimiter.join(flatten(item) for item in items)
        if "Fn::Sub" in reference:
            return flatten(reference["Fn::Sub"])
        if "Fn::GetAtt" in reference:
            resource, attribute = reference["Fn::GetAtt"]
            return f"<{flatten(resource)}.{flatten(attribute)}>"
        if "Fn::ImportValue" in reference:
            return flatten(reference["Fn::ImportValue"])
        if "Ref" in reference:
            return f"<{flatten(reference['Ref'])}>"
    raise ValueError(f"cdk-nag would print {reference!r} as JSON; acknowledge it by its literal finding instead")


def finding(scope: Construct, value: str) -> str:
    """The `Resource::...` part of an IAM5 finding for a policy resource `value` (a string that may hold tokens)."""
    return f"Resource::{flatten(Stack.of(scope).resolve(value))}"


def acknowledge_resource(scope: Construct, value: str, reason: str) -> None:
    """Acknowledge the wildcard in the resource `value` of a statement of `scope`'s policy."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{NAG_IAM5}[{finding(scope, value)}]", reason=reason))


def acknowledge_wildcard(scope: Construct, finding_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{NAG_IAM5}[{finding_id}]", reason=reason))


def acknowledge(scope: Construct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def logical_id(construct: Construct) -> str:
    """The logical ID of a construct's CloudFormation resource, as cdk-nag prints it in findings."""
    stack = Stack.of(construct)
    default = construct.node.default_child
    assert isinstance(default, CfnResource)
    return str(stack.resolve(stack.get_logical_id(default)))
