"""Settings too large for a function's environment, in one document the stack writes to S3, and the check that
every function's environment stays inside what Lambda accepts.

Lambda refuses a function whose environment variables pass 4 KB in aggregate
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html, "Function configuration,
deployment, and execution"), and an SSM Standard parameter is capped at 4 KB too. A policy with many rules, a
`sample_input` of 25 rows x 30 features or a long list of groups would pass it, so these settings live in a
JSON document deployed as a file asset (the CDK's asset bucket, content-addressed: the same settings are the
same object). Each function that needs it gets its URI and sha256 in two small variables and read access to
that one object; the handler reads it once per cold start and refuses a document whose digest differs.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import AssetHashType, Stack, Stage, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.config import ConfigError
from training_gate.domain.settings import SETTINGS_SHA256_VARIABLE, SETTINGS_VARIABLE

ENVIRONMENT_MAX_BYTES = 4096
# The longest value a variable holding a deploy-time token can take, by variable; a token variable without a
# bound fails synthesis, so a new one cannot slip past the check. Names CloudFormation generates are within the
# service's own limits: a table name <= 255, a bucket name <= 63, an SNS topic ARN in the longest partition and
# region (arn:aws-us-gov:sns:us-gov-west-1:<12>:<256>) <= 300.
TOKEN_BOUNDS: dict[str, int] = {
    "DECISION_TABLE": 255,
    "REPORTS_BUCKET": 63,
    "OPERATIONS_TOPIC_ARN": 300,
    "NOTIFICATION_TOPIC_ARN": 300,
    # arn:<partition>:states:<region>:<account>:stateMachine:<name of at most 80 characters>
    "STATE_MACHINE_ARN": 256,
    SETTINGS_VARIABLE: len("s3://") + 63 + len("/") + 64 + len(".json"),
}


class DeploymentSettings(Construct):
    """The settings document: variable name -> the value the function would otherwise find in its environment."""

    def __init__(self, scope: Construct, construct_id: str, *, values: Mapping[str, str]) -> None:
        super().__init__(scope, construct_id)
        self.values = dict(values)
        content = json.dumps(self.values, sort_keys=True, separators=(",", ":")).encode()
        self.sha256 = hashlib.sha256(content).hexdigest()
        path = _staging_directory(self) / f"settings-{self.sha256}.json"
        path.write_bytes(content)
        self.asset = s3_assets.Asset(
            self, "Document", path=str(path), asset_hash=self.sha256, asset_hash_type=AssetHashType.CUSTOM
        )
        self.uri = f"s3://{self.asset.s3_bucket_name}/{self.asset.s3_object_key}"
        self.object_arn = self.asset.bucket.arn_for_objects(self.asset.s3_object_key)

    @property
    def environment(self) -> dict[str, str]:
        return {SETTINGS_VARIABLE: self.uri, SETTINGS_SHA256_VARIABLE: self.sha256}

    def statement(self) -> iam.PolicyStatement:
        """Read access to this document only."""
        return iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.object_arn])


def _staging_directory(scope: Construct) -> Path:
    outdir = Stage.of(scope).outdir if Stage.of(scope) else None
    directory = Path(outdir) / "training-gate-settings" if outdir else Path(tempfile.mkdtemp(prefix="settings-"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def environment_bytes(scope: Construct, variables: Mapping[str, str]) -> dict[str, int]:
    """Each variable's share of the environment as Lambda measures it (the JSON of the map: keys, values,
    quotes and separators), with deploy-time tokens at their longest."""
    stack = Stack.of(scope)
    sizes: dict[str, int] = {}
    for key, value in variables.items():
        resolved = stack.resolve(value)
        if isinstance(resolved, str) and not Token.is_unresolved(value):
            length = len(json.dumps(resolved, ensure_ascii=False).encode()) - 2
        elif key in TOKEN_BOUNDS:
            length = TOKEN_BOUNDS[key]
        else:
            raise ConfigError(
                f"environment variable {key} is only known at deploy time and has no bound in "
                "infra/settings.py TOKEN_BOUNDS: add the longest value it can take"
            )
        sizes[key] = len(json.dumps(key)) + 1 + length + 2 + 1  # "key":"value",
    return sizes


def check_environment(
    scope: Construct, function: str, variables: Mapping[str, str], settings_of: Mapping[str, str]
) -> int:
    """The function's environment size in bytes; fails synthesis, naming the settings, when Lambda would refuse it."""
    sizes = environment_bytes(scope, variables)
    total = sum(sizes.values()) + 1  # the braces, less the last comma
    if total > ENVIRONMENT_MAX_BYTES:
        largest = sorted(sizes.items(), key=lambda item: -item[1])[:5]
        named = ", ".join(f"{key} {size} bytes (from {settings_of.get(key, 'the stack')})" for key, size in largest)
        raise ConfigError(
            f"function {function}: its environment would be {total} bytes, over Lambda's {ENVIRONMENT_MAX_BYTES}: "
            f"{named}. Shorten the settings named, or move the variable into the settings document "
            "(infra/functions.py DOCUMENT_VARIABLES)"
        )
    return total
