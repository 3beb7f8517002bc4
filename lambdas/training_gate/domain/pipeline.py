"""SageMaker Pipelines' CallbackStep, as the gate meets it: the message a pipeline puts on the gate's queue,
the execution input it becomes, and the answer the pipeline gets. Pure.

A CallbackStep "sends a message to a customer-specified Amazon SQS queue. The message contains a
Pipelines-generated token and a customer-supplied list of input parameters", then waits until someone calls
SendPipelineExecutionStepSuccess (with output parameters) or SendPipelineExecutionStepFailure (with a reason)
with that token. Stopping a pipeline execution while the step runs sends the same token again with
`"status": "Stopping"`, and the pipeline stops only once the token is answered
(https://docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-steps.html#step-type-callback, and
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StopPipelineExecution.html).

The limits are the API reference's
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_SendPipelineExecutionStepSuccess.html and
API_SendPipelineExecutionStepFailure.html): CallbackToken exactly 10 characters of `[a-zA-Z0-9]`, at most 50
OutputParameters of Name <= 256 and Value <= 1,024 characters, FailureReason <= 256 characters, and a
ClientRequestToken of 32-128 characters that makes the call idempotent ("An idempotent operation completes
no more than one time"). The gate derives that token from the decision and the callback token, so every
execution that answers one token for one decision sends the very same request.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CALLBACK_TOKEN_PATTERN = r"^[a-zA-Z0-9]{10}$"
PIPELINE_EXECUTION_ARN_PATTERN = r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline/.*/execution/.*$"
PIPELINE_EXECUTION_ARN_MAX = 2048
OUTPUT_PARAMETERS_MAX = 50
OUTPUT_NAME_MAX = 256
OUTPUT_VALUE_MAX = 1024
FAILURE_REASON_MAX = 256
CLIENT_REQUEST_TOKEN_MIN = 32
CLIENT_REQUEST_TOKEN_MAX = 128
# The outputs every success answer carries, in this order: what a CallbackStep declares and a ConditionStep
# reads (`step.properties.Outputs["decision"]`). Values are strings; an empty one means "none".
OUTPUT_NAMES = ("decision", "model_package_arn", "report_uri", "reason_codes")
# What a CallbackStep's arguments may carry: the job (one of the two names) and the options of an execution
# that concern a pipeline. Anything else reaches the validation of the execution input, which names it.
ARGUMENT_BOOLEANS = ("gate_tuning_children", "fail_step_on_reject")
ARGUMENT_INTEGERS = ("tuning_candidates", "poll_interval_seconds", "max_polls")
STOPPING = "stopping"
# The decisions a pipeline can branch on; any other outcome (a job that failed) fails the step.
BRANCHABLE = ("reject", "inconclusive", "skipped")


class CallbackMessageError(ValueError):
    """The queue's message is no CallbackStep message: it has no token the gate could answer."""


def utf16_length(text: str) -> int:
    # AWS counts lengths as Java does: a character outside the BMP is two code units.
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def fit(text: str, limit: int) -> str:
    """`text` within `limit` UTF-16 code units, ending in "..." when it had to be cut."""
    if utf16_length(text) <= limit:
        return text
    kept = []
    budget = limit - 3
    for char in text:
        budget -= 2 if ord(char) > 0xFFFF else 1
        if budget < 0:
            break
        kept.append(char)
    return "".join(kept) + "..."


def client_request_token(*parts: str) -> str:
    """A ClientRequestToken that is a pure function of what is answered (64 hexadecimal characters)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


class PipelineCallback(BaseModel):
    """The callback a pipeline waits on, as the execution input carries it (`pipeline_callback`)."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(pattern=CALLBACK_TOKEN_PATTERN, description="the CallbackStep's token")]
    pipeline_execution_arn: Annotated[
        str | None, Field(max_length=PIPELINE_EXECUTION_ARN_MAX, pattern=PIPELINE_EXECUTION_ARN_PATTERN)
    ] = None
    fail_step_on_reject: bool | None = Field(
        default=None,
        description="fail the step on reject, inconclusive or skipped instead of answering the decision; "
        "the deployment's fail_step_on_reject when not given",
    )


def callback_of(execution_input: Any) -> PipelineCallback | None:
    """The callback an execution's raw input names, or None (no callback, or one whose token cannot be
    answered). Read leniently: the input may be the very input its validation refused."""
    if not isinstance(execution_input, dict):
        return None
    raw = execution_input.get("pipeline_callback")
    if not isinstance(raw, dict):
        return None
    try:
        return PipelineCallback.model_validate(
            {k: raw[k] for k in ("token", "pipeline_execution_arn") if k in raw}
            | {"fail_step_on_reject": raw.get("fail_step_on_reject") is True}
        )
    except ValidationError:
        return None


class WaitingToken(BaseModel):
    """A callback token left on a decision item, answered when the decision completes (or fails)."""

    model_config = ConfigDict(extra="ignore")

    token: str
    pipeline_execution_arn: str | None = None
    fail_step_on_reject: bool = False
    by: str | None = Field(default=None, description="the execution that left it")

    @classmethod
    def of(cls, callback: PipelineCallback, execution_arn: str) -> WaitingToken:
        return cls(
            token=callback.token,
            pipeline_execution_arn=callback.pipeline_execution_arn,
            fail_step_on_reject=bool(callback.fail_step_on_reject),
            by=execution_arn,
        )

    def entry(self) -> str:
        """As the decision item stores it: one string of a string set (DynamoDB ADD is atomic on a set)."""
        return json.dumps(self.model_dump(exclude_none=True), sort_keys=True, separators=(",", ":"))


class AnsweredToken(BaseModel):
    """A token the gate answered, or that SageMaker said no longer waits (`refused`)."""

    model_config = ConfigDict(extra="ignore")

    token: str
    answer: Literal["success", "failure", "refused"]
    by: str | None = None
    at: str | None = None
    detail: str | None = None

    def entry(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), sort_keys=True, separators=(",", ":"))


class AnswerIntent(BaseModel):
    """The one answer a token left on a decision item gets, written on the item (first writer wins) before
    it is sent: whoever sends it later (a retry, the operations alert, an execution that took the decision
    over) sends this very request, so no crash between the send and its record can make a second, different
    answer. A success's outputs are the complete decision's, which never changes: only its token is kept."""

    model_config = ConfigDict(extra="ignore")

    token: str
    success: bool
    client_request_token: str
    failure_reason: str | None = None
    by: str | None = None

    @classmethod
    def of(cls, answer: PipelineAnswer, by: str) -> AnswerIntent:
        return cls(
            token=answer.token,
            success=answer.success,
            client_request_token=answer.client_request_token,
            failure_reason=None if answer.success else answer.failure_reason,
            by=by,
        )

    def entry(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), sort_keys=True, separators=(",", ":"))

    def answer(self, decision: DecisionForPipeline | None) -> PipelineAnswer:
        if not self.success:
            return PipelineAnswer(
                token=self.token,
                success=False,
                failure_reason=self.failure_reason or "",
                client_request_token=self.client_request_token,
            )
        if decision is None:
            raise ValueError(f"the success intended for token {self.token} needs the complete decision")
        return PipelineAnswer(
            token=self.token,
            success=True,
            outputs=decision_outputs(decision),
            client_request_token=self.client_request_token,
        )


def parse_entries(entries: list[str], model: type[WaitingToken] | type[AnsweredToken]) -> list[Any]:
    """The entries of a stored set, first of each token only (a token left twice is answered once)."""
    seen: dict[str, Any] = {}
    for entry in sorted(entries):
        try:
            parsed = model.model_validate_json(entry)
        except ValidationError:
            continue
        seen.setdefault(parsed.token, parsed)
    return list(seen.values())


class PipelineAnswer(BaseModel):
    """One SendPipelineExecutionStepSuccess or SendPipelineExecutionStepFailure request."""

    token: Annotated[str, Field(pattern=CALLBACK_TOKEN_PATTERN)]
    success: bool
    outputs: dict[str, str] = {}
    failure_reason: str | None = None
    client_request_token: Annotated[
        str, Field(min_length=CLIENT_REQUEST_TOKEN_MIN, max_length=CLIENT_REQUEST_TOKEN_MAX)
    ]

    def request(self) -> dict[str, Any]:
        if self.success:
            return {
                "CallbackToken": self.token,
                "OutputParameters": [{"Name": name, "Value": value} for name, value in self.outputs.items()],
                "ClientRequestToken": self.client_request_token,
            }
        return {
            "CallbackToken": self.token,
            "FailureReason": self.failure_reason or "",
            "ClientRequestToken": self.client_request_token,
        }


class DecisionForPipeline(BaseModel):
    """What a recorded decision tells a pipeline: the decision item's fields."""

    decision_id: str = Field(description="<decision key>|<policy sha256>: the decision, whoever carried it out")
    outcome: str
    reasons: str = ""
    reason_codes: str = ""
    report_uri: str = ""
    model_package_arn: str = ""


def decision_outputs(decision: DecisionForPipeline) -> dict[str, str]:
    values = {
        "decision": decision.outcome,
        "model_package_arn": decision.model_package_arn,
        "report_uri": decision.report_uri,
        "reason_codes": decision.reason_codes,
    }
    return {name: fit(values[name], OUTPUT_VALUE_MAX) for name in OUTPUT_NAMES}


def answer_decision(decision: DecisionForPipeline, waiting: WaitingToken) -> PipelineAnswer:
    """A pass succeeds with the package; reject, inconclusive and skipped succeed with the decision so a
    ConditionStep can branch on it, or fail the step when the callback asked for it; a job that failed (no
    model to branch on) and any unknown outcome fail the step."""
    crt = client_request_token(decision.decision_id, waiting.token)
    branchable = decision.outcome in BRANCHABLE and not waiting.fail_step_on_reject
    if decision.outcome == "pass" or branchable:
        return PipelineAnswer(
            token=waiting.token, success=True, outputs=decision_outputs(decision), client_request_token=crt
        )
    label = "training job failed" if decision.outcome == "training_failed" else decision.outcome
    reason = f"{label}: {decision.reasons or 'see ' + (decision.report_uri or 'the decision table')}"
    return PipelineAnswer(
        token=waiting.token, success=False, failure_reason=fit(reason, FAILURE_REASON_MAX), client_request_token=crt
    )


# A timeout or an abort carries no cause (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
WITHOUT_CAUSE = {
    "Aborted": "the gate's execution was stopped before it decided",
    "States.Timeout": "the gate's execution timed out before it decided",
}


def answer_failure(token: str, execution_arn: str, error: str, cause: str | None) -> PipelineAnswer:
    """The gate could not decide: the step fails. The request depends only on the execution, its error and
    its cause, so the workflow's own failure path and the operations alert send the very same one."""
    name = execution_arn.rsplit(":", 1)[-1]
    said = " ".join((cause or WITHOUT_CAUSE.get(error, "no cause given")).split())
    # The cause first: a reason cut at 256 characters loses the execution's name, not why.
    reason = f"training-gate {error}: {said} (execution {name})"
    return PipelineAnswer(
        token=token,
        success=False,
        failure_reason=fit(reason, FAILURE_REASON_MAX),
        client_request_token=client_request_token(execution_arn, token, "failure", error),
    )


def answer_stopping(token: str, pipeline_execution_arn: str | None) -> PipelineAnswer:
    """A pipeline execution being stopped waits for its token to be answered; the gate answers at once.
    Whatever decision the gate is making goes on and is recorded; its later answer to this token is refused
    by SageMaker, and recorded as such."""
    reason = "the pipeline execution is stopping: training-gate answered at once; a decision it was making goes on"
    return PipelineAnswer(
        token=token,
        success=False,
        failure_reason=fit(reason, FAILURE_REASON_MAX),
        client_request_token=client_request_token(pipeline_execution_arn or "", token, STOPPING),
    )


# -- the queue's message ----------------------------------------------------------------------------


class CallbackMessage(BaseModel):
    """The body of the message a CallbackStep puts on the queue."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    token: Annotated[str, Field(pattern=CALLBACK_TOKEN_PATTERN)]
    pipeline_execution_arn: Annotated[
        str | None, Field(alias="pipelineExecutionArn", max_length=PIPELINE_EXECUTION_ARN_MAX)
    ] = None
    arguments: dict[str, Any] = {}
    status: str | None = None

    @property
    def stopping(self) -> bool:
        return (self.status or "").lower() == STOPPING


def parse_message(body: str) -> CallbackMessage:
    try:
        raw = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise CallbackMessageError(f"the message body is not JSON: {str(body)[:200]!r}") from exc
    if not isinstance(raw, dict):
        raise CallbackMessageError(f"the message body is JSON but not an object: {type(raw).__name__}")
    # The stop message's field is documented as both "Status" and "status".
    if "status" not in raw and "Status" in raw:
        raw["status"] = raw["Status"]
    if raw.get("arguments") is None:
        raw["arguments"] = {}
    try:
        return CallbackMessage.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CallbackMessageError(f"not a CallbackStep message the gate can answer: {problems}") from exc


def _argument(name: str, value: Any) -> Any:
    """A pipeline renders its properties and parameters as strings: "true" and "3" mean what they say."""
    if name in ARGUMENT_BOOLEANS and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if name in ARGUMENT_INTEGERS and isinstance(value, str) and re.fullmatch(r"\s*\d{1,6}\s*", value):
        return int(value)
    return value


def execution_input(message: CallbackMessage) -> dict[str, Any]:
    """The gate's execution input for a CallbackStep's message: its arguments (validated by the workflow's
    first step, which names what it refuses) and the callback to answer."""
    arguments = {name: _argument(name, value) for name, value in message.arguments.items()}
    callback: dict[str, Any] = {"token": message.token}
    if message.pipeline_execution_arn:
        callback["pipeline_execution_arn"] = message.pipeline_execution_arn
    if "fail_step_on_reject" in arguments:
        callback["fail_step_on_reject"] = arguments.pop("fail_step_on_reject")
    return {**arguments, "pipeline_callback": callback}


def execution_name(body: str, message: CallbackMessage) -> str:
    """A name that is a pure function of the message: a second delivery of it starts no second execution
    (StartExecution with the name and input of an execution returns it while it runs, and is refused with
    ExecutionAlreadyExists once it ended, for 90 days:
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html)."""
    return f"pipeline-{message.token}-{hashlib.sha256(body.encode()).hexdigest()[:20]}"


def now() -> str:
    return datetime.now(UTC).isoformat()
