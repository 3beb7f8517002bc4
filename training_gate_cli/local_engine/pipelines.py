"""SageMaker Pipelines executions with CallbackSteps, as SageMaker runs them, for the emulated account.

moto 5.2.5 creates pipelines and executions (each Succeeded at once) but runs no step, has no
SendPipelineExecutionStepSuccess, SendPipelineExecutionStepFailure, StopPipelineExecution or
ListPipelineExecutionSteps. This module emulates what the gate meets, after the API reference and the
developer guide:

- A CallbackStep "sends a message to a customer-specified Amazon SQS queue. The message contains a
  Pipelines-generated token and a customer-supplied list of input parameters", then waits for an answer
  (https://docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-steps.html#step-type-callback). The
  body is `{"token", "pipelineExecutionArn", "arguments"}`; the token is 10 characters of [a-zA-Z0-9]
  (CallbackStepMetadata.CallbackToken).
- SendPipelineExecutionStepSuccess / Failure: the request's own limits (token, 50 outputs of Name <= 256
  and Value <= 1,024, FailureReason <= 256, ClientRequestToken 32-128) are the strict engine's, from the
  service model. "An idempotent operation completes no more than one time": the same ClientRequestToken
  with the same request returns the first answer's result. A token the pipeline never issued is
  ResourceNotFound; a token answered already, with another request, is ConflictException (the two errors
  the operations document; the reference does not say which of them AWS gives, and the gate treats them
  alike). The answer moves the step to Succeeded (its OutputParameters kept) or Failed (its FailureReason).
- StopPipelineExecution: "A pipeline execution won't stop while a callback step is running": the token is
  sent again with `"status": "Stopping"`, and the execution stops once the token is answered
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StopPipelineExecution.html).
- A ConditionStep evaluates its Conditions (Equals, on `Get` of a step's OutputParameters, a step's
  property or a pipeline parameter) once the steps they read are done, and runs IfSteps or ElseSteps.
  A FailStep fails the execution with its ErrorMessage (`Std:Join` resolved). Other step types (a training
  step, a Lambda step) run as Succeeded with the properties the test gives them; their resolved Arguments
  are kept.
  "If you provide a nested value and try to refer to it later, a non-retryable client error is thrown":
  a Get of an output the answer did not give fails the execution.
"""

from __future__ import annotations

import json
import random
import re
import string
import threading
from dataclasses import dataclass, field
from typing import Any

from training_gate_cli.local_engine.constants import LocalEngineError

TOKEN_ALPHABET = string.ascii_letters + string.digits
_OUTPUT = re.compile(r"^Steps\.(?P<step>[^.]+)\.OutputParameters\['(?P<name>[^']+)'\]$")
_PROPERTY = re.compile(r"^Steps\.(?P<step>[^.]+)\.(?P<path>.+)$")


class PipelineError(Exception):
    """An error SageMaker answers with: `code` is its error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class CallbackRun:
    """One CallbackStep of one pipeline execution, waiting for (or having got) its answer."""

    step: str
    token: str
    queue_url: str
    arguments: dict[str, Any]
    declared_outputs: list[str]
    status: str = "Executing"
    outputs: dict[str, str] = field(default_factory=dict)
    failure_reason: str | None = None
    # Every SendPipelineExecutionStep* call for this token: the accepted one, replays of it, refusals.
    accepted: list[dict[str, Any]] = field(default_factory=list)
    replays: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    client_request_token: str | None = None
    request: dict[str, Any] | None = None


@dataclass
class PipelineRun:
    arn: str
    definition: dict[str, Any]
    parameters: dict[str, Any]
    properties: dict[str, dict[str, Any]]
    status: str = "Executing"
    failure_reason: str | None = None
    stopping: bool = False
    steps: dict[str, str] = field(default_factory=dict)
    callbacks: dict[str, CallbackRun] = field(default_factory=dict)
    remaining: list[dict[str, Any]] = field(default_factory=list)
    arguments: dict[str, Any] = field(default_factory=dict)


class PipelineEmulation:
    """Every emulated pipeline execution of the account; `send_message(queue_url, body)` is SQS's."""

    def __init__(self, seed: int = 0) -> None:
        self.runs: dict[str, PipelineRun] = {}
        self.tokens: dict[str, tuple[str, str]] = {}
        self.pending_properties: dict[str, dict[str, dict[str, Any]]] = {}
        self.send_message: Any = None
        self._random = random.Random(seed)
        self._lock = threading.RLock()

    def clear(self) -> None:
        with self._lock:
            self.runs.clear()
            self.tokens.clear()
            self.pending_properties.clear()

    # -- running an execution ---------------------------------------------------------------------------

    def _token(self) -> str:
        while True:
            token = "".join(self._random.choice(TOKEN_ALPHABET) for _ in range(10))
            if token not in self.tokens:
                return token

    def begin(self, arn: str, definition_text: str, parameters: list[dict[str, Any]] | None) -> None:
        """StartPipelineExecution: the execution runs its steps until a callback waits."""
        definition = json.loads(definition_text)
        pipeline = arn.split(":pipeline/", 1)[1].split("/", 1)[0]
        given = {p["Name"]: p["Value"] for p in parameters or []}
        values = {p["Name"]: given.get(p["Name"], p.get("DefaultValue")) for p in definition.get("Parameters", [])}
        with self._lock:
            run = PipelineRun(
                arn=arn,
                definition=definition,
                parameters=values,
                properties=self.pending_properties.pop(pipeline, {}),
                remaining=list(definition.get("Steps", [])),
            )
            self.runs[arn] = run
            self._advance(run)

    def _resolve(self, run: PipelineRun, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Get"}:
            path = value["Get"]
            if path.startswith("Parameters."):
                return run.parameters[path.removeprefix("Parameters.")]
            output = _OUTPUT.match(path)
            if output:
                callback = next((c for c in run.callbacks.values() if c.step == output["step"]), None)
                if callback is None or output["name"] not in callback.outputs:
                    raise PipelineError("ValidationException", f"{path} was not given by step {output['step']}")
                return callback.outputs[output["name"]]
            found = _PROPERTY.match(path)
            if found and found["path"] in run.properties.get(found["step"], {}):
                return run.properties[found["step"]][found["path"]]
            raise LocalEngineError(f"the pipeline emulation cannot resolve {path}: give the step's properties")
        if isinstance(value, dict) and set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return str(join.get("On", "")).join(str(self._resolve(run, v)) for v in join.get("Values", []))
        if isinstance(value, dict):
            return {k: self._resolve(run, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(run, v) for v in value]
        return value

    def _condition(self, run: PipelineRun, condition: dict[str, Any]) -> bool:
        kind = condition["Type"]
        if kind == "Equals":
            return self._resolve(run, condition["LeftValue"]) == self._resolve(run, condition["RightValue"])
        if kind == "Not":
            return not self._condition(run, condition["Expression"])
        if kind == "Or":
            return any(self._condition(run, c) for c in condition["Conditions"])
        if kind == "In":
            return self._resolve(run, condition["QueryValue"]) in self._resolve(run, condition["Values"])
        raise LocalEngineError(f"the pipeline emulation does not evaluate {kind} conditions")

    def _advance(self, run: PipelineRun) -> None:
        """Run steps in order until one waits (a callback) or none is left."""
        while run.remaining:
            if any(c.status == "Executing" for c in run.callbacks.values()):
                return
            step = run.remaining.pop(0)
            name, kind = step["Name"], step["Type"]
            if kind == "Callback":
                self._send_callback(run, step)
                return
            if kind == "Condition":
                arguments = step["Arguments"]
                try:
                    passed = all(self._condition(run, c) for c in arguments.get("Conditions", []))
                except PipelineError as exc:
                    run.steps[name] = "Failed"
                    self._fail(run, f"step {name}: {exc}")
                    return
                run.steps[name] = "Succeeded"
                run.remaining = list(arguments["IfSteps" if passed else "ElseSteps"]) + run.remaining
                continue
            try:
                run.arguments[name] = self._resolve(run, step.get("Arguments", {}))
            except PipelineError as exc:
                run.steps[name] = "Failed"
                self._fail(run, f"step {name}: {exc}")
                return
            if kind == "Fail":
                run.steps[name] = "Failed"
                self._fail(run, str(run.arguments[name].get("ErrorMessage", "")))
                return
            run.steps[name] = "Succeeded"
        if run.status == "Executing":
            run.status = "Succeeded"

    def _send_callback(self, run: PipelineRun, step: dict[str, Any]) -> None:
        token = self._token()
        arguments = self._resolve(run, step.get("Arguments", {}))
        callback = CallbackRun(
            step=step["Name"],
            token=token,
            queue_url=step["SqsQueueUrl"],
            arguments=arguments,
            declared_outputs=[o["OutputName"] for o in step.get("OutputParameters", [])],
        )
        run.callbacks[token] = callback
        run.steps[step["Name"]] = "Executing"
        self.tokens[token] = (run.arn, step["Name"])
        body = {"token": token, "pipelineExecutionArn": run.arn, "arguments": arguments}
        self.send_message(callback.queue_url, json.dumps(body))

    def _fail(self, run: PipelineRun, reason: str) -> None:
        run.status = "Failed"
        run.failure_reason = reason
        run.remaining = []

    # -- the API ------------------------------------------------------------------------------------

    def answer(self, request: dict[str, Any], success: bool) -> str:
        """SendPipelineExecutionStepSuccess (success) or SendPipelineExecutionStepFailure."""
        token = request.get("CallbackToken", "")
        with self._lock:
            found = self.tokens.get(token)
            if found is None:
                raise PipelineError("ResourceNotFound", f"Callback token {token} was not found.")
            run = self.runs[found[0]]
            callback = run.callbacks[token]
            call = {"success": success, **request}
            crt = request.get("ClientRequestToken")
            if callback.status != "Executing":
                same = {k: v for k, v in request.items() if k != "ClientRequestToken"}
                if crt and crt == callback.client_request_token and same == callback.request:
                    callback.replays.append(call)
                    return run.arn
                callback.refused.append(call)
                raise PipelineError(
                    "ConflictException",
                    f"Callback step {callback.step} of {run.arn} is {callback.status}: its token was answered already.",
                )
            callback.accepted.append(call)
            callback.client_request_token = crt
            callback.request = {k: v for k, v in request.items() if k != "ClientRequestToken"}
            if success:
                callback.status = "Succeeded"
                callback.outputs = {p["Name"]: p["Value"] for p in request.get("OutputParameters", [])}
                run.steps[callback.step] = "Succeeded"
            else:
                callback.status = "Failed"
                callback.failure_reason = request.get("FailureReason", "")
                run.steps[callback.step] = "Failed"
                self._fail(run, f"Step failure: {callback.step}: {callback.failure_reason}")
            if run.stopping:
                run.status = "Stopped"
                run.remaining = []
            else:
                self._advance(run)
            return run.arn

    def stop(self, arn: str) -> None:
        """StopPipelineExecution: each waiting callback's token is sent again, with "status": "Stopping"."""
        with self._lock:
            run = self.runs.get(arn)
            if run is None:
                raise PipelineError("ResourceNotFound", f"Pipeline execution {arn} was not found.")
            if run.status != "Executing":
                raise PipelineError("ValidationException", f"Pipeline execution {arn} is {run.status}.")
            waiting = [c for c in run.callbacks.values() if c.status == "Executing"]
            run.stopping = True
            run.status = "Stopping" if waiting else "Stopped"
            for callback in waiting:
                body = {"token": callback.token, "pipelineExecutionArn": arn, "arguments": callback.arguments}
                self.send_message(callback.queue_url, json.dumps({**body, "status": "Stopping"}))

    def describe(self, arn: str, described: dict[str, Any]) -> dict[str, Any]:
        run = self.runs.get(arn)
        if run is None:
            return described
        answer = {**described, "PipelineExecutionStatus": run.status}
        if run.failure_reason:
            answer["FailureReason"] = run.failure_reason
        return answer

    def list_steps(self, arn: str) -> dict[str, Any]:
        run = self.runs.get(arn)
        if run is None:
            raise PipelineError("ResourceNotFound", f"Pipeline execution {arn} was not found.")
        steps = []
        for name, status in run.steps.items():
            step: dict[str, Any] = {"StepName": name, "StepStatus": status}
            callback = next((c for c in run.callbacks.values() if c.step == name), None)
            if callback is not None:
                step["Metadata"] = {
                    "Callback": {
                        "CallbackToken": callback.token,
                        "SqsQueueUrl": callback.queue_url,
                        "OutputParameters": [{"Name": k, "Value": v} for k, v in callback.outputs.items()],
                    }
                }
                if callback.failure_reason is not None:
                    step["FailureReason"] = callback.failure_reason
            steps.append(step)
        return {"PipelineExecutionSteps": list(reversed(steps))}

    # -- what tests read --------------------------------------------------------------------------------

    def callback(self, token: str) -> CallbackRun:
        arn, _ = self.tokens[token]
        return self.runs[arn].callbacks[token]

    def callbacks_of(self, arn: str) -> list[CallbackRun]:
        return list(self.runs[arn].callbacks.values())
