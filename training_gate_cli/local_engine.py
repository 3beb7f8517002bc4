"""The embedded local engine: the synthesized gate running on an emulated AWS account (moto 5.2.5).

It takes the CloudFormation template that `cdk synth` wrote, creates its functions, topic, bucket and
state machine in moto, and runs the real ASL on moto's Step Functions interpreter. Lambda tasks run
the real handler code in this process. Nothing leaves the machine.

Private moto hooks used here (each has a canary in tests/engine/test_moto_canaries.py, which fails
with a clear message if a moto upgrade moves it):
  H1 moto.awslambda_simple.models.LambdaSimpleBackend.invoke(function_name, qualifier, body, headers,
     response_headers)  - replaced to dispatch to the in-process handler
  H2 moto.stepfunctions.parser...state_task_service_aws_sdk.StateTaskServiceAwsSdk._normalise_response
     - botocore datetimes in aws-sdk task results become ISO strings, as in AWS
  H3 StateTaskServiceAwsSdk._normalise_service_error_name / _normalise_exception_name (static)
     - aws-sdk errors are named `SageMaker.<ErrorCode>` as AWS names them, not `sagemaker.sagemakerException`
  H4 moto.sagemaker.models.sagemaker_backends[account][region].training_jobs[name] (FakeTrainingJob
     attributes) and the backend's describe_training_job - scripted job status and metrics
  H5 moto.events.models.EventPattern.load(pattern).matches_event(event) - evaluates the rule pattern
  H6 moto.logs.models.EventMessageFilter(pattern).matches(message) - replaced by CloudWatch's term
     syntax (`?"a" ?"b"` any of, `"a" b` all of, `-"c"` none of); moto knows a single term only
  H7 StepFunctionsParserBackend.start_execution(state_machine_arn, name, execution_input, trace_header)
     and Execution._get_start_execution_worker() (its ExecutionWorker._mock_test_case) - Step
     Functions Local's MockConfigFile.json: `stateMachineArn#CaseName` selects a test case, which moto
     can run but never loads
  H8 asl.eval.environment.Environment.is_mocked_mode - an attempt past a state's listed mocked
     responses calls the real service (Step Functions Local would fail), so "fail once, then work"
     runs the real handler on the retry
  H9 asl.component.common.retry.retrier_decl.time.sleep - retry intervals can be scaled down locally
  H10 moto.dynamodb.models.dynamodb_backends[account][region].put_item / update_item - serialised, so
     a conditional write is atomic under concurrent executions, as it is in DynamoDB
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
import json
import logging
import os
import random
import re
import threading
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from botocore.exceptions import ClientError

MOTO_VERSION = "5.2.5"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
LOCAL_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_NAMESPACE": "TrainingGate",
}
# Variables every function sets to its own value; harmless to share in one process.
_PER_FUNCTION_VARIABLES = {"POWERTOOLS_SERVICE_NAME"}
_SERVICE_ERROR_NAMES = {"sagemaker": "SageMaker", "sns": "SNS", "s3": "S3", "lambda": "Lambda"}
POLL_SECONDS = 0.02


class LocalEngineError(RuntimeError):
    """The template cannot be run locally, or an execution did not finish."""


# -- template handling ------------------------------------------------------------------------


def load_template(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def substitute(definition: str, values: dict[str, str]) -> str:
    """Apply DefinitionSubstitutions exactly as Step Functions does: `${Name}` -> value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise LocalEngineError(f"DefinitionString uses ${{{name}}} but the template does not substitute it")
        return values[name]

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, definition)


def apply_input_transformer(transformer: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge InputTransformer: resolve InputPathsMap against the event, fill InputTemplate."""
    values = {}
    for key, path in transformer.get("InputPathsMap", {}).items():
        node: Any = event
        for part in path.removeprefix("$.").split("."):
            node = node.get(part) if isinstance(node, dict) else None
        values[key] = node
    template = transformer["InputTemplate"]

    def fill(match: re.Match[str]) -> str:
        return json.dumps(values.get(match.group(1)))

    return json.loads(re.sub(r"<([A-Za-z0-9_.\-]+)>", fill, template))


def rule_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    from moto.events.models import EventPattern  # H5

    return bool(EventPattern.load(json.dumps(pattern)).matches_event(event))


# -- in-process Lambda dispatch (H1) --------------------------------------------------------


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = "local"
    log_group_name: str = "local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class LocalFunction:
    logical_id: str
    handler_path: str
    arn: str

    def handler(self) -> Callable[[Any, Any], Any]:
        module, _, attribute = self.handler_path.rpartition(".")
        return getattr(importlib.import_module(module), attribute)


class Throttler:
    """Seeded random throttling of SageMaker and Lambda calls, for load runs."""

    def __init__(self, rate: float, seed: int):
        self.rate = rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected = 0

    def maybe_throttle(self, error_code: str) -> None:
        """Raise AWS's throttling error for this service with probability `rate`."""
        if self.rate <= 0:
            return
        with self._lock:
            hit = self._random.random() < self.rate
            self.injected += hit
        if hit:
            from moto.core.exceptions import JsonRESTError

            raise JsonRESTError(error_code, "Rate exceeded (injected by the local engine)")


def _invoke_in_process(functions: dict[str, LocalFunction], throttler: Throttler) -> Callable[..., bytes | None]:
    def invoke(_backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any):
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        function = functions.get(name)
        if function is None:
            return None  # moto answers 404 ResourceNotFound, as Lambda would
        throttler.maybe_throttle("TooManyRequestsException")
        event = json.loads(body) if body else {}
        context = LambdaContext(function_name=name, invoked_function_arn=function.arn)
        try:
            result = function.handler()(event, context)
        except Exception as exc:  # noqa: BLE001 - every handler error becomes Lambda's error payload
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
            ).encode()
        return json.dumps(result).encode()

    return invoke


# -- aws-sdk integration fidelity (H2, H3) ------------------------------------------------


def _iso_datetimes(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _iso_datetimes(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _iso_datetimes(item)
    return value


def _normalise_response(self: Any, response: Any, *args: Any, **kwargs: Any) -> None:
    _iso_datetimes(response)


def _service_error_name(service_name: str) -> str:
    return _SERVICE_ERROR_NAMES.get(service_name.lower(), service_name)


def _exception_name(norm_service_name: str, ex: Exception) -> str:
    if isinstance(ex, ClientError):
        return f"{norm_service_name}.{ex.response.get('Error', {}).get('Code', 'UnknownError')}"
    return f"{norm_service_name}.{type(ex).__name__}"


def _aws_sdk_service_class() -> type:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as module,
    )

    return module.StateTaskServiceAwsSdk


# -- CloudWatch Logs filter patterns (H6) ------------------------------------------------------

_FILTER_TERM = re.compile(r'(?P<op>[?-]?)(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>\S+))')


class CloudWatchTermFilter:
    """The unstructured-log subset of CloudWatch filter pattern syntax: case-sensitive terms."""

    def __init__(self, pattern: str | None):
        self.any_of: list[str] = []
        self.all_of: list[str] = []
        self.none_of: list[str] = []
        for match in _FILTER_TERM.finditer(pattern or ""):
            term = match.group("quoted") if match.group("quoted") is not None else match.group("bare")
            term = re.sub(r"\\(.)", r"\1", term)
            {"?": self.any_of, "-": self.none_of}.get(match.group("op"), self.all_of).append(term)

    def matches(self, message: str) -> bool:
        if any(term in message for term in self.none_of):
            return False
        if not all(term in message for term in self.all_of):
            return False
        return not self.any_of or any(term in message for term in self.any_of)


@contextlib.contextmanager
def cloudwatch_filter_patterns() -> Iterator[None]:
    import moto.logs.models

    with mock.patch.object(moto.logs.models, "EventMessageFilter", CloudWatchTermFilter):
        yield


# -- fault injection: Step Functions Local's MockConfigFile.json (H7, H8, H9) ----------------------

MOCK_CONFIG_FILE = Path(__file__).resolve().parent.parent / "statemachine" / "test" / "MockConfigFile.json"


def load_test_case(config: dict[str, Any], state_machine_name: str, case_name: str) -> Any:
    """A test case of a MockConfigFile, as moto's interpreter runs it."""
    from moto.stepfunctions.parser.mocking import mock_config as mocks

    machine = config.get("StateMachines", {}).get(state_machine_name)
    if machine is None or case_name not in machine.get("TestCases", {}):
        raise LocalEngineError(f"no test case {case_name!r} for state machine {state_machine_name!r}")
    states = []
    for state_name, response_name in machine["TestCases"][case_name].items():
        ranges = config.get("MockedResponses", {}).get(response_name)
        if not ranges:
            raise LocalEngineError(f"test case {case_name!r}: no mocked response {response_name!r}")
        responses = []
        for attempts, response in ranges.items():
            start, end = mocks._parse_mocked_response_range(attempts)
            if "Return" in response:
                responses.append(mocks.MockedResponseReturn(start, end, response["Return"]))
            else:
                throw = response["Throw"]
                responses.append(mocks.MockedResponseThrow(start, end, throw["Error"], throw.get("Cause", "")))
        states.append(mocks.StateMockedResponses(state_name, response_name, responses))
    return mocks.MockTestCase(state_machine_name, case_name, states)


def _is_mocked_mode(self: Any) -> bool:
    if self.mock_test_case is None:
        return False
    responses = self.mock_test_case.state_mocked_responses.get(self.next_state_name)
    if responses is None:
        return False
    attempt = self.states.context_object.context_object_data["State"]["RetryCount"]
    return attempt < len(responses.mocked_responses)


class ScaledSleep:
    """Stands in for the retrier's `time`: records every retry interval, sleeps a fraction of it."""

    def __init__(self, scale: float):
        self.scale = scale
        self.intervals: list[float] = []
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.intervals.append(seconds)
        time.sleep(seconds * self.scale)


# -- scripted training jobs (H4) ------------------------------------------------------------


@dataclass
class ScriptedJob:
    statuses: list[str]
    final_status: str
    polls: int = 0


def _sagemaker_backend() -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT_ID][REGION]


# -- the engine -------------------------------------------------------------------------------


@dataclass
class ExecutionResult:
    arn: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    states: list[str]
    history: list[dict[str, Any]] = field(repr=False)

    @property
    def transitions(self) -> int:
        """States entered, the unit Step Functions bills (retries of a task are counted separately)."""
        return len(self.states)


class LocalGate:
    """Context manager: an emulated account with the synthesized gate deployed in it."""

    def __init__(
        self,
        template: dict[str, Any],
        mock_config: dict[str, Any] | None = None,
        retry_time_scale: float = 1.0,
        throttle_rate: float = 0.0,
        seed: int = 0,
    ):
        self.template = template
        self.mock_config = mock_config if mock_config is not None else json.loads(MOCK_CONFIG_FILE.read_text())
        self.retries = ScaledSleep(retry_time_scale)
        self.throttler = Throttler(throttle_rate, seed)
        self._pending_cases: dict[str, Any] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.topic_arn = ""
        self.bucket_names: dict[str, str] = {}
        self.table_names: dict[str, str] = {}
        self.state_machine_arn = ""
        self._scripted: dict[str, ScriptedJob] = {}
        self._stack = contextlib.ExitStack()
        self._queue_url = ""
        self._events_queue_url = ""
        self.topic_arns: dict[str, str] = {}
        self.definition: dict[str, Any] = {}

    # lifecycle
    def __enter__(self) -> LocalGate:
        from moto import mock_aws

        stack = self._stack
        stack.enter_context(mock.patch.dict(os.environ, LOCAL_ENVIRONMENT))
        # The interpreter logs every failed state at ERROR; executions report their own outcome.
        interpreter_log = logging.getLogger("moto.stepfunctions")
        stack.callback(interpreter_log.setLevel, interpreter_log.level)
        interpreter_log.setLevel(logging.CRITICAL)
        stack.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        )
        self._install_hooks()
        stack.enter_context(cloudwatch_filter_patterns())
        self._provision()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._wait_for_running_executions()
        self._stack.close()

    def _install_hooks(self) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        stack = self._stack
        stack.enter_context(
            mock.patch.object(LambdaSimpleBackend, "invoke", _invoke_in_process(self.functions, self.throttler))
        )
        service = _aws_sdk_service_class()
        stack.enter_context(mock.patch.object(service, "_normalise_response", _normalise_response))
        stack.enter_context(
            mock.patch.object(service, "_normalise_service_error_name", staticmethod(_service_error_name))
        )
        stack.enter_context(mock.patch.object(service, "_normalise_exception_name", staticmethod(_exception_name)))
        self._install_fault_injection()
        backend = _sagemaker_backend()
        original = backend.describe_training_job

        def describe_training_job(training_job_name: str) -> dict[str, Any]:
            self.throttler.maybe_throttle("ThrottlingException")
            scripted = self._scripted.get(training_job_name)
            if scripted is not None:
                job = backend.training_jobs[training_job_name]
                status = (
                    scripted.statuses[scripted.polls]
                    if scripted.polls < len(scripted.statuses)
                    else scripted.final_status
                )
                scripted.polls += 1
                job.training_job_status = status
                job.secondary_status = {"InProgress": "Training"}.get(status, status)
            return original(training_job_name)

        stack.enter_context(mock.patch.object(backend, "describe_training_job", describe_training_job))
        from moto.dynamodb.models import dynamodb_backends

        tables = dynamodb_backends[ACCOUNT_ID][REGION]
        write_lock = threading.Lock()
        for method in ("put_item", "update_item"):
            original_write = getattr(tables, method)

            def atomic(*args: Any, _write: Any = original_write, **kwargs: Any) -> Any:
                with write_lock:
                    return _write(*args, **kwargs)

            stack.enter_context(mock.patch.object(tables, method, atomic))

    def _install_fault_injection(self) -> None:
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.eval.environment import Environment
        from moto.stepfunctions.parser.backend.execution import Execution
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        pending = self._pending_cases
        engine = self
        original_start = StepFunctionsParserBackend.start_execution
        original_worker = Execution._get_start_execution_worker

        def start_execution(
            backend: Any,
            state_machine_arn: str,
            name: Any = None,
            execution_input: Any = None,
            trace_header: Any = None,
        ) -> Any:
            arn, _, case = state_machine_arn.partition("#")
            if case:
                machine_name = arn.rsplit(":", 1)[-1]
                pending[name] = load_test_case(engine.mock_config, machine_name, case)
            return original_start(backend, arn, name, execution_input, trace_header)

        def start_worker(execution: Any) -> Any:
            worker = original_worker(execution)
            case = pending.pop(execution.name, None)
            if case is not None:
                worker._mock_test_case = case
            return worker

        stack = self._stack
        stack.enter_context(mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution))
        stack.enter_context(mock.patch.object(Execution, "_get_start_execution_worker", start_worker))
        stack.enter_context(mock.patch.object(Environment, "is_mocked_mode", _is_mocked_mode))
        stack.enter_context(mock.patch.object(retrier_decl, "time", self.retries))

    def _resolve(self, value: Any) -> Any:
        """Resolve the intrinsic functions the synthesized template uses for the gate's resources."""
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and len(value) == 1:
            ((kind, arg),) = value.items()
            if kind == "Ref":
                return self._ref(arg)
            if kind == "Fn::GetAtt":
                return self._get_att(*arg)
            if kind == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self._resolve(p)) for p in parts)
        raise LocalEngineError(f"the local engine cannot resolve {json.dumps(value)[:200]}")

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.functions:
            return name
        if name in self.bucket_names:
            return self.bucket_names[name]
        if name in self.table_names:
            return self.table_names[name]
        if name in self.topic_arns:
            return self.topic_arns[name]
        raise LocalEngineError(f"the local engine cannot resolve Ref {name}")

    def _get_att(self, name: str, attribute: str) -> str:
        if attribute == "Arn" and name in self.functions:
            return self.functions[name].arn
        if attribute == "Arn" and name in self.bucket_names:
            return f"arn:aws:s3:::{self.bucket_names[name]}"
        if attribute == "Arn" and name in self.table_names:
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{self.table_names[name]}"
        raise LocalEngineError(f"the local engine cannot resolve Fn::GetAtt {name}.{attribute}")

    def _provision(self) -> None:
        template = self.template
        iam = boto3.client("iam")
        role_arn = iam.create_role(RoleName="local-gate", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

        sns = boto3.client("sns")
        for logical_id in resources_of(template, "AWS::SNS::Topic"):
            self.topic_arns[logical_id] = sns.create_topic(Name=logical_id)["TopicArn"]
        # The notifications people receive: the topic the workflow publishes to.
        machine = next(iter(resources_of(template, "AWS::StepFunctions::StateMachine").values()))
        notification_ref = machine["Properties"].get("DefinitionSubstitutions", {}).get("NotificationTopicArn", {})
        if not isinstance(notification_ref, dict) or notification_ref.get("Ref") not in self.topic_arns:
            raise LocalEngineError("the state machine's NotificationTopicArn is not a topic of the template")
        self.topic_arn = self.topic_arns[notification_ref["Ref"]]
        sqs = boto3.client("sqs")
        self._queue_url = sqs.create_queue(QueueName="local-notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

        # Decision events: a rule on the default bus delivers them to a queue the engine reads.
        self._events_queue_url = sqs.create_queue(QueueName="local-decision-events")["QueueUrl"]
        events_queue_arn = sqs.get_queue_attributes(QueueUrl=self._events_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events = boto3.client("events")
        events.put_rule(Name="local-decision-events", EventPattern=json.dumps({"source": ["training-gate"]}))
        events.put_targets(Rule="local-decision-events", Targets=[{"Id": "queue", "Arn": events_queue_arn}])

        s3 = boto3.client("s3")
        for logical_id in resources_of(template, "AWS::S3::Bucket"):
            name = logical_id.lower()
            s3.create_bucket(Bucket=name)
            self.bucket_names[logical_id] = name

        dynamodb = boto3.client("dynamodb")
        for logical_id, resource in resources_of(template, "AWS::DynamoDB::Table").items():
            properties = resource["Properties"]
            dynamodb.create_table(
                TableName=logical_id,
                KeySchema=properties["KeySchema"],
                AttributeDefinitions=properties["AttributeDefinitions"],
                BillingMode="PAY_PER_REQUEST",
            )
            self.table_names[logical_id] = logical_id

        lambda_client = boto3.client("lambda")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("placeholder.py", "# the local engine runs the real handler in-process\n")
        environment: dict[str, str] = {}
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
            self.functions[logical_id] = LocalFunction(logical_id, handler, arn)
        for resource in resources_of(template, "AWS::Lambda::Function").values():
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            for key, raw in variables.items():
                value = str(self._resolve(raw))
                if key in environment and environment[key] != value and key not in _PER_FUNCTION_VARIABLES:
                    raise LocalEngineError(f"functions disagree on {key}; in-process handlers share one environment")
                environment[key] = value
        self._stack.enter_context(mock.patch.dict(os.environ, environment))

        machines = resources_of(template, "AWS::StepFunctions::StateMachine")
        if len(machines) != 1:
            raise LocalEngineError(f"expected one state machine in the template, found {len(machines)}")
        properties = next(iter(machines.values()))["Properties"]
        definition = self._resolve(properties["DefinitionString"])
        values = {k: str(self._resolve(v)) for k, v in properties.get("DefinitionSubstitutions", {}).items()}
        self.definition = json.loads(substitute(definition, values))
        self.state_machine_arn = boto3.client("stepfunctions").create_state_machine(
            name="training-gate", definition=json.dumps(self.definition), roleArn=role_arn
        )["stateMachineArn"]

        logs = boto3.client("logs")
        logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)

    # event routing
    def rule(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The rule that starts the gate: the one matching SageMaker's events."""
        rules = [
            r["Properties"]
            for r in resources_of(self.template, "AWS::Events::Rule").values()
            if r["Properties"].get("EventPattern", {}).get("source") == ["aws.sagemaker"]
        ]
        if len(rules) != 1:
            raise LocalEngineError(f"expected one rule for aws.sagemaker events, found {len(rules)}")
        return rules[0]["EventPattern"], rules[0]["Targets"][0]

    def route_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """What the rule would send to the state machine for this event, or None if it does not match."""
        pattern, target = self.rule()
        if not rule_matches(pattern, event):
            return None
        if "InputTransformer" in target:
            return apply_input_transformer(target["InputTransformer"], event)
        return event

    # training jobs
    def script_training_job(
        self,
        name: str,
        *,
        statuses: list[str],
        final_status: str,
        metric_definitions: list[dict[str, str]] | None = None,
        final_metrics: dict[str, float] | None = None,
        failure_reason: str | None = None,
        model_artifact: str | None = None,
        output_model_package_arn: str | None = None,
    ) -> None:
        """Shape an existing emulated job: status per DescribeTrainingJob call, then `final_status`."""
        job = _sagemaker_backend().training_jobs[name]
        if output_model_package_arn is not None:
            job.output_model_package_arn = output_model_package_arn
        job.algorithm_specification["MetricDefinitions"] = metric_definitions or []
        now = dt.datetime.now(dt.UTC)
        job.final_metric_data_list = [
            {"MetricName": k, "Value": v, "Timestamp": now} for k, v in (final_metrics or {}).items()
        ]
        if failure_reason is not None:
            job.failure_reason = failure_reason
        if model_artifact is not None:
            job.model_artifacts = {"S3ModelArtifacts": model_artifact}
        self._scripted[name] = ScriptedJob(statuses=list(statuses), final_status=final_status)

    # executions
    def start(self, execution_input: Any, name: str, test_case: str | None = None) -> str:
        """Start an execution; `test_case` selects a MockConfigFile case as Step Functions Local does."""
        arn = f"{self.state_machine_arn}#{test_case}" if test_case else self.state_machine_arn
        return boto3.client("stepfunctions").start_execution(
            stateMachineArn=arn, name=name, input=json.dumps(execution_input)
        )["executionArn"]

    def events(self, execution_arn: str) -> list[dict[str, Any]]:
        client = boto3.client("stepfunctions")
        events, token = [], None
        while True:
            kwargs = {"executionArn": execution_arn, **({"nextToken": token} if token else {})}
            page = client.get_execution_history(**kwargs)
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events

    def watch(
        self,
        execution_arn: str,
        on_state: Callable[[str, float], None] | None = None,
        timeout_seconds: float = 120.0,
    ) -> ExecutionResult:
        """Follow an execution to its end, reporting each state as it is entered."""
        client = boto3.client("stepfunctions")
        seen = 0
        started = time.monotonic()
        while True:
            description = client.describe_execution(executionArn=execution_arn)
            history = self.events(execution_arn)
            entered = [e for e in history if e["type"].endswith("StateEntered")]
            for event in entered[seen:]:
                if on_state:
                    on_state(event["stateEnteredEventDetails"]["name"], time.monotonic() - started)
            seen = len(entered)
            if description["status"] != "RUNNING":
                break
            if time.monotonic() - started > timeout_seconds:
                raise LocalEngineError(f"execution {execution_arn} still RUNNING after {timeout_seconds} s")
            time.sleep(POLL_SECONDS)
        output = description.get("output")
        return ExecutionResult(
            arn=execution_arn,
            status=description["status"],
            output=json.loads(output) if output else None,
            error=description.get("error"),
            cause=description.get("cause"),
            states=[e["stateEnteredEventDetails"]["name"] for e in entered],
            history=history,
        )

    def run(
        self,
        execution_input: Any,
        name: str,
        on_state: Callable[[str, float], None] | None = None,
        test_case: str | None = None,
    ) -> ExecutionResult:
        return self.watch(self.start(execution_input, name, test_case), on_state)

    def _wait_for_running_executions(self) -> None:
        client = boto3.client("stepfunctions")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            running = client.list_executions(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")
            if not running["executions"]:
                return
            time.sleep(POLL_SECONDS)

    # reading results
    @staticmethod
    def _drain(queue_url: str) -> Iterator[dict[str, Any]]:
        sqs = boto3.client("sqs")
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = batch.get("Messages", [])
            if not messages:
                return
            for message in messages:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                yield json.loads(message["Body"])

    def notifications(self) -> Iterator[dict[str, Any]]:
        """SNS messages published so far (each once), as subscribers receive them."""
        return self._drain(self._queue_url)

    def decision_events(self) -> Iterator[dict[str, Any]]:
        """Training Gate Decision events published on the default bus so far (each once)."""
        return self._drain(self._events_queue_url)

    @property
    def decision_table(self) -> str:
        if len(self.table_names) != 1:
            raise LocalEngineError("expected one decision table")
        return next(iter(self.table_names.values()))

    @property
    def reports_bucket(self) -> str:
        if len(self.bucket_names) != 1:
            raise LocalEngineError("expected one reports bucket")
        return next(iter(self.bucket_names.values()))
