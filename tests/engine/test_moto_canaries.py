"""Canaries for every private moto hook the local engine uses (training_gate_cli/local_engine/moto_hooks.py,
where each hook names its canary here).

If one fails after a moto upgrade, the message says which hook moved; fix moto_hooks.py before
trusting any scenario test.
"""

from __future__ import annotations

import inspect
import json

import boto3
import moto
import pytest
from moto import mock_aws

from training_gate_cli import local_engine
from training_gate_cli.local_engine import moto_hooks
from training_gate_cli.local_engine.emulated import training_job_request


def test_moto_is_the_pinned_version():
    assert moto.__version__ == local_engine.MOTO_VERSION, (
        f"moto {moto.__version__} is installed but the local engine was written for {local_engine.MOTO_VERSION}: "
        "re-run these canaries and update MOTO_VERSION"
    )


def test_h1_lambda_simple_backend_invoke_signature():
    from moto.awslambda_simple.models import LambdaSimpleBackend

    params = list(inspect.signature(LambdaSimpleBackend.invoke).parameters)
    assert params == ["self", "function_name", "qualifier", "body", "headers", "response_headers"], (
        "H1 moved: LambdaSimpleBackend.invoke changed its signature"
    )


def test_h1_function_error_header_reaches_the_caller():
    from unittest import mock

    from moto.awslambda_simple.models import LambdaSimpleBackend

    def failing(self, function_name, qualifier, body, headers, response_headers):
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": "Boom", "errorMessage": "x"}).encode()

    with mock_aws(config={"lambda": {"use_docker": False}}), mock.patch.object(LambdaSimpleBackend, "invoke", failing):
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client = boto3.client("lambda", region_name="us-east-1")
        client.create_function(
            FunctionName="f",
            Runtime="python3.12",
            Role=role,
            Handler="x.h",
            Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
        )
        response = client.invoke(FunctionName="f", Payload=b"{}")
        assert response.get("FunctionError") == "Unhandled", "H1 moved: function errors no longer surface"


def test_h2_h3_aws_sdk_service_hooks_exist():
    service = moto_hooks.aws_sdk_service_class()
    for name in ("_normalise_response", "_normalise_service_error_name", "_normalise_exception_name"):
        assert hasattr(service, name), f"H2/H3 moved: StateTaskServiceAwsSdk.{name} is gone"
    assert list(inspect.signature(service._normalise_exception_name).parameters) == ["norm_service_name", "ex"]


def test_h4_training_job_backend_shape():
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=local_engine.REGION)
        sagemaker.create_training_job(**training_job_request("canary"))
        backend = moto_hooks.sagemaker_backend()
        job = backend.training_jobs["canary"]
        for attribute in ("training_job_status", "secondary_status", "final_metric_data_list", "model_artifacts"):
            assert hasattr(job, attribute), f"H4 moved: FakeTrainingJob.{attribute} is gone"
        job.training_job_status = "Failed"
        job.failure_reason = "boom"
        described = sagemaker.describe_training_job(TrainingJobName="canary")
        assert described["TrainingJobStatus"] == "Failed" and described["FailureReason"] == "boom", (
            "H4 moved: backend attributes no longer drive DescribeTrainingJob"
        )
        assert "describe_training_job" in vars(type(backend)), "H4 moved: backend.describe_training_job"


@pytest.mark.parametrize(("status", "matches"), [("Completed", True), ("InProgress", False)])
def test_h5_event_pattern_matching(status: str, matches: bool):
    pattern = {"source": ["aws.sagemaker"], "detail": {"TrainingJobStatus": ["Completed", "Failed", "Stopped"]}}
    event = {"source": "aws.sagemaker", "detail": {"TrainingJobStatus": status}}
    assert local_engine.rule_matches(pattern, event) is matches, "H5 moved: EventPattern.load/matches_event"


def test_h6_log_stream_filtering_goes_through_event_message_filter():
    import moto.logs.models

    assert hasattr(moto.logs.models, "EventMessageFilter"), "H6 moved: moto.logs.models.EventMessageFilter"
    source = inspect.getsource(moto.logs.models.LogStream.filter_log_events)
    assert "EventMessageFilter(" in source, "H6 moved: LogStream.filter_log_events no longer uses the filter"


@pytest.mark.parametrize(
    ("pattern", "message", "matches"),
    [
        ('?"Validation accuracy: " ?"val"', "[INFO] Validation accuracy: 0.9", True),
        ('?"Validation accuracy: " ?"val"', "epoch 3 eval_loss: 0.2", True),
        ('?"Validation accuracy: " ?"val"', "[INFO] Training accuracy: 0.9", False),
        ('?"[INFO]"', "[info] lower case", False),
        ('"a b" c', "x a b y c", True),
        ('"a b" c', "x a b y", False),
        ('-"DEBUG" loss', "DEBUG loss 1", False),
        ("", "anything", True),
    ],
)
def test_engine_filter_patterns_follow_cloudwatch_term_semantics(pattern: str, message: str, matches: bool):
    assert moto_hooks.CloudWatchTermFilter(pattern).matches(message) is matches


def test_h7_execution_start_and_worker_hooks():
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    params = list(inspect.signature(StepFunctionsParserBackend.start_execution).parameters)
    assert params == ["self", "state_machine_arn", "name", "execution_input", "trace_header"], (
        "H7 moved: start_execution"
    )
    assert hasattr(Execution, "_get_start_execution_worker"), "H7 moved: Execution._get_start_execution_worker"
    assert "mock_test_case" in inspect.signature(ExecutionWorker.__init__).parameters, "H7 moved: worker mock case"
    source = inspect.getsource(ExecutionWorker._get_evaluation_environment)
    assert "mock_test_case=self._mock_test_case" in source, "H7 moved: the worker no longer hands the case on"


def test_h8_mocked_mode_is_decided_by_environment_is_mocked_mode():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    assert hasattr(Environment, "is_mocked_mode"), "H8 moved: Environment.is_mocked_mode"
    assert "env.is_mocked_mode()" in inspect.getsource(lambda_eval_utils.execute_lambda_function_integration)


def test_h9_retries_sleep_through_the_retrier_modules_time():
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl), "H9 moved: the retrier's sleep"


def test_h10_dynamodb_writes_go_through_the_backends_put_and_update_item():
    from moto.dynamodb.models import DynamoDBBackend

    for method in ("put_item", "update_item"):
        assert callable(getattr(DynamoDBBackend, method, None)), f"H10 moved: DynamoDBBackend.{method}"


def test_injected_throttling_uses_motos_rest_error_with_an_aws_error_code():
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError("ThrottlingException", "Rate exceeded")
    assert error.error_type == "ThrottlingException", "moto.core.exceptions.JsonRESTError changed"


def test_h11_states_all_is_decided_in_error_equals_decl():
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    source = inspect.getsource(ErrorEqualsDecl._eval_body)
    assert "env.stack.pop()" in source and "_STATE_ALL_ERROR" in source, "H11 moved: ErrorEqualsDecl._eval_body"
    for name in ("StatesStatesDataLimitExceeded", "StatesRuntime"):
        assert hasattr(StatesErrorNameType, name), f"H11 moved: StatesErrorNameType.{name}"


def test_h12_create_model_package_is_the_backend_method():
    with mock_aws():
        backend = moto_hooks.sagemaker_backend()
        params = inspect.signature(backend.create_model_package).parameters
        assert "client_token" in params, "H12 moved: SageMakerModelBackend.create_model_package(client_token=...)"
        for attribute in ("model_packages", "model_package_groups"):
            assert isinstance(getattr(backend, attribute), dict), f"H12 moved: backend.{attribute} (reset)"


def test_h13_environment_set_error_and_set_stop():
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped, ProgramTimedOut
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend, stepfunctions_parser_backends

    for method in ("set_error", "set_stop", "set_timed_out"):
        assert callable(getattr(Environment, method, None)), f"H13 moved: Environment.{method}"
    assert "self._program_state = ProgramError" in inspect.getsource(Environment.set_error), "H13 moved: set_error"
    assert "ProgramStopped(" in inspect.getsource(Environment.set_stop) and ProgramStopped, "H13 moved: set_stop"
    assert "ProgramTimedOut()" in inspect.getsource(Environment.set_timed_out), "H13 moved: set_timed_out"
    # time_out_execution: a timed-out program state ends the execution TIMED_OUT.
    reflect = inspect.getsource(BaseExecutionWorkerCommunication._reflect_execution_status)
    assert "ProgramTimedOut" in reflect and "TIMED_OUT" in reflect and ProgramTimedOut, "H13 moved: TIMED_OUT"
    assert callable(getattr(StepFunctionsParserBackend, "describe_execution", None)), "H13 moved: describe_execution"
    assert stepfunctions_parser_backends is not None


def test_h14_lambda_task_errors_are_named_in_from_error():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda

    source = inspect.getsource(StateTaskLambda._from_error)
    assert 'error = "Exception"' in source and "lambdaFunctionFailedEventDetails" in source, (
        "H14 moved: StateTaskLambda._from_error"
    )
    assert list(inspect.signature(StateTaskLambda._from_error).parameters) == ["self", "env", "ex"]


def test_h15_tuning_job_backend_and_response_dispatch():
    from moto.core.utils import camelcase_to_underscores, method_names_from_class
    from moto.sagemaker.models import HyperParameterTuningJob
    from moto.sagemaker.responses import SageMakerResponse

    assert "list_training_jobs_for_hyper_parameter_tuning_job" not in method_names_from_class(SageMakerResponse), (
        "moto now implements ListTrainingJobsForHyperParameterTuningJob: compare it with local_engine/tuning.py"
    )
    assert camelcase_to_underscores("ListTrainingJobsForHyperParameterTuningJob") == (
        "list_training_jobs_for_hyper_parameter_tuning_job"
    ), "H15 moved: SageMakerResponse no longer dispatches an action to the method of its name"
    assert "_get_param" in dir(SageMakerResponse), "H15 moved: SageMakerResponse._get_param"
    with mock_aws():
        backend = moto_hooks.sagemaker_backend()
        for method in ("describe_hyper_parameter_tuning_job", "describe_training_job"):
            assert callable(getattr(backend, method, None)), f"H15 moved: backend.{method}"
        assert isinstance(backend.hyper_parameter_tuning_jobs, dict), "H15 moved: backend.hyper_parameter_tuning_jobs"
    assert "self.tags = tags" in inspect.getsource(HyperParameterTuningJob.__init__), (
        "H15 moved: HyperParameterTuningJob.tags (the tags its training jobs inherit)"
    )


def test_h16_execution_worker_and_event_history_for_redrive():
    from moto.stepfunctions.parser.api import ExecutionRedrivenEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventIdGenerator, EventManager
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.responses import StepFunctionResponse

    assert HistoryEventType.ExecutionRedriven and ExecutionRedrivenEventDetails
    for name in ("_execution_logic", "_get_evaluation_entrypoint", "_get_evaluation_environment", "start"):
        assert callable(getattr(ExecutionWorker, name, None)), f"H16 moved: ExecutionWorker.{name}"
    source = inspect.getsource(ExecutionWorker._execution_logic)
    assert "program.eval(self.env)" in source and "terminated()" in source, "H16 moved: the worker's run"
    assert "_history_event_list" in inspect.getsource(EventManager.__init__), "H16 moved: EventManager's event list"
    assert "_next_id" in inspect.getsource(EventIdGenerator.__init__), "H16 moved: EventIdGenerator._next_id"
    for name in ("exec_status", "stop_date", "exec_worker", "error", "cause"):
        assert f"self.{name} =" in inspect.getsource(Execution.__init__), f"H16 moved: Execution.{name}"
    assert "def describe_execution" in inspect.getsource(StepFunctionResponse), "H16 moved: describe_execution"
    assert not hasattr(StepFunctionResponse, "redrive_execution"), (
        "moto now implements RedriveExecution: compare it with moto_hooks.redrive"
    )


def test_h17_pipeline_backend_and_response_dispatch():
    from moto.core.utils import method_names_from_class
    from moto.sagemaker.models import FakePipeline
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sqs.models import SQSBackend

    for action in (
        "send_pipeline_execution_step_success",
        "send_pipeline_execution_step_failure",
        "stop_pipeline_execution",
        "list_pipeline_execution_steps",
    ):
        assert action not in method_names_from_class(SageMakerResponse), (
            f"moto now implements {action}: compare it with local_engine/pipelines.py"
        )
    with mock_aws():
        backend = moto_hooks.sagemaker_backend()
        for method in ("start_pipeline_execution", "describe_pipeline_execution"):
            assert callable(getattr(backend, method, None)), f"H17 moved: backend.{method}"
        assert isinstance(backend.pipelines, dict), "H17 moved: backend.pipelines"
    assert "self.pipeline_definition = pipeline_definition" in inspect.getsource(FakePipeline.__init__), (
        "H17 moved: FakePipeline.pipeline_definition"
    )
    assert list(inspect.signature(SQSBackend.send_message).parameters)[:3] == ["self", "queue_name", "message_body"]
