"""Every private moto hook the local engine uses, in one place.

Each hook names its canary in tests/engine/test_moto_canaries.py; if a moto upgrade moves a hook,
that canary fails with a message naming it. Fix the hook here before trusting any scenario test.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError

from training_gate_cli.local_engine.constants import ACCOUNT_ID, REGION, LocalEngineError
from training_gate_cli.local_engine.strict import aws_sdk_error_name

# -- Lambda invoke (canary: test_h1_lambda_simple_backend_invoke_signature,
#    test_h1_function_error_header_reaches_the_caller) ---------------------------------------------

Invoke = Callable[[str, Any, Any], bytes | None]


@contextlib.contextmanager
def lambda_dispatch(invoke: Callable[[str, bytes | None, dict[str, Any]], bytes | None]) -> Iterator[None]:
    """LambdaSimpleBackend.invoke(function_name, qualifier, body, headers, response_headers) is replaced
    by `invoke(function_name, body, response_headers)`; it runs the handler in this process."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def patched(_backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any):
        return invoke(function_name, body, response_headers)

    with mock.patch.object(LambdaSimpleBackend, "invoke", patched):
        yield


# -- aws-sdk integrations (canary: test_h2_h3_aws_sdk_service_hooks_exist) ------------------------


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


def aws_sdk_service_class() -> type:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as module,
    )

    return module.StateTaskServiceAwsSdk


@contextlib.contextmanager
def aws_sdk_fidelity() -> Iterator[None]:
    """aws-sdk task results carry ISO timestamps (AWS's JSON), and errors are named as AWS names them
    (`SageMaker.ResourceNotFoundException`), not `sagemaker.sagemakerException`."""
    service = aws_sdk_service_class()

    def normalise_response(self: Any, response: Any, *args: Any, **kwargs: Any) -> None:
        _iso_datetimes(response)

    def exception_name(norm_service_name: str, ex: Exception) -> str:
        code = ex.response.get("Error", {}).get("Code", "") if isinstance(ex, ClientError) else type(ex).__name__
        return aws_sdk_error_name(norm_service_name, code)

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(service, "_normalise_response", normalise_response))
        stack.enter_context(
            mock.patch.object(service, "_normalise_service_error_name", staticmethod(lambda name: name))
        )
        stack.enter_context(mock.patch.object(service, "_normalise_exception_name", staticmethod(exception_name)))
        yield


# -- SageMaker training jobs (canary: test_h4_training_job_backend_shape) -------------------------


def sagemaker_backend() -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT_ID][REGION]


@contextlib.contextmanager
def scripted_describe(before_describe: Callable[[str, Any], None]) -> Iterator[None]:
    """Each DescribeTrainingJob first calls `before_describe(name, fake_job)`, which may change the
    job's status (moto's jobs are Completed the moment they are created)."""
    backend = sagemaker_backend()
    original = backend.describe_training_job

    def describe_training_job(training_job_name: str) -> dict[str, Any]:
        job = backend.training_jobs.get(training_job_name)
        before_describe(training_job_name, job)
        return original(training_job_name)

    with mock.patch.object(backend, "describe_training_job", describe_training_job):
        yield


# -- CreateModelPackage's ClientToken (canary: test_h12_create_model_package_is_the_backend_method) --


@contextlib.contextmanager
def model_package_client_tokens() -> Iterator[dict[str, tuple[str, str]]]:
    """SageMaker makes CreateModelPackage idempotent by ClientToken: the same token with the same
    request returns the package already made; with a different request it fails. moto ignores the
    token. Yields the token table: token -> (request fingerprint, package ARN)."""
    from moto.sagemaker.exceptions import ValidationError

    backend = sagemaker_backend()
    original = backend.create_model_package
    tokens: dict[str, tuple[str, str]] = {}
    lock = threading.Lock()

    def create_model_package(*args: Any, **kwargs: Any) -> str:
        token = kwargs.get("client_token")
        if not token:
            return original(*args, **kwargs)
        fingerprint = json.dumps({k: v for k, v in kwargs.items() if k != "client_token"}, sort_keys=True, default=str)
        with lock:
            if token in tokens:
                seen, arn = tokens[token]
                if seen != fingerprint:
                    raise ValidationError(
                        message=f"ClientToken {token} was already used with a different CreateModelPackage request"
                    )
                return arn
            arn = original(*args, **kwargs)
            tokens[token] = (fingerprint, arn)
            return arn

    with mock.patch.object(backend, "create_model_package", create_model_package):
        yield tokens


# -- CloudWatch Logs filter patterns (canary: test_h6_log_stream_filtering_goes_through_event_message_filter)

_FILTER_TERM = re.compile(r'(?P<op>[?-]?)(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>\S+))')


class CloudWatchTermFilter:
    """The unstructured-log subset of CloudWatch filter pattern syntax: case-sensitive terms
    (`?"a" ?"b"` any of, `"a" b` all of, `-"c"` none of); moto knows a single term only."""

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


# -- Step Functions Local's MockConfigFile.json (canaries: test_h7_execution_start_and_worker_hooks,
#    test_h8_mocked_mode_is_decided_by_environment_is_mocked_mode) ---------------------------------

MOCK_CONFIG_FILE = Path(__file__).resolve().parents[2] / "statemachine" / "test" / "MockConfigFile.json"


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
    """An attempt past a state's listed responses calls the real service (Step Functions Local would
    fail instead), so "fail once, then work" runs the real handler on the retry."""
    if self.mock_test_case is None:
        return False
    responses = self.mock_test_case.state_mocked_responses.get(self.next_state_name)
    if responses is None:
        return False
    attempt = self.states.context_object.context_object_data["State"]["RetryCount"]
    return attempt < len(responses.mocked_responses)


@contextlib.contextmanager
def mock_config_test_cases(mock_config: dict[str, Any]) -> Iterator[None]:
    """`stateMachineArn#CaseName` selects a test case at StartExecution, as Step Functions Local does."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    pending: dict[str, Any] = {}
    original_start = StepFunctionsParserBackend.start_execution
    original_worker = Execution._get_start_execution_worker

    def start_execution(
        backend: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None, trace_header: Any = None
    ) -> Any:
        arn, _, case = state_machine_arn.partition("#")
        if case:
            pending[name] = load_test_case(mock_config, arn.rsplit(":", 1)[-1], case)
        return original_start(backend, arn, name, execution_input, trace_header)

    def start_worker(execution: Any) -> Any:
        worker = original_worker(execution)
        case = pending.pop(execution.name, None)
        if case is not None:
            worker._mock_test_case = case
        return worker

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution))
        stack.enter_context(mock.patch.object(Execution, "_get_start_execution_worker", start_worker))
        stack.enter_context(mock.patch.object(Environment, "is_mocked_mode", _is_mocked_mode))
        yield


# -- retry intervals (canary: test_h9_retries_sleep_through_the_retrier_modules_time) ---------------


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


@contextlib.contextmanager
def scaled_retry_sleep(sleeper: ScaledSleep) -> Iterator[None]:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    with mock.patch.object(retrier_decl, "time", sleeper):
        yield


# -- DynamoDB conditional writes (canary: test_h10_dynamodb_writes_go_through_the_backends_put_and_update_item)


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """moto's writes are not serialised: under concurrent executions two conditional puts could both
    succeed. DynamoDB makes each conditional write atomic; so does this lock."""
    from moto.dynamodb.models import dynamodb_backends

    tables = dynamodb_backends[ACCOUNT_ID][REGION]
    write_lock = threading.Lock()
    with contextlib.ExitStack() as stack:
        for method in ("put_item", "update_item"):
            original = getattr(tables, method)

            def atomic(*args: Any, _write: Any = original, **kwargs: Any) -> Any:
                with write_lock:
                    return _write(*args, **kwargs)

            stack.enter_context(mock.patch.object(tables, method, atomic))
        yield


# -- errors no Catch sees (canary: test_h11_states_all_is_decided_in_error_equals_decl) ------------


@contextlib.contextmanager
def terminal_errors_uncatchable() -> Iterator[None]:
    """On AWS, `States.ALL` in a Retry or Catch does not match States.DataLimitExceeded or
    States.Runtime: they end the execution (https://docs.aws.amazon.com/step-functions/latest/dg/
    concepts-error-handling.html, "States.ALL"). moto matches them; this makes it match them not."""
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    terminal = {StatesErrorNameType.StatesStatesDataLimitExceeded, StatesErrorNameType.StatesRuntime}
    original = ErrorEqualsDecl._eval_body

    def eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1] if env.stack else None
        if isinstance(error_name, StatesErrorName) and error_name.typ in terminal:
            env.stack.pop()
            env.stack.append(error_name in self.error_names)  # only an explicit name matches
            return
        original(self, env)

    with mock.patch.object(ErrorEqualsDecl, "_eval_body", eval_body):
        yield


# -- a stopped execution stays stopped (canary: test_h13_environment_set_error_and_set_stop) -------


@contextlib.contextmanager
def stopped_stays_aborted() -> Iterator[None]:
    """StopExecution ends an execution as ABORTED at once, and a timeout as TIMED_OUT; a task still running
    in it cannot turn that into FAILED when it later fails. moto lets the task's error overwrite both."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped, ProgramTimedOut

    original = Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, (ProgramStopped, ProgramTimedOut)):
            return
        original(self, error)

    with mock.patch.object(Environment, "set_error", set_error):
        yield


# -- Lambda service errors (canary: test_h14_lambda_task_errors_are_named_in_from_error) -------------


@contextlib.contextmanager
def lambda_service_error_names() -> Iterator[None]:
    """A Lambda task whose invocation the Lambda service refuses (throttled, a service error) fails
    with `Lambda.<ExceptionName>`, which Retry names match
    (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html); moto
    names every such failure `Exception`."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = StateTaskLambda._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        failure = original(self, env, ex)
        if not isinstance(ex, ClientError):
            return failure
        code = str(ex.response.get("Error", {}).get("Code", "")) or "ServiceException"
        name = f"Lambda.{code}"
        details = failure.event_details["lambdaFunctionFailedEventDetails"]
        failure.error_name = CustomErrorName(name)
        failure.event_details = EventDetails(
            lambdaFunctionFailedEventDetails={**details, "error": name}  # type: ignore[typeddict-item]
        )
        return failure

    with mock.patch.object(StateTaskLambda, "_from_error", from_error):
        yield


# -- hyperparameter tuning jobs (canary: test_h15_tuning_job_backend_and_response_dispatch) ---------


@contextlib.contextmanager
def tuning_jobs(emulation: Any) -> Iterator[None]:
    """DescribeHyperParameterTuningJob, DescribeTrainingJob's TuningJobArn and
    ListTrainingJobsForHyperParameterTuningJob as `emulation` (local_engine/tuning.py) answers them.
    moto's SageMakerResponse dispatches an action to the method of its name, so the missing list
    operation is added as one; each backend method is wrapped where it stands (after scripted_describe)."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ResourceNotFound
    from moto.sagemaker.responses import SageMakerResponse

    backend = sagemaker_backend()
    original_tuning = backend.describe_hyper_parameter_tuning_job
    original_training = backend.describe_training_job

    def describe_hyper_parameter_tuning_job(hyper_parameter_tuning_job_name: str) -> dict[str, Any]:
        return emulation.describe(hyper_parameter_tuning_job_name, original_tuning(hyper_parameter_tuning_job_name))

    def describe_training_job(training_job_name: str) -> dict[str, Any]:
        described = dict(original_training(training_job_name))
        arn = emulation.tuning_job_arn_of(training_job_name)
        if arn:
            described["TuningJobArn"] = arn
        return described

    def list_training_jobs_for_hyper_parameter_tuning_job(response: Any) -> Any:
        names = ("HyperParameterTuningJobName", "NextToken", "MaxResults", "StatusEquals", "SortBy", "SortOrder")
        params = {name: response._get_param(name) for name in names}
        return ActionResult(emulation.list_children(params, ResourceNotFound))

    with contextlib.ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(backend, "describe_hyper_parameter_tuning_job", describe_hyper_parameter_tuning_job)
        )
        stack.enter_context(mock.patch.object(backend, "describe_training_job", describe_training_job))
        stack.enter_context(
            mock.patch.object(
                SageMakerResponse,
                "list_training_jobs_for_hyper_parameter_tuning_job",
                list_training_jobs_for_hyper_parameter_tuning_job,
                create=True,
            )
        )
        yield


# -- RedriveExecution (canary: test_h16_execution_worker_and_event_history_for_redrive) ------------

REDRIVABLE_DAYS = 14


class _RedriveWorker:
    """Runs an execution again from `state` with `state_input`, on the execution's own history."""

    def __init__(self, execution: Any, state: str, state_input: Any, history: list[dict[str, Any]], count: int):
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        definition = json.loads(execution.state_machine.definition)
        definition["StartAt"] = state
        worker = execution._get_start_execution_worker()
        worker._get_evaluation_entrypoint = lambda: _parse(json.dumps(definition))  # type: ignore[method-assign]
        original_environment = worker._get_evaluation_environment

        def environment() -> Any:
            env = original_environment()
            env.states.reset(input_value=state_input)
            _continue_history(env, history, count)
            return env

        worker._get_evaluation_environment = environment  # type: ignore[method-assign]
        worker._execution_logic = lambda: _redriven_logic(worker)  # type: ignore[method-assign]
        self.worker: ExecutionWorker = worker


def _parse(definition: str) -> Any:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    return AmazonStateLanguageParser.parse(definition)[0]


def _continue_history(env: Any, history: list[dict[str, Any]], count: int) -> None:
    """The redriven execution keeps its history: earlier events, an ExecutionRedriven event, then
    the events of the steps it runs again."""
    from moto.stepfunctions.parser.api import ExecutionRedrivenEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    manager = env.event_manager
    manager._history_event_list.extend(history)
    manager._event_id_gen._next_id = len(history) + 1
    env.event_history_context.source_event_id = len(history)
    env.event_history_context.last_published_event_id = len(history)
    manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ExecutionRedriven,
        event_details=EventDetails(executionRedrivenEventDetails=ExecutionRedrivenEventDetails(redriveCount=count)),
    )


def _redriven_logic(worker: Any) -> None:
    program = worker._get_evaluation_entrypoint()
    worker.env = worker._get_evaluation_environment()
    program.eval(worker.env)
    worker._execution_communication.terminated()


def restart_point(history: list[dict[str, Any]]) -> tuple[str, Any]:
    """The step a redrive continues from, and the input it had: the last state entered that did not
    exit (the task that was running when the execution was stopped or timed out, the state whose
    error ended it, or the Fail state it ended in)."""
    exited = 0
    for event in reversed(history):
        if event["type"].endswith("StateExited"):
            exited += 1
        elif event["type"].endswith("StateEntered"):
            if exited:
                exited -= 1
                continue
            details = event["stateEnteredEventDetails"]
            return details["name"], json.loads(details.get("input") or "null")
    raise LocalEngineError("the execution entered no state: nothing to redrive")


def redrive(backend: Any, execution_arn: str) -> dt.datetime:
    """RedriveExecution: "Restarts unsuccessful executions of Standard workflows that didn't complete
    successfully in the last 14 days. These include failed, aborted, or timed out executions. When you
    redrive an execution, it continues the failed execution from the unsuccessful step and uses the
    same input." Same execution ARN; an execution that is RUNNING or SUCCEEDED, or ended more than 14
    days ago, is ExecutionNotRedrivable
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html)."""
    from moto.core.exceptions import JsonRESTError
    from moto.stepfunctions.parser.api import ExecutionStatus

    execution = backend.describe_execution(execution_arn)
    status = execution.exec_status
    if status not in (ExecutionStatus.FAILED, ExecutionStatus.ABORTED, ExecutionStatus.TIMED_OUT):
        raise JsonRESTError("ExecutionNotRedrivable", f"Execution is {status.value} and cannot be redriven.")
    now = dt.datetime.now(dt.UTC)
    if execution.stop_date is not None and now - execution.stop_date > dt.timedelta(days=REDRIVABLE_DAYS):
        raise JsonRESTError("ExecutionNotRedrivable", "Execution redrivable period exceeded.")
    history = [dict(e) for e in execution.exec_worker.env.event_manager.get_event_history()]
    state, state_input = restart_point(history)
    count = getattr(execution, "redrive_count", 0) + 1
    execution.redrive_count = count
    execution.redrive_date = now
    execution.exec_worker = _RedriveWorker(execution, state, state_input, history, count).worker
    execution.exec_status = ExecutionStatus.RUNNING
    execution.stop_date = None
    execution.error = None
    execution.cause = None
    execution.exec_worker.start()
    return now


@contextlib.contextmanager
def redrive_executions() -> Iterator[None]:
    """StepFunctionResponse gains RedriveExecution (moto 5.2.5 has none), and DescribeExecution reports
    a redriven execution's redriveCount and redriveDate."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    original_describe = StepFunctionResponse.describe_execution

    def redrive_execution(response: Any) -> Any:
        date = redrive(response.stepfunction_backend, response._get_param("executionArn"))
        return ActionResult({"redriveDate": date})

    def describe_execution(response: Any) -> Any:
        answer = original_describe(response)
        execution = response.stepfunction_backend.describe_execution(response._get_param("executionArn"))
        count = getattr(execution, "redrive_count", 0)
        result = dict(answer.result)
        result["redriveCount"] = count
        if count:
            result["redriveDate"] = execution.redrive_date
        return ActionResult(result)

    with contextlib.ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(StepFunctionResponse, "redrive_execution", redrive_execution, create=True)
        )
        stack.enter_context(mock.patch.object(StepFunctionResponse, "describe_execution", describe_execution))
        yield


# -- SageMaker pipeline executions and their CallbackSteps (canary: test_h17_pipeline_backend_and_response_dispatch)


def sqs_send(queue_url: str, body: str) -> None:
    """SQS's SendMessage, as SageMaker Pipelines makes it for a CallbackStep (inside moto, not as the gate)."""
    from moto.sqs.models import sqs_backends

    sqs_backends[ACCOUNT_ID][REGION].send_message(queue_url.rstrip("/").rsplit("/", 1)[-1], body)


@contextlib.contextmanager
def pipeline_executions(emulation: Any) -> Iterator[None]:
    """StartPipelineExecution runs the execution's steps in `emulation` (local_engine/pipelines.py), which
    answers DescribePipelineExecution's status and the actions moto lacks: SendPipelineExecutionStepSuccess,
    SendPipelineExecutionStepFailure, StopPipelineExecution, ListPipelineExecutionSteps."""
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    from training_gate_cli.local_engine.pipelines import PipelineError

    backend = sagemaker_backend()
    original_start = backend.start_pipeline_execution
    original_describe = backend.describe_pipeline_execution
    emulation.send_message = sqs_send

    def start_pipeline_execution(pipeline_name: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        started = original_start(pipeline_name, *args, **kwargs)
        parameters = args[1] if len(args) > 1 else kwargs.get("pipeline_parameters")
        definition = backend.pipelines[pipeline_name].pipeline_definition
        emulation.begin(started["PipelineExecutionArn"], definition, parameters)
        return started

    def describe_pipeline_execution(pipeline_execution_arn: str) -> dict[str, Any]:
        return emulation.describe(pipeline_execution_arn, original_describe(pipeline_execution_arn))

    def _answering(success: bool) -> Any:
        def answer(response: Any) -> Any:
            names = ("CallbackToken", "OutputParameters", "FailureReason", "ClientRequestToken")
            request = {name: response._get_param(name) for name in names if response._get_param(name) is not None}
            try:
                arn = emulation.answer(request, success)
            except PipelineError as exc:
                raise JsonRESTError(exc.code, str(exc)) from exc
            return ActionResult({"PipelineExecutionArn": arn})

        return answer

    def stop_pipeline_execution(response: Any) -> Any:
        arn = response._get_param("PipelineExecutionArn")
        try:
            emulation.stop(arn)
        except PipelineError as exc:
            raise JsonRESTError(exc.code, str(exc)) from exc
        return ActionResult({"PipelineExecutionArn": arn})

    def list_pipeline_execution_steps(response: Any) -> Any:
        try:
            return ActionResult(emulation.list_steps(response._get_param("PipelineExecutionArn")))
        except PipelineError as exc:
            raise JsonRESTError(exc.code, str(exc)) from exc

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(backend, "start_pipeline_execution", start_pipeline_execution))
        stack.enter_context(mock.patch.object(backend, "describe_pipeline_execution", describe_pipeline_execution))
        for action, method in (
            ("send_pipeline_execution_step_success", _answering(True)),
            ("send_pipeline_execution_step_failure", _answering(False)),
            ("stop_pipeline_execution", stop_pipeline_execution),
            ("list_pipeline_execution_steps", list_pipeline_execution_steps),
        ):
            stack.enter_context(mock.patch.object(SageMakerResponse, action, method, create=True))
        yield


# -- an execution that times out (canary: test_h13_environment_set_error_and_set_stop) --------------


def time_out_execution(execution_arn: str) -> None:
    """The execution passes its TimeoutSeconds now: it ends TIMED_OUT, as Step Functions ends it (the task
    running at that moment finishes, and its result is not used). The ASL's 48 h cannot be waited for."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[ACCOUNT_ID][REGION]
    backend.describe_execution(execution_arn).exec_worker.env.set_timed_out()
