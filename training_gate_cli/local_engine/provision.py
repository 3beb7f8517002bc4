"""The template's resources, created in the emulated account."""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import boto3

from training_gate.domain.settings import SETTINGS_VARIABLE
from training_gate_cli.local_engine.constants import ACCOUNT_ID, REGION, TRAINING_LOG_GROUP, LocalEngineError
from training_gate_cli.local_engine.template import resources_of, substitute

# Variables every function sets to its own value; harmless to share in one process.
_PER_FUNCTION_VARIABLES = {"POWERTOOLS_SERVICE_NAME"}
DECISION_EVENTS_RULE = "local-decision-events"


@dataclass
class LocalFunction:
    logical_id: str
    handler_path: str
    arn: str


@dataclass
class Account:
    """What provisioning created: names and ARNs by logical ID, and the queues the engine reads."""

    functions: dict[str, LocalFunction] = field(default_factory=dict)
    topic_arns: dict[str, str] = field(default_factory=dict)
    bucket_names: dict[str, str] = field(default_factory=dict)
    table_names: dict[str, str] = field(default_factory=dict)
    queue_urls: dict[str, str] = field(default_factory=dict)
    # The template's own queues, by logical ID: URL and ARN in the emulated account.
    template_queues: dict[str, tuple[str, str]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    definition: dict[str, Any] = field(default_factory=dict)
    state_machine_arn: str = ""
    state_machine_logical_id: str = ""
    owners_topic_arn: str = ""
    operations_topic_arn: str = ""


class Resolver:
    """The intrinsic functions the synthesized template uses for the gate's own resources. Resources the
    engine does not create (keys, log groups, roles, queues) resolve to the ARNs they would have here."""

    PSEUDO: ClassVar[dict[str, str]] = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }

    def __init__(self, account: Account, template: dict[str, Any] | None = None):
        self.account = account
        self.types = {k: v["Type"] for k, v in (template or {}).get("Resources", {}).items()}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict) and len(value) == 1:
            ((kind, arg),) = value.items()
            if kind == "Ref":
                return self.ref(arg)
            if kind == "Fn::GetAtt":
                return self.get_att(*arg)
            if kind == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in parts)
            if kind == "Fn::Sub" and isinstance(arg, str):
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub(m.group(1))), arg)
        if isinstance(value, dict) and not any(k.startswith(("Fn::", "Ref")) for k in value):
            return {k: self.resolve(v) for k, v in value.items()}
        raise LocalEngineError(f"the local engine cannot resolve {json.dumps(value)[:200]}")

    def _sub(self, name: str) -> Any:
        if "." in name:
            return self.get_att(*name.split(".", 1))
        return self.ref(name)

    def ref(self, name: str) -> str:
        account = self.account
        if name in self.PSEUDO:
            return self.PSEUDO[name]
        for table in (account.bucket_names, account.table_names, account.topic_arns):
            if name in table:
                return table[name]
        if name in account.functions:
            return name
        if name and name == account.state_machine_logical_id:
            return account.state_machine_arn
        kind = self.types.get(name)
        if kind == "AWS::SQS::Queue":
            if name in account.template_queues:
                return account.template_queues[name][0]
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
        if kind in ("AWS::IAM::Role", "AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::Events::Rule"):
            return name
        raise LocalEngineError(f"the local engine cannot resolve Ref {name}")

    def get_att(self, name: str, attribute: str) -> str:
        account = self.account
        if attribute == "Arn" and name in account.functions:
            return account.functions[name].arn
        if attribute == "Arn" and name in account.bucket_names:
            return f"arn:aws:s3:::{account.bucket_names[name]}"
        if attribute == "Arn" and name in account.table_names:
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{account.table_names[name]}"
        if name and name == account.state_machine_logical_id and attribute in ("Arn", "Name"):
            return account.state_machine_arn if attribute == "Arn" else account.state_machine_arn.rsplit(":", 1)[-1]
        if attribute == "TopicName" and name in account.topic_arns:
            return account.topic_arns[name].rsplit(":", 1)[-1]
        synthetic = {
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
            "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{name.lower()}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}",
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{name}",
        }
        kind = self.types.get(name)
        if kind == "AWS::SQS::Queue" and name in account.template_queues:
            url, arn = account.template_queues[name]
            if attribute in ("Arn", "QueueName", "QueueUrl"):
                return {"Arn": arn, "QueueName": arn.rsplit(":", 1)[-1], "QueueUrl": url}[attribute]
        if attribute == "Arn" and kind in synthetic:
            return synthetic[kind]
        if attribute == "QueueName" and kind == "AWS::SQS::Queue":
            return name
        raise LocalEngineError(f"the local engine cannot resolve Fn::GetAtt {name}.{attribute}")


def _queue_for(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _topic_ref(properties: dict[str, Any], key: str) -> str | None:
    ref = properties.get(key)
    return ref.get("Ref") if isinstance(ref, dict) else None


def _upload_settings(uri: str, assets: Path | None) -> None:
    """The settings document, where the CDK's asset publishing would put it (infra/settings.py): found by its
    object key in the assets manifest of the directory the template was written to."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if assets is None:
        raise LocalEngineError(f"the functions read their settings from {uri}: pass the cdk.out directory (assets=)")
    for manifest in Path(assets).glob("*.assets.json"):
        for asset in json.loads(manifest.read_text()).get("files", {}).values():
            if any(d.get("objectKey") == key for d in asset.get("destinations", {}).values()):
                s3 = boto3.client("s3")
                if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                    s3.create_bucket(Bucket=bucket)
                s3.put_object(Bucket=bucket, Key=key, Body=(Path(assets) / asset["source"]["path"]).read_bytes())
                return
    raise LocalEngineError(f"no asset in {assets} is published as {key}: synthesize again")


def _create_template_queues(template: dict[str, Any], account: Account, resolver: Resolver, sqs: Any) -> None:
    """The template's queues with the attributes SQS acts on here: their names, visibility timeout,
    retention and redrive policy (dead-letter queues first, so a redrive policy can name them)."""
    queues = resources_of(template, "AWS::SQS::Queue")

    def dead_letter_of(properties: dict[str, Any]) -> str | None:
        target = (properties.get("RedrivePolicy") or {}).get("deadLetterTargetArn")
        return target["Fn::GetAtt"][0] if isinstance(target, dict) and "Fn::GetAtt" in target else None

    ordered = sorted(queues, key=lambda logical_id: dead_letter_of(queues[logical_id]["Properties"]) is not None)
    for logical_id in ordered:
        properties = queues[logical_id]["Properties"]
        attributes = {
            key: str(properties[name])
            for name, key in (
                ("VisibilityTimeout", "VisibilityTimeout"),
                ("MessageRetentionPeriod", "MessageRetentionPeriod"),
            )
            if name in properties
        }
        redrive = properties.get("RedrivePolicy")
        if redrive:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": resolver.resolve(redrive["deadLetterTargetArn"]),
                    "maxReceiveCount": redrive["maxReceiveCount"],
                }
            )
        url = sqs.create_queue(QueueName=properties.get("QueueName", logical_id), Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        account.template_queues[logical_id] = (url, arn)


def provision(template: dict[str, Any], assets: Path | None = None) -> Account:
    account = Account()
    resolver = Resolver(account, template)
    iam = boto3.client("iam")
    role_arn = iam.create_role(RoleName="local-gate", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    sns = boto3.client("sns")
    for logical_id in resources_of(template, "AWS::SNS::Topic"):
        account.topic_arns[logical_id] = sns.create_topic(Name=logical_id)["TopicArn"]
    machines = resources_of(template, "AWS::StepFunctions::StateMachine")
    if len(machines) != 1:
        raise LocalEngineError(f"expected one state machine in the template, found {len(machines)}")
    account.state_machine_logical_id, machine_resource = next(iter(machines.items()))
    machine = machine_resource["Properties"]
    # The operations topic is the one every function that tells operations names (OPERATIONS_TOPIC_ARN);
    # the owners' topic is the other.
    named = {
        _topic_ref(function["Properties"].get("Environment", {}).get("Variables", {}), "OPERATIONS_TOPIC_ARN")
        for function in resources_of(template, "AWS::Lambda::Function").values()
    } - {None}
    if len(named) != 1 or next(iter(named)) not in account.topic_arns:
        raise LocalEngineError(f"expected one operations topic of the template in OPERATIONS_TOPIC_ARN, found {named}")
    operations = next(iter(named))
    account.operations_topic_arn = account.topic_arns[operations]
    owners = [arn for logical_id, arn in account.topic_arns.items() if logical_id != operations]
    if len(owners) != 1:
        raise LocalEngineError(f"expected one owners' topic beside the operations topic, found {len(owners)}")
    account.owners_topic_arn = owners[0]

    # What people receive, read through a queue subscribed to each topic.
    sqs = boto3.client("sqs")
    for kind, topic_arn in (("owners", account.owners_topic_arn), ("operations", account.operations_topic_arn)):
        if topic_arn:
            url, queue_arn = _queue_for(sqs, f"local-{kind}")
            account.queue_urls[kind] = url
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    # Decision events: a rule on the default bus delivers them to a queue the engine reads.
    url, queue_arn = _queue_for(sqs, "local-decision-events")
    account.queue_urls["decision_events"] = url
    events = boto3.client("events")
    events.put_rule(Name=DECISION_EVENTS_RULE, EventPattern=json.dumps({"source": ["training-gate"]}))
    events.put_targets(Rule=DECISION_EVENTS_RULE, Targets=[{"Id": "queue", "Arn": queue_arn}])

    _create_template_queues(template, account, resolver, sqs)

    s3 = boto3.client("s3")
    for logical_id in resources_of(template, "AWS::S3::Bucket"):
        name = logical_id.lower()
        s3.create_bucket(Bucket=name)
        account.bucket_names[logical_id] = name

    dynamodb = boto3.client("dynamodb")
    for logical_id, resource in resources_of(template, "AWS::DynamoDB::Table").items():
        properties = resource["Properties"]
        dynamodb.create_table(
            TableName=logical_id,
            KeySchema=properties["KeySchema"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
        account.table_names[logical_id] = logical_id

    lambda_client = boto3.client("lambda")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("placeholder.py", "# the local engine runs the real handler in-process\n")
    for logical_id, resource in resources_of(template, "AWS::Lambda::Function").items():
        properties = resource["Properties"]
        handler = properties.get("Handler") or properties.get("ImageConfig", {}).get("Command", [None])[0]
        if not handler:
            raise LocalEngineError(f"function {logical_id} has neither Handler nor ImageConfig.Command")
        arn = lambda_client.create_function(
            FunctionName=logical_id,
            Runtime="python3.12",
            Role=role_arn,
            Handler="placeholder.handler",
            Code={"ZipFile": code.getvalue()},
        )["FunctionArn"]
        account.functions[logical_id] = LocalFunction(logical_id, handler, arn)

    definition = resolver.resolve(machine["DefinitionString"])
    values = {k: str(resolver.resolve(v)) for k, v in machine.get("DefinitionSubstitutions", {}).items()}
    account.definition = json.loads(substitute(definition, values))
    account.state_machine_arn = boto3.client("stepfunctions").create_state_machine(
        name="training-gate", definition=json.dumps(account.definition), roleArn=role_arn
    )["stateMachineArn"]

    # After the state machine: a function may name it (the callback bridge starts it).
    for resource in resources_of(template, "AWS::Lambda::Function").values():
        for key, raw in resource["Properties"].get("Environment", {}).get("Variables", {}).items():
            value = str(resolver.resolve(raw))
            known = account.environment.get(key)
            if known is not None and known != value and key not in _PER_FUNCTION_VARIABLES:
                raise LocalEngineError(f"functions disagree on {key}; in-process handlers share one environment")
            account.environment[key] = value
    if SETTINGS_VARIABLE in account.environment:
        _upload_settings(account.environment[SETTINGS_VARIABLE], assets)
    boto3.client("logs").create_log_group(logGroupName=TRAINING_LOG_GROUP)
    return account
