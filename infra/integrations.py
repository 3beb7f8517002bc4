"""The Step Functions service integrations the workflow calls, by the placeholder the ASL names them with.

An integration's ARN names the partition (`arn:aws-cn:states:::sns:publish` in China), so the ASL holds a
placeholder for each, as it does for each function (`"Resource": "${SnsPublishArn}"`), and the stack
substitutes the ARN of its own partition. Both ASL validators (asl-validator, cfn-lint) accept a whole
placeholder as a Resource. Kept free of aws_cdk: docs/render.py labels the picture's tasks with it.
"""

from __future__ import annotations

# Placeholder -> the integration (service:api) it stands for. None today: each side effect of a decision
# checks in its own step that the execution owns the decision, which takes a function.
INTEGRATIONS: dict[str, str] = {}


def integration_arn(partition: str, integration: str) -> str:
    return f"arn:{partition}:states:::{integration}"
