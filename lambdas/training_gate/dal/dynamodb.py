"""The decision table: one item per (training job, effective policy); its conditional writes make
the gate decide, register and notify once per job and policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from training_gate.dal.clients import ClientError, client, error_code
from training_gate.domain.decision_record import DecisionItem, ItemStatus


class NotOwner(Exception):
    """Another execution took this decision over: this one must make no further side effect."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _to_attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, (list, set, tuple)):
        return {"SS": sorted(value)}
    return {"S": str(value)}


def _from_attribute(value: dict[str, Any]) -> Any:
    if "S" in value:
        return value["S"]
    if "N" in value:
        return int(value["N"])
    if "SS" in value:
        return sorted(value["SS"])
    if "BOOL" in value:
        return value["BOOL"]
    return None


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
        return DecisionItem.model_validate({k: _from_attribute(v) for k, v in found.items()})

    def create(self, item: DecisionItem) -> bool:
        """Write a new item; False when one exists already (another delivery got there first)."""
        attributes = item.model_dump(exclude_none=True, exclude={"duplicates", "duplicate_executions", "takeovers"})
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

    def take_over(self, item: DecisionItem, new_owner: str, replace: dict[str, str] | None = None) -> bool:
        """Make `new_owner` the owner of an unfinished item, as long as nobody else did first;
        `replace` rewrites the decision's attributes (a legacy item, decided anew)."""
        sets = {"owner": new_owner, **(replace or {})}
        names = {f"#{k}": k for k in sets} | {"#status": "status", "#owner": "owner"}
        values = {f":{k}": {"S": v} for k, v in sets.items()} | {":taker": {"SS": [new_owner]}}
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
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in sets) + " ADD takeovers :taker",
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

    def _owned_update(self, training_job_name: str, policy_sha256: str, owner: str, attributes: dict[str, str]) -> None:
        names = {f"#{k}": k for k in attributes} | {"#owner": "owner"}
        values = {f":{k}": {"S": v} for k, v in attributes.items()} | {":owner": {"S": owner}}
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=self._key(training_job_name, policy_sha256),
                UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in attributes),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotOwner(
                    f"execution {owner} no longer owns the decision on {training_job_name}: another execution took "
                    "it over"
                ) from exc
            raise

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

    def complete(self, training_job_name: str, policy_sha256: str, owner: str, completion: str) -> None:
        self._owned_update(
            training_job_name,
            policy_sha256,
            owner,
            {"status": ItemStatus.COMPLETE.value, "completion": completion, "completed_at": _now()},
        )

    def history(self, training_job_name: str) -> list[dict[str, Any]]:
        """Every decision about one job (the audit log), newest policies included."""
        items = self._dynamodb.query(
            TableName=self._table,
            KeyConditionExpression="training_job = :job",
            ExpressionAttributeValues={":job": {"S": training_job_name}},
        ).get("Items", [])
        return [{k: _from_attribute(v) for k, v in item.items()} for item in items]
