"""In-memory fakes of the AWS-access layer's ports, with the semantics the use cases rely on
(conditional writes, ownership, ClientToken idempotency). The real adapters are tested on moto."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from training_gate.dal.dynamodb import NotOwner
from training_gate.domain.decision_record import DecisionItem, Ending, ItemStatus


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_json(self, bucket: str, key: str, document: Any) -> tuple[str, str]:
        import hashlib

        body = json.dumps(document, sort_keys=True).encode()
        self.objects[f"s3://{bucket}/{key}"] = body
        return f"s3://{bucket}/{key}", hashlib.sha256(body).hexdigest()

    def put_text(self, bucket: str, key: str, text: str, content_type: str = "text/markdown") -> str:
        self.objects[f"s3://{bucket}/{key}"] = text.encode()
        return f"s3://{bucket}/{key}"

    def get_json(self, uri: str) -> Any:
        return json.loads(self.objects[uri])


class FakeLog:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], DecisionItem] = {}
        self.writes: list[str] = []

    def get(self, job: str, sha: str) -> DecisionItem | None:
        item = self.items.get((job, sha))
        return item.model_copy(deep=True) if item else None

    def create(self, item: DecisionItem) -> bool:
        key = (item.training_job, item.policy_sha256)
        if key in self.items:
            return False
        self.items[key] = item.model_copy(deep=True)
        self.writes.append("create")
        return True

    def take_over(
        self, item: DecisionItem, new_owner: str, replace: dict[str, str] | None = None, waiting: str | None = None
    ) -> bool:
        stored = self.items[(item.training_job, item.policy_sha256)]
        if stored.owner != item.owner or stored.complete:
            return False
        update: dict[str, Any] = {"owner": new_owner, "takeovers": [*stored.takeovers, new_owner], **(replace or {})}
        if waiting is not None:
            update["waiting"] = sorted({*stored.waiting, waiting})
        self.items[(item.training_job, item.policy_sha256)] = stored.model_copy(update=update)
        self.writes.append("take_over")
        return True

    def add_waiting(self, job: str, sha: str, owner: str, entry: str) -> bool:
        stored = self.items.get((job, sha))
        if stored is None or stored.owner != owner or stored.complete or stored.closed:
            return False
        stored.waiting = sorted({*stored.waiting, entry})
        self.writes.append("waiting")
        return True

    def close(self, job: str, sha: str, owner: str) -> DecisionItem | None:
        stored = self.items.get((job, sha))
        if stored is None or stored.owner != owner or stored.complete:
            return None
        stored.closed_by = owner
        self.writes.append("close")
        return stored.model_copy(deep=True)

    def record_answers(self, job: str, sha: str, entries: list[str]) -> None:
        stored = self.items.get((job, sha))
        if stored is not None and entries:
            stored.answers = sorted({*stored.answers, *entries})
            self.writes.append("answers")

    def intend_answer(self, job: str, sha: str, token: str, entry: str) -> str | None:
        stored = self.items.get((job, sha))
        if stored is None:
            return None
        if token not in stored.answering:
            stored.answering = {**stored.answering, token: entry}
            self.writes.append("answering")
        return stored.answering[token]

    def add_duplicate(self, job: str, sha: str, execution_arn: str) -> None:
        stored = self.items[(job, sha)]
        stored.duplicates += 1
        stored.duplicate_executions.append(execution_arn)

    def _owned(self, job: str, sha: str, owner: str, **changes: Any) -> DecisionItem:
        stored = self.items[(job, sha)]
        if stored.owner != owner:
            raise NotOwner(f"{owner} is not the owner")
        self.items[(job, sha)] = stored.model_copy(update=changes)
        self.writes.append(",".join(sorted(changes)))
        return self.items[(job, sha)].model_copy(deep=True)

    def store_request(self, job: str, sha: str, owner: str, request: str) -> None:
        self._owned(job, sha, owner, registration_request=request)

    def record_package(self, job: str, sha: str, owner: str, arn: str) -> None:
        self._owned(job, sha, owner, status=ItemStatus.REGISTERED, model_package_arn=arn)

    def mark_event_published(self, job: str, sha: str, owner: str) -> None:
        self._owned(job, sha, owner, event_published="now")

    def complete(self, job: str, sha: str, owner: str, completion: str) -> DecisionItem:
        return self._owned(job, sha, owner, status=ItemStatus.COMPLETE, completion=completion)

    def begin_notification(self, job: str, sha: str, owner: str) -> None:
        stored = self.items.get((job, sha))
        if stored is None or stored.owner != owner or stored.complete:
            raise NotOwner(f"{owner} does not own an unfinished decision")
        self._owned(job, sha, owner, notifying=owner)

    def mark_notified(self, job: str, sha: str, owner: str, message_id: str) -> None:
        self._owned(job, sha, owner, notified_by=owner, notification_message_id=message_id)

    def record_ending(
        self,
        job: str,
        sha: str,
        execution_arn: str,
        ending: str,
        error: str | None = None,
        cause: str | None = None,
    ) -> bool:
        stored = self.items.get((job, sha))
        if stored is None:
            return False
        name = execution_arn.rsplit(":", 1)[-1]
        stored.endings[name] = Ending(execution_arn=execution_arn, ending=ending, error=error, cause=cause)
        self.writes.append(f"ending:{ending}")
        return True

    def decisions(self, job: str) -> list[DecisionItem]:
        return [item.model_copy(deep=True) for (key, _), item in self.items.items() if key == job]


@dataclass
class FakeRegistry:
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    approvals: dict[str, str] = field(default_factory=dict)
    fail_create: Exception | None = None

    def latest_approved(self, group: str) -> tuple[str, dict[str, str]] | None:
        return None

    def ensure_group(self, group: str, description: str, tags: list[dict[str, str]]) -> bool:
        return True

    def create_package(self, request: dict[str, Any]) -> str:
        if self.fail_create is not None:
            raise self.fail_create
        token = request.get("ClientToken", "")
        if token in self.tokens:
            return self.tokens[token]
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{request['ModelPackageGroupName']}/"
        arn += str(len(self.packages) + 1)
        self.packages[arn] = request
        if token:
            self.tokens[token] = arn
        return arn

    def find_package(self, group: str, identity: dict[str, str], newest: int = 100) -> str | None:
        for arn, request in self.packages.items():
            metadata = request.get("CustomerMetadataProperties", {})
            if all(metadata.get(k) == v for k, v in identity.items()):
                return arn
        return None

    def set_approval(self, arn: str, status: str, description: str) -> None:
        self.approvals[arn] = status


@dataclass
class FakeJobs:
    job_tags: dict[str, str] = field(default_factory=dict)

    def tags(self, training_job_arn: str) -> dict[str, str]:
        return self.job_tags


@dataclass
class FakeExecutions:
    running: set[str] = field(default_factory=set)

    def is_running(self, execution_arn: str) -> bool:
        return execution_arn in self.running


@dataclass
class FakeEvents:
    published: list[dict[str, Any]] = field(default_factory=list)
    refuse: bool = False

    def publish(self, detail: dict[str, Any], resources: list[str]) -> None:
        from training_gate.dal.events import DecisionEventRefused

        if self.refuse:
            raise DecisionEventRefused("refused")
        self.published.append(detail)


@dataclass
class FakeCallbacks:
    """SendPipelineExecutionStep*: each token answered once; the same ClientRequestToken and request again is
    a replay (answered as before), anything else for an answered token is refused, as the emulation does."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: Exception | None = None

    def send(self, request: dict[str, Any], success: bool) -> str:
        from training_gate.dal.sagemaker import CallbackNotWaiting

        if self.fail_with is not None:
            raise self.fail_with
        call = {"success": success, **request}
        self.sent.append(call)
        token = request["CallbackToken"]
        first = self.answered.get(token)
        if first is not None and first != call:
            raise CallbackNotWaiting(f"token {token} was answered already")
        self.answered[token] = call
        return "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x"
