"""The decision table: one item per (training job, effective policy); its conditional writes make
the gate decide, register and notify once per job and policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from training_gate.dal.clients import ClientError, client, error_code
from training_gate.domain.decision_record import ENDING_CAUSE_MAX, DecisionItem, Ending, ItemStatus


class NotOwner(Exception):
    """Another execution took this decision over: this one must make no further side effect."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _to_attribute(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {str(k): _to_attribute(v) for k, v in value.items()}}
    if isinstance(value, (list, set, tuple)):
        return {"SS": sorted(value)}
    return {"S": str(value)}


def _from_attribute(value: dict[str, Any]) -> Any:
    if "S" in value:
        return value["S"]
    if "N" in value:
        number = value["N"]
        return float(number) if any(c in number for c in ".eE") else int(number)
    if "SS" in value:
        return sorted(value["SS"])
    if "BOOL" in value:
        return value["BOOL"]
    if "M" in value:
        return {k: _from_attribute(v) for k, v in value["M"].items()}
    if "L" in value:
        return [_from_attribute(v) for v in value["L"]]
    return None


def _item(attributes: dict[str, Any]) -> DecisionItem:
    return DecisionItem.model_validate({k: _from_attribute(v) for k, v in attributes.items()})


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


class DecisionLog:
    def __init__(self, table_name: str, dynamodb: Any | None = None):
        self._dynamodb = dynamodb or client("dynamodb")
        self._table = table_name

    @staticmethod
    def _key(training_job_name: str, policy_sha256: str) -> dict[str, Any]:
        return {"training_job": {"S": training_job_name}, "policy_sha256": {"S": policy_sha256}}

    def get(self, training_job_name: str, policy_sha256: str) -> DecisionItem | None:
        found = self._dynamodb.get_item(
            TableName=self._table, Key=self._key(training_job_name, policy_sha256), ConsistentRead=True
        ).get("Item")
        if not found:
            return None
        return _item(found)

    def create(self, item: DecisionItem) -> bool:
        """Write a new item; False when one exists already (another delivery got there first)."""
        attributes = item.model_dump(
            exclude_none=True,
            exclude={"duplicates", "duplicate_executions", "takeovers", "endings", "answers", "answering"},
        )
        if not attributes.get("waiting"):
            attributes.pop("waiting", None)  # DynamoDB refuses an empty set
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={k: _to_attribute(v) for k, v in attributes.items()},
                ConditionExpression="attribute_not_exists(training_job)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def take_over(
        self,
        item: DecisionItem,
        new_owner: str,
        replace: dict[str, str] | None = None,
        waiting: str | None = None,
    ) -> bool:
        """Make `new_owner` the owner of an unfinished item, as long as nobody else did first;
        `replace` rewrites the decision's attributes (a legacy item, decided anew); `waiting` is the
        taker-over's own pipeline token, left on the item in the same write."""
        sets = {"owner": new_owner, **(replace or {})}
        names = {f"#{k}": k for k in sets} | {"#status": "status", "#owner": "owner"}
        values = {f":{k}": {"S": v} for k, v in sets.items()} | {":taker": {"SS": [new_owner]}}
        adds = "takeovers :taker"
        if waiting is not None:
            adds += ", waiting :waiting"
            values[":waiting"] = {"SS": [waiting]}
        if item.owner:
            condition = "#owner = :previous AND #status <> :complete"
            values[":previous"] = {"S": item.owner}
            values[":complete"] = {"S": ItemStatus.COMPLETE.value}
        else:
            condition = "attribute_not_exists(#owner) AND #status = :seen_status"
            values[":seen_status"] = {"S": item.status}
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(item.training_job, item.policy_sha256),
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in sets) + f" ADD {adds}",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def add_duplicate(self, training_job_name: str, policy_sha256: str, execution_arn: str) -> None:
        try:
            self._add_duplicate(training_job_name, policy_sha256, execution_arn)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _add_duplicate(self, training_job_name: str, policy_sha256: str, execution_arn: str) -> None:
        self._dynamodb.update_item(
            TableName=self._table,
            Key=self._key(training_job_name, policy_sha256),
            UpdateExpression="ADD duplicates :one, duplicate_executions :execution",
            # Never a stub item without a decision, should the item vanish between the read and this write.
            ConditionExpression="attribute_exists(training_job)",
            ExpressionAttributeValues={":one": {"N": "1"}, ":execution": {"SS": [execution_arn]}},
        )

    def _owned_update(
        self, training_job_name: str, policy_sha256: str, owner: str, attributes: dict[str, str]
    ) -> DecisionItem:
        """The update, only while `owner` owns the item; the item as the write left it."""
        names = {f"#{k}": k for k in attributes} | {"#owner": "owner"}
        values = {f":{k}": {"S": v} for k, v in attributes.items()} | {":owner": {"S": owner}}
        try:
            written = self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(training_job_name, policy_sha256),
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in attributes),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotOwner(
                    f"execution {owner} no longer owns the decision on {training_job_name}: another execution took "
                    "it over"
                ) from exc
            raise
        return _item(written["Attributes"])

    def store_request(self, training_job_name: str, policy_sha256: str, owner: str, request: str) -> None:
        """The exact CreateModelPackage request, stored before it is sent: a taker-over resends it."""
        self._owned_update(training_job_name, policy_sha256, owner, {"registration_request": request})

    def mark_event_published(self, training_job_name: str, policy_sha256: str, owner: str) -> None:
        self._owned_update(training_job_name, policy_sha256, owner, {"event_published": _now()})

    def record_package(self, training_job_name: str, policy_sha256: str, owner: str, model_package_arn: str) -> None:
        """The package exists: written before anything else happens, so it is never forgotten."""
        self._owned_update(
            training_job_name,
            policy_sha256,
            owner,
            {"status": ItemStatus.REGISTERED.value, "model_package_arn": model_package_arn},
        )

    def complete(self, training_job_name: str, policy_sha256: str, owner: str, completion: str) -> DecisionItem:
        """The decision is done. The item it returns holds every pipeline token that will ever be left on it:
        a token is added only while the item is not complete (`add_waiting`), and this write is atomic with
        that condition, so the completing execution knows every token it must answer."""
        return self._owned_update(
            training_job_name,
            policy_sha256,
            owner,
            {"status": ItemStatus.COMPLETE.value, "completion": completion, "completed_at": _now()},
        )

    def add_waiting(self, training_job_name: str, policy_sha256: str, owner: str, entry: str) -> bool:
        """Leave a pipeline's token with the decision `owner` carries out, only while it is not complete
        and `owner` has not given it up. False when that no longer holds: the caller reads the item
        again (complete: it answers the token itself; given up: it takes the decision over)."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(training_job_name, policy_sha256),
                UpdateExpression="ADD waiting :entry",
                ConditionExpression=(
                    "#owner = :owner AND #status <> :complete "
                    "AND (attribute_not_exists(closed_by) OR closed_by <> #owner)"
                ),
                ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
                ExpressionAttributeValues={
                    ":entry": {"SS": [entry]},
                    ":owner": {"S": owner},
                    ":complete": {"S": ItemStatus.COMPLETE.value},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def close(self, training_job_name: str, policy_sha256: str, owner: str) -> DecisionItem | None:
        """`owner` fails and gives the unfinished decision up: from this write on no token is left with it
        (and another execution may take the decision over at once). Returns the item as closed, holding
        every token left with `owner`; None when `owner` no longer holds an unfinished decision."""
        try:
            written = self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(training_job_name, policy_sha256),
                UpdateExpression="SET closed_by = :owner, closed_at = :now",
                ConditionExpression="#owner = :owner AND #status <> :complete",
                ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":now": {"S": _now()},
                    ":complete": {"S": ItemStatus.COMPLETE.value},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return _item(written["Attributes"])

    def intend_answer(self, training_job_name: str, policy_sha256: str, token: str, entry: str) -> str | None:
        """Write the answer `token` gets (`answering.<token>`) unless one is written already; the entry that
        stands (this one, or the first writer's), or None when there is no item. A conditional write is
        checked and applied atomically
        (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html)."""
        key = self._key(training_job_name, policy_sha256)
        for _ in range(3):
            try:
                self._dynamodb.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET #answering.#token = :entry",
                    ConditionExpression=(
                        "attribute_exists(training_job) AND attribute_exists(#answering) "
                        "AND attribute_not_exists(#answering.#token)"
                    ),
                    ExpressionAttributeNames={"#answering": "answering", "#token": token},
                    ExpressionAttributeValues={":entry": {"S": entry}},
                )
                return entry
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
            # No map yet (DynamoDB cannot set a path inside a missing map): create it with this entry.
            try:
                self._dynamodb.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET #answering = :map",
                    ConditionExpression="attribute_exists(training_job) AND attribute_not_exists(#answering)",
                    ExpressionAttributeNames={"#answering": "answering"},
                    ExpressionAttributeValues={":map": {"M": {token: {"S": entry}}}},
                )
                return entry
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
            item = self.get(training_job_name, policy_sha256)
            if item is None:
                return None
            if token in item.answering:
                return item.answering[token]
        raise RuntimeError(f"the answer to token {token} on {training_job_name} could not be written; retried")

    def record_answers(self, training_job_name: str, policy_sha256: str, entries: list[str]) -> None:
        """Which tokens were answered, and how (never a stub item should the item have vanished)."""
        if not entries:
            return
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(training_job_name, policy_sha256),
                UpdateExpression="ADD answers :entries",
                ConditionExpression="attribute_exists(training_job)",
                ExpressionAttributeValues={":entries": {"SS": sorted(set(entries))}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def begin_notification(self, training_job_name: str, policy_sha256: str, owner: str) -> None:
        """Written right before the owners' message is sent, and only while `owner` owns an unfinished
        decision: the message depends on this write, so an execution that lost the decision (a
        redrive after a take-over) sends nothing, even when it resumes at the publishing step. A
        conditional write is checked and applied atomically, or refused with
        ConditionalCheckFailedException (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html)."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(training_job_name, policy_sha256),
                UpdateExpression="SET notifying = :owner, notifying_at = :now",
                ConditionExpression="#owner = :owner AND #status <> :complete",
                ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":now": {"S": _now()},
                    ":complete": {"S": ItemStatus.COMPLETE.value},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotOwner(
                    f"execution {owner} does not own an unfinished decision on {training_job_name}: it sends nothing"
                ) from exc
            raise

    def mark_notified(self, training_job_name: str, policy_sha256: str, owner: str, message_id: str) -> None:
        """SNS accepted the owners' message: no execution sends it again."""
        self._owned_update(
            training_job_name,
            policy_sha256,
            owner,
            {"notified_by": owner, "notification_message_id": message_id, "notified_at": _now()},
        )

    def record_ending(
        self,
        training_job_name: str,
        policy_sha256: str,
        execution_arn: str,
        ending: str,
        error: str | None = None,
        cause: str | None = None,
    ) -> bool:
        """How `execution_arn` ended, in the item's `endings` map under the execution's name (written
        again by a redrive of the same execution, never a second entry). False when there is no item."""
        entry = Ending(
            execution_arn=execution_arn,
            ending=ending,
            error=error,
            cause=(cause or "")[:ENDING_CAUSE_MAX] or None,
            at=_now(),
        ).model_dump(exclude_none=True)
        key = self._key(training_job_name, policy_sha256)
        names = {"#endings": "endings", "#name": execution_name(execution_arn)}
        for _ in range(3):
            try:
                self._dynamodb.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET #endings.#name = :entry",
                    ConditionExpression="attribute_exists(training_job) AND attribute_exists(#endings)",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":entry": _to_attribute(entry)},
                )
                return True
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
            # No map yet (DynamoDB cannot set a path inside a missing map): create it with this entry.
            try:
                self._dynamodb.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET #endings = :map",
                    ConditionExpression="attribute_exists(training_job) AND attribute_not_exists(#endings)",
                    ExpressionAttributeNames={"#endings": "endings"},
                    ExpressionAttributeValues={":map": _to_attribute({execution_name(execution_arn): entry})},
                )
                return True
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
            if self.get(training_job_name, policy_sha256) is None:
                return False
        return False

    def decisions(self, training_job_name: str) -> list[DecisionItem]:
        """Every item of one key (each policy's decision, and a failed job's notice)."""
        return [DecisionItem.model_validate(found) for found in self.history(training_job_name)]

    def history(self, training_job_name: str) -> list[dict[str, Any]]:
        """Every decision about one job (the audit log), newest policies included."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "training_job = :job",
            "ExpressionAttributeValues": {":job": {"S": training_job_name}},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = self._dynamodb.query(**kwargs)
            items += page.get("Items", [])
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [{k: _from_attribute(v) for k, v in item.items()} for item in items]
