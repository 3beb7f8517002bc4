"""Where the Powertools for AWS Lambda (Python) layer comes from, per partition and region, pinned.

Powertools publishes its layer from one account in the commercial regions, another in China (cn-north-1) and
one per GovCloud region, with the same version number everywhere (Powertools docs, "Installation" > "Lambda
Layer", "AWS China regions", "AWS GovCloud regions":
https://docs.aws.amazon.com/powertools/python/latest/getting-started/install/). The version is pinned here,
so every deploy of a release gets the same layer; nothing resolves a moving `latest` at deploy time.

- A concrete region (what `cdk deploy` synthesizes) gets its ARN written into the template; a region with no
  published layer (cn-northwest-1, say) fails synthesis asking for `powertools_layer_arn`.
- An environment-agnostic template carries the table as a mapping keyed by region (`PowertoolsLayerByRegion`).
- `powertools_layer_arn` pins a layer of your own choice (your own copy, another version); it must be in the
  stack's partition and, when the region is known, in the stack's region.

To move the pin: change POWERTOOLS_LAYER_VERSION (and the publishers, if the docs list new ones), check the
release it carries with `aws lambda get-layer-version-by-arn` (its Description names the Powertools version),
and keep requirements.txt's aws-lambda-powertools on that release.
"""

from __future__ import annotations

from aws_cdk import Annotations, Aws, CfnMapping, Stack, Token
from constructs import Construct

from infra.config import ConfigError, GateConfig

POWERTOOLS_LAYER_VERSION = 27
LAYER_NAME = "AWSLambdaPowertoolsPythonV3-{runtime}-{architecture}"
COMMERCIAL_ACCOUNT = "017000801446"
# The commercial regions the docs list a layer for (docs/includes/_layer_homepage_x86.md).
COMMERCIAL_REGIONS = (
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)
# Region -> the account that publishes the layer there.
PUBLISHERS: dict[str, str] = {
    **dict.fromkeys(COMMERCIAL_REGIONS, COMMERCIAL_ACCOUNT),
    "cn-north-1": "498634801083",
    "us-gov-east-1": "165087284144",
    "us-gov-west-1": "165093116878",
}
MAPPING_ID = "PowertoolsLayerByRegion"


def partition_of(region: str) -> str:
    """The partition a region belongs to (the three the gate is built for)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def layer_name(runtime: str, architecture: str) -> str:
    return LAYER_NAME.format(runtime=runtime.replace(".", ""), architecture=architecture)


def layer_arn(region: str, runtime: str, architecture: str, version: int = POWERTOOLS_LAYER_VERSION) -> str:
    """The published layer version ARN in `region`; KeyError when Powertools publishes none there."""
    account = PUBLISHERS[region]
    return f"arn:{partition_of(region)}:lambda:{region}:{account}:layer:{layer_name(runtime, architecture)}:{version}"


def powertools_layer_arn(scope: Construct, config: GateConfig, runtime: str, architecture: str) -> str:
    """The layer version ARN the zip functions use, for the stack's partition and region."""
    stack = Stack.of(scope)
    region = None if Token.is_unresolved(stack.region) else stack.region
    if config.powertools_layer_arn:
        return _checked_pin(scope, config.powertools_layer_arn, region, runtime, architecture)
    version = config.powertools_layer_version or POWERTOOLS_LAYER_VERSION
    if region is not None:
        if region not in PUBLISHERS:
            raise ConfigError(
                f"Powertools publishes no Lambda layer in {region} (partition {partition_of(region)}; its docs list "
                f"{', '.join(sorted(r for r in PUBLISHERS if partition_of(r) == partition_of(region)))}): set "
                f"training-gate.powertools_layer_arn to a {layer_name(runtime, architecture)} layer version ARN "
                f"in {region}, for instance a copy published in your own account"
            )
        return layer_arn(region, runtime, architecture, version)
    # Environment-agnostic: CloudFormation picks the region's ARN when the template is deployed.
    mapping = CfnMapping(
        stack,
        MAPPING_ID,
        mapping={r: {"arn": layer_arn(r, runtime, architecture, version)} for r in sorted(PUBLISHERS)},
    )
    return mapping.find_in_map(Aws.REGION, "arn")


def _checked_pin(scope: Construct, arn: str, region: str | None, runtime: str, architecture: str) -> str:
    parts = arn.split(":")
    if region is not None:
        if parts[1] != partition_of(region) or parts[3] != region:
            raise ConfigError(
                f"training-gate.powertools_layer_arn {arn} is in {parts[1]}/{parts[3]}, but the stack deploys to "
                f"{partition_of(region)}/{region}: a function can only use a layer of its own region"
            )
    if layer_name(runtime, architecture) not in parts[6]:
        Annotations.of(scope).add_warning_v2(
            "training-gate:powertools-layer-name",
            f"powertools_layer_arn names layer {parts[6]}, not {layer_name(runtime, architecture)}: the functions run "
            f"{runtime} on {architecture}, and a layer built for another runtime or architecture may not import",
        )
    return arn
