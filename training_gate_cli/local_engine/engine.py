"""LocalGate: the synthesized gate deployed in an emulated account, with executions to run and watch."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import logging
import os
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

import training_gate_cli.local_engine.moto_hooks as moto_hooks
from training_gate.handlers.environment import forget_settings
from training_gate_cli.local_engine.constants import LOCAL_ENVIRONMENT, POLL_SECONDS, LocalEngineError
from training_gate_cli.local_engine.iam import Enforcement, create_in_account, enforced
from training_gate_cli.local_engine.pipelines import PipelineEmulation
from training_gate_cli.local_engine.provision import Account, Resolver, provision
from training_gate_cli.local_engine.strict import (
    HISTORY_EVENTS_MAX,
    STATE_PAYLOAD_MAX,
    check_lambda_response,
    strict_requests,
)
from training_gate_cli.local_engine.template import resources_of, rule_matches
from training_gate_cli.local_engine.tuning import TuningEmulation


@dataclass
class InvocationContext:
    """What Lambda hands a handler as its context, for in-process invocations."""

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
class Fault:
    """A failure injected into one invocation of a function (matched by its state's name).

    kind: `crash` (the invocation fails before the handler runs), `lose_response` (the handler runs
    and its side effects happen, then the response is lost as Lambda.ServiceException), `abort` (the
    handler runs, then the execution is stopped), `stop` (the execution is stopped while the task is
    scheduled: the handler never runs), `error` (the handler runs, then `error` is raised), `time_out`
    (the handler runs, then the execution passes its TimeoutSeconds: it ends TIMED_OUT)."""

    function: str
    kind: str
    attempt: int = 0
    error: str = "Lambda.ServiceException"
    calls: int = 0


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


@dataclass
class ScriptedJob:
    statuses: list[str]
    final_status: str
    polls: int = 0


@dataclass
class ExecutionResult:
    arn: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    states: list[str]
    history: list[dict[str, Any]] = field(repr=False)
    alert: dict[str, Any] | None = None

    @property
    def transitions(self) -> int:
        """States entered, the unit Step Functions bills (retries of a task are counted separately)."""
        return len(self.states)

    @property
    def largest_state_payload(self) -> int:
        """The largest state input or output in this execution, in UTF-8 bytes."""
        sizes = [0]
        for event in self.history:
            for key, field_name in (("stateEnteredEventDetails", "input"), ("stateExitedEventDetails", "output")):
                text = event.get(key, {}).get(field_name)
                if text is not None:
                    sizes.append(len(text.encode("utf-8")))
        return max(sizes)


def _error_payload(error_type: str, message: str, trace: list[str] | None = None) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": trace or []}).encode()


class LocalGate:
    """Context manager: an emulated account with the synthesized gate deployed in it."""

    def __init__(
        self,
        template: dict[str, Any],
        mock_config: dict[str, Any] | None = None,
        retry_time_scale: float = 1.0,
        throttle_rate: float = 0.0,
        seed: int = 0,
        strict: bool = True,
        iam: bool = True,
        assets: Path | None = None,
    ):
        self.template = template
        # The cdk.out directory the template was written to: the files the stack deploys as assets.
        self.assets = assets
        self.strict = strict
        self.iam_enforced = iam
        self.iam: Enforcement | None = None
        self.mock_config = (
            mock_config if mock_config is not None else json.loads(moto_hooks.MOCK_CONFIG_FILE.read_text())
        )
        self.retries = moto_hooks.ScaledSleep(retry_time_scale)
        self.throttler = Throttler(throttle_rate, seed)
        self.account = Account()
        self.faults: list[Fault] = []
        self.lambda_responses: list[tuple[str, int]] = []
        self.client_tokens: dict[str, tuple[str, str]] = {}
        self._scripted: dict[str, ScriptedJob] = {}
        self.tuning = TuningEmulation()
        self.pipelines = PipelineEmulation(seed)
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._stepfunctions: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

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
        stack.enter_context(moto_hooks.lambda_dispatch(self._invoke))
        stack.enter_context(moto_hooks.aws_sdk_fidelity())
        stack.enter_context(moto_hooks.mock_config_test_cases(self.mock_config))
        stack.enter_context(moto_hooks.scaled_retry_sleep(self.retries))
        stack.enter_context(moto_hooks.scripted_describe(self._before_describe))
        stack.enter_context(moto_hooks.atomic_dynamodb_writes())
        stack.enter_context(moto_hooks.terminal_errors_uncatchable())
        stack.enter_context(moto_hooks.stopped_stays_aborted())
        stack.enter_context(moto_hooks.lambda_service_error_names())
        stack.enter_context(moto_hooks.cloudwatch_filter_patterns())
        stack.enter_context(moto_hooks.tuning_jobs(self.tuning))
        stack.enter_context(moto_hooks.redrive_executions())
        stack.enter_context(moto_hooks.pipeline_executions(self.pipelines))
        self.client_tokens = stack.enter_context(moto_hooks.model_package_client_tokens())
        self.account = provision(self.template, self.assets)
        if self.iam_enforced:
            # Each handler runs as its function's role, each task as the state machine's (local_engine/iam.py).
            self.iam = Enforcement(self.template, Resolver(self.account, self.template).resolve)
            create_in_account(self.iam)
            self.iam.start()
            stack.enter_context(enforced(self.iam))
        if self.strict:
            # After provisioning: the engine's own set-up calls are not the gate's.
            stack.enter_context(strict_requests())
        stack.enter_context(mock.patch.dict(os.environ, self.account.environment))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._wait_for_running_executions()
        self._stack.close()

    def reset(self) -> None:
        """Forget what earlier tests left, keeping the deployed gate: decisions, packages, messages,
        scripted jobs and faults. Lets a module share one emulated account."""
        self._wait_for_running_executions()
        dynamodb = boto3.client("dynamodb")
        for table in self.account.table_names.values():
            for item in dynamodb.scan(TableName=table).get("Items", []):
                dynamodb.delete_item(
                    TableName=table, Key={"training_job": item["training_job"], "policy_sha256": item["policy_sha256"]}
                )
        ssm = boto3.client("ssm")
        stored = ssm.get_parameters_by_path(Path="/", Recursive=True).get("Parameters", [])
        for parameter in stored:
            ssm.delete_parameter(Name=parameter["Name"])
        backend = moto_hooks.sagemaker_backend()
        backend.model_packages.clear()
        backend.model_package_groups.clear()
        self.client_tokens.clear()
        for _ in self._drain_all():
            pass
        self._scripted.clear()
        self.tuning.clear()
        self.pipelines.clear()
        sqs = boto3.client("sqs")
        for url, _ in self.account.template_queues.values():
            # PurgeQueue is allowed once a minute per queue: receive and delete what is there instead.
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                for found in batch:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=found["ReceiptHandle"])
        self.faults.clear()
        self.lambda_responses.clear()
        self.retries.intervals.clear()

    # -- in-process Lambda ---------------------------------------------------------------------

    def _handler(self, name: str) -> Callable[[Any, Any], Any]:
        if name not in self._handlers:
            module, _, attribute = self.account.functions[name].handler_path.rpartition(".")
            self._handlers[name] = getattr(importlib.import_module(module), attribute)
        return self._handlers[name]

    def _fault_for(self, name: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.function in name:
                    fault.calls += 1
                    if fault.calls - 1 == fault.attempt:
                        return fault
        return None

    def _invoke(self, function_name: str, body: bytes | None, response_headers: dict[str, Any]) -> bytes | None:
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        function = self.account.functions.get(name)
        if function is None:
            return None  # moto answers 404 ResourceNotFound, as Lambda would
        self.throttler.maybe_throttle("TooManyRequestsException")
        fault = self._fault_for(name)
        event = json.loads(body) if body else {}
        if fault is not None and fault.kind in ("crash", "stop"):
            if fault.kind == "stop":
                self._abort_running(event)
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload(fault.error, "injected: the invocation failed before the handler ran")
        context = InvocationContext(function_name=name, invoked_function_arn=function.arn)
        try:
            handler = self._handler(name)
            forget_settings()  # every function reads its settings document as its own, with its own role
            with self.iam.acting_as_function(name) if self.iam else contextlib.nullcontext():
                result = handler(event, context)
        except Exception as exc:  # noqa: BLE001 - every handler error becomes Lambda's error payload
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload(type(exc).__name__, str(exc), traceback.format_exception(exc)[-5:])
        payload = json.dumps(result).encode()
        with self._lock:
            self.lambda_responses.append((name, len(payload)))
        problem = check_lambda_response(payload)
        if problem:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload("Function.ResponseSizeTooLarge", problem)
        if fault is not None:
            if fault.kind == "abort":
                self._abort_running(event)
            if fault.kind == "time_out":
                self._time_out_running(event)
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload(fault.error, f"injected after the handler ran: {fault.kind}")
        return payload

    def acting_as_person(self) -> contextlib.AbstractContextManager[None]:
        """What a test does from inside a handler on behalf of a person (not checked against the function's role)."""
        return self.iam.acting_as_person() if self.iam else contextlib.nullcontext()

    def _abort_running(self, event: Any) -> None:
        """Stop the execution this invocation belongs to (StopExecution during the task)."""
        with self.acting_as_person():
            self._stop_running(event)

    def _time_out_running(self, event: Any) -> None:
        wanted = event.get("execution_arn") if isinstance(event, dict) else None
        client = boto3.client("stepfunctions")
        with self.acting_as_person():
            running = client.list_executions(stateMachineArn=self.account.state_machine_arn, statusFilter="RUNNING")
        for execution in running["executions"]:
            if wanted in (None, execution["executionArn"]):
                moto_hooks.time_out_execution(execution["executionArn"])

    def _stop_running(self, event: Any) -> None:
        client = boto3.client("stepfunctions")
        wanted = event.get("execution_arn") if isinstance(event, dict) else None
        for execution in client.list_executions(stateMachineArn=self.account.state_machine_arn, statusFilter="RUNNING")[
            "executions"
        ]:
            if wanted in (None, execution["executionArn"]):
                client.stop_execution(executionArn=execution["executionArn"], error="Aborted", cause="injected")

    # -- scripted training jobs ------------------------------------------------------------------

    def _before_describe(self, name: str, job: Any) -> None:
        self.throttler.maybe_throttle("ThrottlingException")
        scripted = self._scripted.get(name)
        if scripted is None or job is None:
            return
        status = scripted.statuses[scripted.polls] if scripted.polls < len(scripted.statuses) else scripted.final_status
        scripted.polls += 1
        job.training_job_status = status
        job.secondary_status = {"InProgress": "Training"}.get(status, status)

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
        hyperparameters: dict[str, str] | None = None,
    ) -> None:
        """Shape an existing emulated job: status per DescribeTrainingJob call, then `final_status`."""
        job = moto_hooks.sagemaker_backend().training_jobs[name]
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
        if hyperparameters is not None:
            job.hyper_parameters = hyperparameters
        self._scripted[name] = ScriptedJob(statuses=list(statuses), final_status=final_status)

    # -- tuning jobs (emulated: local_engine/tuning.py) ------------------------------------------------

    def launch_tuning_child(
        self, tuning_job_name: str, request: dict[str, Any], child: Any, final_metrics: dict[str, float] | None = None
    ) -> dict[str, Any]:
        """A training job the tuning job launches: created with the tuning job's own tags (SageMaker adds
        them to every training job a tuning job launches), known as its child from then on. `request`
        is the CreateTrainingJob request the tuning job's definition makes; returns DescribeTrainingJob."""
        tuning = moto_hooks.sagemaker_backend().hyper_parameter_tuning_jobs[tuning_job_name]
        tags = list(tuning.tags or [])
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_training_job(**request, **({"Tags": tags} if tags else {}))
        child.arn = moto_hooks.sagemaker_backend().training_jobs[request["TrainingJobName"]].arn
        self.tuning.add_child(tuning_job_name, child)
        described = sagemaker.describe_training_job(TrainingJobName=request["TrainingJobName"])
        self.script_training_job(
            request["TrainingJobName"],
            statuses=[],
            final_status=child.status,
            metric_definitions=request["AlgorithmSpecification"].get("MetricDefinitions", []),
            final_metrics=final_metrics,
            failure_reason=child.failure_reason,
        )
        described["Tags"] = {t["Key"]: t["Value"] for t in tags}
        return described

    # -- SageMaker pipelines and the callback bridge (emulated: local_engine/pipelines.py) -------------

    def start_pipeline(
        self,
        name: str,
        definition: dict[str, Any],
        properties: dict[str, dict[str, Any]] | None = None,
        parameters: dict[str, str] | None = None,
    ) -> str:
        """CreatePipeline (once per name) and StartPipelineExecution, as a person would: the execution runs
        until its CallbackStep has put its message on the queue. `properties` are what steps the emulation
        does not run produced (a training step's TrainingJobName); returns the pipeline execution's ARN."""
        sagemaker = boto3.client("sagemaker")
        with self.acting_as_person():
            if name not in moto_hooks.sagemaker_backend().pipelines:
                sagemaker.create_pipeline(
                    PipelineName=name,
                    PipelineDefinition=json.dumps(definition),
                    RoleArn=f"arn:aws:iam::{self.account.state_machine_arn.split(':')[4]}:role/SageMakerPipelines",
                )
            self.pipelines.pending_properties[name] = properties or {}
            started = sagemaker.start_pipeline_execution(
                PipelineName=name,
                PipelineParameters=[{"Name": k, "Value": v} for k, v in (parameters or {}).items()],
            )
        return str(started["PipelineExecutionArn"])

    def stop_pipeline(self, pipeline_execution_arn: str) -> None:
        with self.acting_as_person():
            boto3.client("sagemaker").stop_pipeline_execution(
                PipelineExecutionArn=pipeline_execution_arn, ClientRequestToken="stop-" + "0" * 32
            )

    def _event_source_mapping(self) -> tuple[str, str, str, int, bool]:
        """(function logical ID, queue URL, queue ARN, batch size, partial batch responses) of the SQS event
        source mapping the template declares."""
        mappings = resources_of(self.template, "AWS::Lambda::EventSourceMapping")
        if len(mappings) != 1:
            raise LocalEngineError(f"expected one event source mapping, found {len(mappings)}")
        properties = next(iter(mappings.values()))["Properties"]
        function = properties["FunctionName"]["Ref"]
        queue = properties["EventSourceArn"]["Fn::GetAtt"][0]
        # "Your function's timeout must be less than or equal to the queue's visibility timeout. Lambda
        # validates this requirement when you create or update an event source mapping and will return an
        # error" (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html); SQS's default is 30 s.
        visibility = int(self.template["Resources"][queue]["Properties"].get("VisibilityTimeout", 30))
        timeout = int(self.template["Resources"][function]["Properties"].get("Timeout", 3))
        if timeout > visibility:
            raise LocalEngineError(
                f"the event source mapping of {function} is refused: its timeout ({timeout} s) exceeds the visibility "
                f"timeout of queue {queue} ({visibility} s)"
            )
        url, arn = self.account.template_queues[queue]
        partial = "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", [])
        return function, url, arn, int(properties.get("BatchSize", 10)), partial

    def deliver_callbacks(self, duplicates: int = 0) -> list[str]:
        """Lambda's SQS event source mapping, run now: batches of up to BatchSize messages are received with
        the function's role and handed to it (each batch `1 + duplicates` times: SQS delivers at least once);
        messages it reports as failed (or all, when it fails) are delivered again at once (as if their
        visibility timeout had passed) until SQS moves them to the dead-letter queue after maxReceiveCount
        receives; the others are deleted. Returns the ARNs of the executions started meanwhile, oldest first
        (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html and services-sqs-errorhandling.html)."""
        function, url, queue_arn, batch_size, partial = self._event_source_mapping()
        sqs = boto3.client("sqs")
        before = {e["executionArn"] for e in self._all_executions()}
        while True:
            with self.iam.acting_as_function(function) if self.iam else contextlib.nullcontext():
                messages = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(batch_size, 10),
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=0,
                ).get("Messages", [])
            if not messages:
                break
            event = {"Records": [self._sqs_record(m, queue_arn) for m in messages]}
            failed: set[str] = set()
            for _ in range(1 + duplicates):
                headers: dict[str, Any] = {}
                payload = self._invoke(self.account.functions[function].arn, json.dumps(event).encode(), headers)
                answer = json.loads(payload) if payload else {}
                if headers.get("x-amz-function-error"):
                    failed |= {m["MessageId"] for m in messages}  # the whole batch is delivered again
                elif partial:
                    failed |= {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] in failed:
                    with self.acting_as_person():  # the visibility timeout elapsing, not a call of the role
                        sqs.change_message_visibility(
                            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                        )
                    continue
                with self.iam.acting_as_function(function) if self.iam else contextlib.nullcontext():
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        started = [e for e in self._all_executions() if e["executionArn"] not in before]
        return [e["executionArn"] for e in sorted(started, key=lambda e: e["startDate"])]

    @staticmethod
    def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                k: attributes[k]
                for k in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
                if k in attributes
            },
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": queue_arn.split(":")[3],
        }

    def _all_executions(self) -> list[dict[str, Any]]:
        client = self._sfn()
        found, token = [], None
        while True:
            kwargs = {"stateMachineArn": self.state_machine_arn, **({"nextToken": token} if token else {})}
            page = client.list_executions(**kwargs)
            found += page["executions"]
            token = page.get("nextToken")
            if not token:
                return found

    def callback_dead_letters(self) -> list[str]:
        """The bodies of callback messages the bridge never started an execution for (the queue's dead-letter
        queue), each once."""
        mappings = resources_of(self.template, "AWS::SQS::Queue")
        _, url, _, _, _ = self._event_source_mapping()
        queue = next(k for k, (u, _) in self.account.template_queues.items() if u == url)
        target = mappings[queue]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        sqs = boto3.client("sqs")
        dead_letters = self.account.template_queues[target][0]
        bodies = []
        while True:
            batch = sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return bodies
            for found in batch:
                sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=found["ReceiptHandle"])
                bodies.append(found["Body"])

    # -- events -------------------------------------------------------------------------------

    def _rules(self, source: str) -> list[dict[str, Any]]:
        return [
            r["Properties"]
            for r in resources_of(self.template, "AWS::Events::Rule").values()
            if r["Properties"].get("EventPattern", {}).get("source") == [source]
        ]

    def rule(self, detail_type: str = "SageMaker Training Job State Change") -> tuple[dict[str, Any], dict[str, Any]]:
        """The rule that starts the gate for SageMaker's events of one detail-type."""
        rules = [r for r in self._rules("aws.sagemaker") if r["EventPattern"].get("detail-type") == [detail_type]]
        if len(rules) != 1:
            raise LocalEngineError(f"expected one rule for {detail_type!r} events, found {len(rules)}")
        return self._resolved(rules[0]["EventPattern"]), rules[0]["Targets"][0]

    def _resolved(self, pattern: Any) -> Any:
        resolver = Resolver(self.account, self.template)
        if isinstance(pattern, dict) and set(pattern) <= {"Ref", "Fn::GetAtt", "Fn::Join"} and pattern:
            return resolver.resolve(pattern)
        if isinstance(pattern, dict):
            return {k: self._resolved(v) for k, v in pattern.items()}
        if isinstance(pattern, list):
            return [self._resolved(v) for v in pattern]
        return pattern

    def route_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """What the rule would send to the state machine for this event, or None if it does not match."""
        from training_gate_cli.local_engine.template import apply_input_transformer

        for rule in self._rules("aws.sagemaker"):
            if not rule_matches(self._resolved(rule["EventPattern"]), event):
                continue
            target = rule["Targets"][0]
            if "InputTransformer" in target:
                return apply_input_transformer(target["InputTransformer"], event)
            return event
        return None

    def _deliver_end_of_execution(self, description: dict[str, Any]) -> dict[str, Any] | None:
        """EventBridge's "Step Functions Execution Status Change" event, sent to the rule's target
        (moto's EventBridge cannot target Step Functions or deliver its events: the engine does)."""
        detail = {
            "executionArn": description["executionArn"],
            "stateMachineArn": description["stateMachineArn"],
            "name": description.get("name"),
            "status": description["status"],
            "input": description.get("input"),
        }
        event = {
            "version": "0",
            "id": "local",
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": self.account.state_machine_arn.split(":")[4],
            "region": self.account.state_machine_arn.split(":")[3],
            "time": dt.datetime.now(dt.UTC).isoformat(),
            "resources": [description["executionArn"]],
            "detail": detail,
        }
        for rule in self._rules("aws.states"):
            if not rule_matches(self._resolved(rule["EventPattern"]), event):
                continue
            for target in rule.get("Targets", []):
                function = self._resolved(target["Arn"])
                # EventBridge retries a throttled delivery, up to the target's RetryPolicy.
                attempts = 1 + int(target.get("RetryPolicy", {}).get("MaximumRetryAttempts", 185))
                for attempt in range(attempts):
                    response: dict[str, Any] = {}
                    try:
                        payload = self._invoke(function, json.dumps(event).encode(), response)
                    except Exception as exc:  # the injected throttling is moto's REST error
                        if attempt + 1 == attempts:
                            raise LocalEngineError(f"the end-of-execution alert was never delivered: {exc}") from exc
                        continue
                    result = json.loads(payload) if payload else None
                    if response.get("x-amz-function-error"):
                        raise LocalEngineError(f"the end-of-execution alert failed: {result}")
                    return result
        return None

    # -- executions ---------------------------------------------------------------------------

    @property
    def state_machine_arn(self) -> str:
        return self.account.state_machine_arn

    @property
    def definition(self) -> dict[str, Any]:
        return self.account.definition

    def start(self, execution_input: Any, name: str, test_case: str | None = None) -> str:
        """Start an execution; `test_case` selects a MockConfigFile case as Step Functions Local does."""
        arn = f"{self.state_machine_arn}#{test_case}" if test_case else self.state_machine_arn
        return self._sfn().start_execution(stateMachineArn=arn, name=name, input=json.dumps(execution_input))[
            "executionArn"
        ]

    def redrive(self, execution_arn: str) -> None:
        """RedriveExecution, as an operator would call it (emulated: moto has none)."""
        self._sfn().redrive_execution(executionArn=execution_arn)

    def _sfn(self) -> Any:
        if self._stepfunctions is None:
            self._stepfunctions = boto3.client("stepfunctions")
        return self._stepfunctions

    def events(self, execution_arn: str) -> list[dict[str, Any]]:
        client = self._sfn()
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
        """Follow an execution to its end, reporting each state as it is entered; then deliver its
        end-of-execution event to the rules that listen for it."""
        client = self._sfn()
        seen = 0
        started = time.monotonic()
        while True:
            description = client.describe_execution(executionArn=execution_arn)
            ended = description["status"] != "RUNNING"
            # The history is read only when someone follows the states, and once at the end: reading
            # it competes with the execution's own thread for the interpreter.
            if on_state is not None or ended:
                history = self.events(execution_arn)
                if len(history) > HISTORY_EVENTS_MAX:
                    raise LocalEngineError(
                        f"execution {execution_arn} wrote {len(history)} history events: AWS fails an execution at "
                        f"{HISTORY_EVENTS_MAX}"
                    )
                entered = [e for e in history if e["type"].endswith("StateEntered")]
                for event in entered[seen:]:
                    if on_state:
                        on_state(event["stateEnteredEventDetails"]["name"], time.monotonic() - started)
                seen = len(entered)
            if ended:
                break
            if time.monotonic() - started > timeout_seconds:
                raise LocalEngineError(f"execution {execution_arn} still RUNNING after {timeout_seconds} s")
            time.sleep(POLL_SECONDS)
        output = description.get("output")
        if output is not None and len(output.encode("utf-8")) > STATE_PAYLOAD_MAX:
            raise LocalEngineError(f"execution {execution_arn} output passes 256 KiB")
        return ExecutionResult(
            arn=execution_arn,
            status=description["status"],
            output=json.loads(output) if output else None,
            error=description.get("error"),
            cause=description.get("cause"),
            states=[e["stateEnteredEventDetails"]["name"] for e in entered],
            history=history,
            alert=self._deliver_end_of_execution(description),
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
        if not self.account.state_machine_arn:
            return
        client = boto3.client("stepfunctions")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            running = client.list_executions(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")
            if not running["executions"]:
                return
            time.sleep(POLL_SECONDS)

    # -- reading results ----------------------------------------------------------------------

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

    def _drain_all(self) -> Iterator[dict[str, Any]]:
        for url in self.account.queue_urls.values():
            yield from self._drain(url)

    def notifications(self) -> Iterator[dict[str, Any]]:
        """Messages the model's owners received so far (each once)."""
        return self._drain(self.account.queue_urls["owners"])

    def operations_notifications(self) -> Iterator[dict[str, Any]]:
        """Messages operations received so far (each once)."""
        return self._drain(self.account.queue_urls["operations"])

    def decision_events(self) -> Iterator[dict[str, Any]]:
        """Training Gate Decision events published on the default bus so far (each once)."""
        return self._drain(self.account.queue_urls["decision_events"])

    @property
    def decision_table(self) -> str:
        if len(self.account.table_names) != 1:
            raise LocalEngineError("expected one decision table")
        return next(iter(self.account.table_names.values()))

    @property
    def reports_bucket(self) -> str:
        if len(self.account.bucket_names) != 1:
            raise LocalEngineError("expected one reports bucket")
        return next(iter(self.account.bucket_names.values()))

    @property
    def largest_lambda_response(self) -> int:
        return max((size for _, size in self.lambda_responses), default=0)
