"""NotifyOwners' use case: send a decision's stored message exactly when this execution owns the
unfinished decision, then complete it. The message goes to the owners, or, for a skipped decision (no
scikit-learn model: nothing to retrain), to operations; either way it is the decision's last side effect,
so an execution stopped before it leaves an unfinished decision the next execution takes over and tells.

The ownership check is made where the message is sent, not one state earlier: Step Functions
redrives a failed or stopped execution from the step that did not succeed, with the same input
(https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html), so a redrive after
another execution took the decision over re-enters this step directly. A conditional write that
names this execution the sender (owner = me, not complete) comes right before the publish and the
publish depends on it; SNS accepting the message is recorded (`notified_by`) before completion, so a
retry of the same execution does not send it again. What remains is the README's documented window:
a crash between SNS accepting the message and the decision's completion lets the execution that
takes the decision over tell the owners again (at least once, never zero times)."""

from __future__ import annotations

from dataclasses import dataclass

from training_gate.dal.clients import ClientError, error_code, error_message
from training_gate.dal.dynamodb import DecisionLog, NotOwner
from training_gate.dal.sns import Topic
from training_gate.domain.contract import Notified, NotifyRequest
from training_gate.domain.decision_record import DecisionItem
from training_gate.domain.policy import Outcome
from training_gate.logic.finish import record_superseded

# SNS errors a later attempt may get past (throttling of SNS or of the topic's KMS key, SNS's own
# internal error); every other error needs a person (a disabled key, a deleted topic, a policy).
# https://docs.aws.amazon.com/sns/latest/api/API_Publish.html (Errors)
RETRYABLE = {"Throttled", "Throttling", "ThrottlingException", "KMSThrottling", "InternalError"}


class NotificationFailed(Exception):
    """SNS refused the owners' message: a person must fix the topic or its key, then re-run."""


class NotificationThrottled(Exception):
    """SNS or its key was throttled or failed internally, after the client's own retries."""


@dataclass
class NotifyPorts:
    log: DecisionLog
    topic: Topic
    operations: Topic

    def topic_for(self, item: DecisionItem) -> Topic:
        """A skipped decision is operations' to hear of; every other one the owners'."""
        return self.operations if item.outcome == Outcome.SKIPPED else self.topic


def completion_of(item: DecisionItem) -> str:
    # The item's `completion` says which message completed it (a public contract of the table).
    return "skipped" if item.outcome == Outcome.SKIPPED else "notified"


def message_attributes(item: DecisionItem) -> dict[str, str | list[str]]:
    """`decision` for every message; a model decision's group and reason codes too (subscription filters)."""
    attributes: dict[str, str | list[str]] = {"decision": item.outcome or ""}
    if item.outcome in {o.value for o in Outcome}:
        attributes["model_package_group"] = item.model_package_group or ""
        attributes["reason_codes"] = list(dict.fromkeys(c for c in (item.reason_codes or "").split(",") if c))
    if item.tuning_job_name:
        attributes["tuning_job_name"] = item.tuning_job_name
    return attributes


def notify_owners(request: NotifyRequest, ports: NotifyPorts) -> Notified:
    key, sha, me = request.decision_key, request.policy_sha256, request.execution_arn
    item = ports.log.get(key, sha)
    if item is None or item.owner != me:
        record_superseded(ports.log, key, sha, me, item)
        return Notified(completion="superseded")
    if item.notified_by == me or item.complete:
        # SNS accepted this execution's message already (a retry after a lost response): not told twice.
        if not item.complete:
            item = ports.log.complete(key, sha, me, completion_of(item))
        return Notified(
            completion="notified",
            message_id=item.notification_message_id,
            answers_due=len(item.unanswered()),
        )
    try:
        ports.log.begin_notification(key, sha, me)
    except NotOwner:
        record_superseded(ports.log, key, sha, me, ports.log.get(key, sha))
        return Notified(completion="superseded")
    topic = ports.topic_for(item)
    try:
        message_id = topic.publish(
            item.notification_subject or f"training-gate: {key}",
            item.notification_message or item.reasons or "",
            message_attributes(item),
        )
    except ClientError as exc:
        code = error_code(exc)
        audience = "operations'" if topic is ports.operations else "owners'"
        text = f"the {audience} topic refused the message ({code}): {error_message(exc)}"
        if code in RETRYABLE:
            raise NotificationThrottled(text) from exc
        raise NotificationFailed(text) from exc
    try:
        ports.log.mark_notified(key, sha, me, message_id)
        # The completed item holds every pipeline token that will ever wait on this decision.
        completed = ports.log.complete(key, sha, me, completion_of(item))
    except NotOwner:
        record_superseded(ports.log, key, sha, me, ports.log.get(key, sha))
        return Notified(completion="superseded", message_id=message_id, sent=True)
    return Notified(completion="notified", message_id=message_id, sent=True, answers_due=len(completed.unanswered()))
