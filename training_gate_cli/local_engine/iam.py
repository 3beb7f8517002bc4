"""IAM as AWS evaluates it, for every call the gate itself makes in the emulated account.

The roles and policies come from the synthesized template and are created in the emulated IAM. Each
function's handler runs as its own role (assumed through the emulated STS, which checks that the role
trusts lambda.amazonaws.com); the state machine's tasks run as the state machine's role (trusting
states.amazonaws.com). Every request such a principal makes is evaluated against that role's policies, with
the resource ARN the request acts on, and refused with the service's own AccessDenied error when AWS would
refuse it. Calls the engine and the tests make to set the account up are not the gate's and are not checked.

moto has an IAM mode of its own (`moto.core.authorization`), but it knows the resource of a request only
for S3, SQS, IAM and STS: for every other service it checks the action against `*`, so a policy scoped to a
resource never allows anything (tests/engine/test_iam_enforcement.py shows both). This module computes
the resource itself, from the request, per action: `RESOURCES` below. A call of an action that is not in
`RESOURCES` fails loudly, naming the action, so a new call cannot go unchecked. To prove the permission
of a new call: add one line to `RESOURCES` (the action as IAM names it, and the ARN the request acts on,
as the service's authorization reference gives it); the scenario that makes the call then runs it against
the synthesized role and fails with AccessDenied until the role grants it.

Identity policies only, in one account: an explicit Deny wins, otherwise one Allow is needed; `Action`,
`NotAction`, `Resource`, `NotResource` with `*` and `?`. A statement with a `Condition` is refused at load
(none of the gate's roles needs one; evaluating it half would be worse). Calls that AWS makes on the
caller's behalf are checked too: publishing to an SNS topic or reading and writing an S3 object encrypted
with a KMS key also needs the key (`IMPLIED_KMS`).

The hooks into moto are private (ActionAuthenticatorMixin._authenticate_and_authorize_action, the access
key moto's Step Functions interpreter signs with): each has its canary in tests/engine/test_iam_enforcement.py.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from urllib.parse import unquote

import boto3

from training_gate_cli.local_engine.constants import LocalEngineError
from training_gate_cli.local_engine.template import resources_of

# The access key moto's Step Functions interpreter signs its task calls with
# (moto/stepfunctions/parser/asl/utils/boto_client.py): those calls are the state machine's role's.
INTERPRETER_ACCESS_KEY = "ak"
LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
_PERSON = "\0person"
STATES_PRINCIPAL = "states.amazonaws.com"
# The signing name of a service, where its IAM prefix differs.
IAM_PREFIX = {"monitoring": "cloudwatch"}
# Operations whose IAM action has another name.
ACTION_OF_OPERATION = {"lambda:Invoke": "lambda:InvokeFunction"}


class Request:
    """What the authorizer needs of a request moto is about to handle."""

    def __init__(self, response: Any, service: str, action: str, region: str, account: str, s3_resource: str):
        self._response = response
        self.service = service
        self.action = action
        self.region = region
        self.account = account
        self.s3_resource = s3_resource
        from moto.utilities.utils import get_partition

        self.partition = get_partition(region)

    def param(self, name: str) -> Any:
        uri = getattr(self._response, "uri_match", None) or {}
        if name in uri:
            return unquote(uri[name])
        return self._response._get_param(name)

    def required(self, name: str) -> str:
        value = self.param(name)
        if not value:
            raise LocalEngineError(f"{self.action}: the request has no {name}, the IAM model cannot name its resource")
        return str(value)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


def _model_package(request: Request) -> list[str]:
    name = request.required("ModelPackageName")
    # SageMaker lowercases the resource names in its ARNs; IAM matches that form.
    return [name if name.startswith("arn:") else request.arn("sagemaker", f"model-package/{name.lower()}")]


def _group(request: Request) -> str:
    name = request.required("ModelPackageGroupName")
    return name if name.startswith("arn:") else request.arn("sagemaker", f"model-package-group/{name.lower()}")


def _create_model_package(request: Request) -> list[str]:
    if request.param("ModelPackageGroupName"):
        # A versioned package: its version is not known before the call. Both the group and a package in it
        # are required (conservatively: the authorization reference lists both resource types).
        group = _group(request)
        return [group, group.replace(":model-package-group/", ":model-package/") + "/*"]
    return _model_package(request)


def _events_buses(request: Request) -> list[str]:
    buses = {entry.get("EventBusName") or "default" for entry in request.param("Entries") or []}
    return [b if b.startswith("arn:") else request.arn("events", f"event-bus/{b}") for b in sorted(buses)]


def _lambda_function(request: Request) -> list[str]:
    name = request.required("FunctionName")
    arn = name if name.startswith("arn:") else request.arn("lambda", f"function:{name}")
    qualifier = request.param("Qualifier")
    return [f"{arn}:{qualifier}" if qualifier else arn]


def _queue(request: Request) -> list[str]:
    url = request.required("QueueUrl")
    account, name = url.rstrip("/").split("/")[-2:]
    return [f"arn:{request.partition}:sqs:{request.region}:{account}:{name}"]


def _training_job(name_param: str, kind: str) -> Callable[[Request], list[str]]:
    return lambda r: [r.arn("sagemaker", f"{kind}/{r.required(name_param).lower()}")]


def _param_arn(name: str) -> Callable[[Request], list[str]]:
    return lambda r: [r.required(name)]


def _s3(request: Request) -> list[str]:
    return [request.s3_resource]


def _log_group(request: Request) -> list[str]:
    # "Use the [ARN] with the trailing :* ... when specifying permissions in IAM policies" for these actions
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html).
    name = request.param("logGroupName") or request.required("logGroupIdentifier")
    return [name if name.startswith("arn:") else request.arn("logs", f"log-group:{name}:*")]


def _table(request: Request) -> list[str]:
    return [request.arn("dynamodb", f"table/{request.required('TableName')}")]


def _ssm_parameter(request: Request) -> list[str]:
    return [request.arn("ssm", f"parameter/{request.required('Name').lstrip('/')}")]


def _everything(request: Request) -> list[str]:
    return ["*"]


# The resource each action acts on, as the Service Authorization Reference names it
# (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
# "*" is for the actions that support no resource-level permission.
RESOURCES: dict[str, Callable[[Request], list[str]]] = {
    "sagemaker:DescribeTrainingJob": _training_job("TrainingJobName", "training-job"),
    "sagemaker:DescribeHyperParameterTuningJob": _training_job(
        "HyperParameterTuningJobName", "hyper-parameter-tuning-job"
    ),
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob": _training_job(
        "HyperParameterTuningJobName", "hyper-parameter-tuning-job"
    ),
    "sagemaker:ListTags": _param_arn("ResourceArn"),
    "sagemaker:AddTags": _param_arn("ResourceArn"),
    "sagemaker:ListModelPackages": _everything,
    "sagemaker:DescribeModelPackage": _model_package,
    "sagemaker:UpdateModelPackage": _param_arn("ModelPackageArn"),
    "sagemaker:CreateModelPackage": _create_model_package,
    "sagemaker:DescribeModelPackageGroup": lambda r: [_group(r)],
    "sagemaker:CreateModelPackageGroup": lambda r: [_group(r)],
    "s3:GetObject": _s3,
    "s3:PutObject": _s3,
    "s3:ListBucket": _s3,
    "dynamodb:GetItem": _table,
    "dynamodb:PutItem": _table,
    "dynamodb:UpdateItem": _table,
    "dynamodb:DeleteItem": _table,
    "dynamodb:Query": _table,
    "sns:Publish": lambda r: [r.param("TopicArn") or r.required("TargetArn")],
    "events:PutEvents": _events_buses,
    "ssm:GetParameter": _ssm_parameter,
    "logs:FilterLogEvents": _log_group,
    "logs:DescribeLogStreams": _log_group,
    "logs:GetLogEvents": _log_group,
    "states:DescribeExecution": _param_arn("executionArn"),
    "states:StartExecution": _param_arn("stateMachineArn"),
    "lambda:InvokeFunction": _lambda_function,
    "cloudwatch:GetMetricStatistics": _everything,
    "cloudwatch:PutMetricData": _everything,
    "sqs:SendMessage": _queue,
    # What Lambda's SQS event source mapping does with the function's role
    # (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html, "Execution role permissions").
    "sqs:ReceiveMessage": _queue,
    "sqs:DeleteMessage": _queue,
    "sqs:ChangeMessageVisibility": _queue,
    "sqs:GetQueueAttributes": _queue,
    # The request names a callback token, not a resource: the reference lists no resource type to scope it to.
    "sagemaker:SendPipelineExecutionStepSuccess": _everything,
    "sagemaker:SendPipelineExecutionStepFailure": _everything,
}
# What AWS does with the key on the caller's behalf: SNS encrypts a message for an encrypted topic
# (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html), S3 an object in an SSE-KMS bucket
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms).
IMPLIED_KMS: dict[str, tuple[str, ...]] = {
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
    "s3:PutObject": ("kms:GenerateDataKey",),
    "s3:GetObject": ("kms:Decrypt",),
}


# -- policies -----------------------------------------------------------------------------------


def _wildcard(pattern: str, value: str, *, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str) -> Statement:
        if "Condition" in raw:
            raise LocalEngineError(f"{where}: a statement with a Condition; the local IAM model does not evaluate them")
        if "Principal" in raw or "NotPrincipal" in raw:
            raise LocalEngineError(f"{where}: a Principal in an identity policy")
        return cls(
            effect=raw["Effect"],
            actions=tuple(_listed(raw.get("Action", []))),
            not_actions=tuple(_listed(raw.get("NotAction", []))),
            resources=tuple(_listed(raw.get("Resource", []))),
            not_resources=tuple(_listed(raw.get("NotResource", []))),
        )

    def applies(self, action: str, resource: str) -> bool:
        if self.actions:
            if not any(_wildcard(a, action, ignore_case=True) for a in self.actions):
                return False
        elif any(_wildcard(a, action, ignore_case=True) for a in self.not_actions):
            return False
        if self.resources:
            return any(_wildcard(r, resource, ignore_case=False) for r in self.resources)
        return not any(_wildcard(r, resource, ignore_case=False) for r in self.not_resources)


@dataclass
class Role:
    logical_id: str
    arn: str
    trust: dict[str, Any]
    statements: list[Statement] = field(default_factory=list)

    def allows(self, action: str, resource: str) -> bool:
        applying = [s for s in self.statements if s.applies(action, resource)]
        return any(s.effect == "Allow" for s in applying) and not any(s.effect == "Deny" for s in applying)

    def trusts(self, service_principal: str) -> bool:
        for raw in _listed_statements(self.trust):
            actions = _listed(raw.get("Action", []))
            services = _listed(raw.get("Principal", {}).get("Service", []))
            if raw.get("Effect") == "Allow" and "sts:AssumeRole" in actions and service_principal in services:
                return True
        return False


def _listed_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def roles_of(template: dict[str, Any], resolve: Callable[[Any], Any]) -> dict[str, Role]:
    """Every role of the template with the statements of its inline and attached policies, resolved."""
    roles: dict[str, Role] = {}
    for logical_id, resource in resources_of(template, "AWS::IAM::Role").items():
        properties = resource["Properties"]
        if properties.get("ManagedPolicyArns"):
            raise LocalEngineError(f"role {logical_id} attaches managed policies; the local IAM model cannot read them")
        arn = resolve({"Fn::GetAtt": [logical_id, "Arn"]})
        role = Role(logical_id, arn, resolve(properties["AssumeRolePolicyDocument"]))
        for policy in properties.get("Policies", []):
            document = resolve(policy["PolicyDocument"])
            role.statements += [Statement.parse(s, logical_id) for s in _listed_statements(document)]
        roles[logical_id] = role
    for logical_id, resource in resources_of(template, "AWS::IAM::Policy").items():
        properties = resource["Properties"]
        document = resolve(properties["PolicyDocument"])
        for ref in properties.get("Roles", []):
            role = roles[ref["Ref"]]
            role.statements += [Statement.parse(s, logical_id) for s in _listed_statements(document)]
    return roles


def _role_of(properties: dict[str, Any], key: str) -> str:
    value = properties.get(key)
    if not (isinstance(value, dict) and "Fn::GetAtt" in value):
        raise LocalEngineError(f"expected {key} to name a role of the template, got {json.dumps(value)[:200]}")
    return value["Fn::GetAtt"][0]


# -- enforcement ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    role: str
    action: str
    resource: str
    allowed: bool


class AccessDenied(Exception):
    def __init__(self, call: Call, principal_arn: str):
        super().__init__(
            f"User: {principal_arn} is not authorized to perform: {call.action} on resource: {call.resource} "
            "because no identity-based policy allows the action"
        )
        self.call = call


class Enforcement:
    """The emulated account's IAM for the gate's roles; records every call a role made."""

    def __init__(self, template: dict[str, Any], resolve: Callable[[Any], Any]):
        self.roles = roles_of(template, resolve)
        self.function_roles = {
            logical_id: _role_of(resource["Properties"], "Role")
            for logical_id, resource in resources_of(template, "AWS::Lambda::Function").items()
        }
        machines = resources_of(template, "AWS::StepFunctions::StateMachine")
        self.state_machine_role = _role_of(next(iter(machines.values()))["Properties"], "RoleArn") if machines else None
        self.kms_keys = _kms_keys(template, resolve)
        # Every permission checked (a call, and what it implies: a KMS key, s3:ListBucket for a missing key).
        self.calls: list[Call] = []
        self.requests = 0
        self.refused = 0
        self._sessions: dict[str, str] = {}
        self._local = threading.local()
        self._lock = threading.Lock()

    # -- who is calling -------------------------------------------------------------------

    def start(self) -> None:
        """Each function's role and the state machine's, assumed through the emulated STS as their services
        assume them: a role that does not trust its service fails here, as its first invocation would."""
        for function, role in self.function_roles.items():
            self._assume(self.roles[role], LAMBDA_PRINCIPAL, function)
        if self.state_machine_role:
            self._assume(self.roles[self.state_machine_role], STATES_PRINCIPAL, "state-machine")

    @contextlib.contextmanager
    def acting_as_function(self, function: str) -> Iterator[None]:
        """The handler of `function` runs as its role in this thread, as Lambda runs it with its credentials."""
        role = self.roles[self.function_roles[function]]
        previous = getattr(self._local, "role", None)
        self._local.role = role.logical_id
        try:
            yield
        finally:
            self._local.role = previous

    def _assume(self, role: Role, service: str, session: str) -> None:
        if role.logical_id in self._sessions:
            return
        if not role.trusts(service):
            raise LocalEngineError(f"role {role.logical_id} does not trust {service}: the service could not assume it")
        credentials = boto3.client("sts").assume_role(RoleArn=role.arn, RoleSessionName=session[:64])
        self._sessions[role.logical_id] = credentials["AssumedRoleUser"]["Arn"]

    @contextlib.contextmanager
    def acting_as_person(self) -> Iterator[None]:
        """Calls a test makes from inside a handler to stand for a person or another system (stopping the
        execution, say): not the function's."""
        previous = getattr(self._local, "role", None)
        self._local.role = _PERSON
        try:
            yield
        finally:
            self._local.role = previous

    def principal(self, access_key: str) -> Role | None:
        role = getattr(self._local, "role", None)
        if role == _PERSON:
            return None
        if role is not None:
            return self.roles[role]
        if access_key == INTERPRETER_ACCESS_KEY and self.state_machine_role:
            return self.roles[self.state_machine_role]
        return None

    # -- deciding -------------------------------------------------------------------------

    def authorize(self, role: Role, request: Request) -> None:
        operation = f"{request.service}:{request.action}"
        action = ACTION_OF_OPERATION.get(operation, operation)
        resolver = RESOURCES.get(action)
        if resolver is None:
            raise LocalEngineError(
                f"{role.logical_id} called {action}, which the local IAM model does not know: add the resource it "
                "acts on to RESOURCES in training_gate_cli/local_engine/iam.py"
            )
        with self._lock:
            self.requests += 1
        try:
            self._decide_request(role, action, resolver(request), request)
        except AccessDenied:
            with self._lock:
                self.refused += 1
            raise

    def _decide_request(self, role: Role, action: str, resources: list[str], request: Request) -> None:
        for resource in resources:
            self._decide(role, action, resource)
            key = self.kms_keys.get(_container(resource))
            for implied in IMPLIED_KMS.get(action, ()) if key else ():
                self._decide(role, implied, key)  # type: ignore[arg-type]
            if action == "s3:GetObject" and _missing_object(request, resource):
                # "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403
                # (Access Denied) error" for a key that does not exist, not 404 NoSuchKey
                # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions").
                self._decide(role, "s3:ListBucket", _container(resource))

    def _decide(self, role: Role, action: str, resource: str) -> None:
        call = Call(role.logical_id, action, resource, role.allows(action, resource))
        with self._lock:
            self.calls.append(call)
        if not call.allowed:
            raise AccessDenied(call, self._sessions.get(role.logical_id, role.arn))

    # -- reporting ------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        with self._lock:
            calls = list(self.calls)
            requests, refused = self.requests, self.refused
        denied = [c for c in calls if not c.allowed]
        return {
            "calls": requests,
            "denied": refused,
            "checks": len(calls),
            "by_role": dict(Counter(c.role for c in calls)),
            "denied_calls": sorted({f"{c.role} {c.action} {c.resource}" for c in denied}),
        }

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.requests = self.refused = 0


def _container(resource: str) -> str:
    """The topic of a topic ARN, the bucket of an object ARN: what carries the KMS key."""
    if resource.startswith("arn:") and ":s3:::" in resource:
        return resource.split("/", 1)[0]
    return resource


def _missing_object(request: Request, resource: str) -> bool:
    """Whether the object an S3 read names does not exist in a bucket that does (canary:
    test_the_s3_backend_tells_a_missing_key_from_a_missing_bucket)."""
    from moto.s3.models import s3_backends

    bucket_name, _, key = resource.split(":::", 1)[-1].partition("/")
    bucket = s3_backends[request.account][request.partition].buckets.get(bucket_name)
    if bucket is None or not key:
        return False  # S3 answers NoSuchBucket to anyone: a bucket's existence is not protected
    from moto.s3.models import FakeKey

    return not isinstance(bucket.keys.get(key), FakeKey)


def _kms_keys(template: dict[str, Any], resolve: Callable[[Any], Any]) -> dict[str, str]:
    """Topic ARN or bucket ARN -> the ARN of the KMS key it encrypts with (only the template's own)."""
    keys: dict[str, str] = {}
    for logical_id, resource in resources_of(template, "AWS::SNS::Topic").items():
        key = resource["Properties"].get("KmsMasterKeyId")
        if key is not None:
            keys[resolve({"Ref": logical_id})] = resolve(key)
    for logical_id, resource in resources_of(template, "AWS::S3::Bucket").items():
        rules = resource["Properties"].get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        for rule in rules:
            default = rule.get("ServerSideEncryptionByDefault", {})
            if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID") is not None:
                keys[resolve({"Fn::GetAtt": [logical_id, "Arn"]})] = resolve(default["KMSMasterKeyID"])
    return keys


# -- the moto hook (canary: test_the_authorizer_hook_sees_every_request_with_its_action) -----------


def _denied_error(service: str, message: str) -> Exception:
    """AccessDenied as each service names it."""
    from moto.core.exceptions import JsonRESTError, _RESTError
    from moto.s3.exceptions import S3AccessDeniedError

    if service == "s3":
        return S3AccessDeniedError()
    if service == "sns":
        error: Exception = _RESTError("AuthorizationError", message)
    elif service == "cloudwatch":
        error = _RESTError("AccessDenied", message)
    else:
        error = JsonRESTError("AccessDeniedException", message)
    error.code = 403  # type: ignore[attr-defined]
    return error


def _credential_scope(headers: Any) -> tuple[str, str, str]:
    """(access key, region, signing name) from the request's SigV4 Authorization header."""
    authorization = headers.get("Authorization") or headers.get("authorization") or ""
    scope = authorization.partition("Credential=")[2].partition(",")[0].split("/")
    if len(scope) < 4:
        return "", "", ""
    return scope[0], scope[2], scope[3]


@contextlib.contextmanager
def enforced(enforcement: Enforcement) -> Iterator[Enforcement]:
    from moto.core.authorization import ActionAuthenticatorMixin

    def authenticate_and_authorize(response: Any, iam_request_cls: type, resource: str = "*") -> None:
        access_key, region, signing_name = _credential_scope(response.headers)
        role = enforcement.principal(access_key)
        if role is None:
            return  # the engine or a test setting the account up
        service = IAM_PREFIX.get(signing_name, signing_name)
        request = Request(response, service, response._get_action(), region, response.current_account, resource)
        try:
            enforcement.authorize(role, request)
        except AccessDenied as exc:
            raise _denied_error(service, str(exc)) from exc

    with mock.patch.object(ActionAuthenticatorMixin, "_authenticate_and_authorize_action", authenticate_and_authorize):
        yield enforcement


def create_in_account(enforcement: Enforcement) -> None:
    """The template's roles and their policies, in the emulated IAM (so that STS can assume them)."""
    iam = boto3.client("iam")
    for role in enforcement.roles.values():
        name = role.arn.rsplit("/", 1)[-1]
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(role.trust))
        statements = [
            {
                "Effect": s.effect,
                **({"Action": list(s.actions)} if s.actions else {"NotAction": list(s.not_actions)}),
                **({"Resource": list(s.resources)} if s.resources else {"NotResource": list(s.not_resources)}),
            }
            for s in role.statements
        ]
        if statements:
            document = {"Version": "2012-10-17", "Statement": statements}
            iam.put_role_policy(RoleName=name, PolicyName="template", PolicyDocument=json.dumps(document))
