"""Thin adapters over boto3 clients, each taking its client so tests can pass their own."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# Standard mode retries throttling with exponential backoff and jitter on every client we create.
_RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})
_HOST_IN_STREAM = re.compile(r"/(?P<host>algo-\d+)(?:-\d+)?$")


class ArtifactNotFound(Exception):
    """The artifact is not there, or the gate is not allowed to read it."""


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_RETRY_CONFIG)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


class ArtifactStore:
    def __init__(self, s3: Any | None = None):
        self._s3 = s3 or client("s3")

    def open(self, uri: str) -> BinaryIO:
        bucket, key = parse_s3_uri(uri)
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
                raise ArtifactNotFound(f"artifact not found at {uri}") from exc
            if code in ("AccessDenied", "403"):
                raise ArtifactNotFound(f"access denied reading {uri}: the gate may not read this bucket") from exc
            raise

    def list_prefix(self, uri: str) -> list[tuple[str, int]]:
        """(key relative to the prefix, size) of every object under an s3:// prefix."""
        bucket, prefix = parse_s3_uri(uri if uri.endswith("/") else uri + "/")
        objects: list[tuple[str, int]] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                objects += [
                    (o["Key"][len(prefix) :], o["Size"]) for o in page.get("Contents", []) if o["Key"] != prefix
                ]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "AccessDenied", "403", "404"):
                raise ArtifactNotFound(f"cannot list {uri}: {code}") from exc
            raise
        if not objects:
            raise ArtifactNotFound(f"artifact not found: no objects under {uri}")
        return objects

    def put_json(self, bucket: str, key: str, document: Any) -> tuple[str, str]:
        """Write a JSON document; returns its URI and sha256 (the registry's ContentDigest)."""
        body = json.dumps(document, indent=2, sort_keys=True).encode()
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        return f"s3://{bucket}/{key}", hashlib.sha256(body).hexdigest()

    def get_json(self, uri: str) -> Any:
        bucket, key = parse_s3_uri(uri)
        return json.loads(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def put_text(self, bucket: str, key: str, text: str, content_type: str = "text/markdown") -> str:
        self._s3.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType=content_type)
        return f"s3://{bucket}/{key}"


def host_of_stream(stream_name: str) -> str:
    match = _HOST_IN_STREAM.search(stream_name)
    return match.group("host") if match else stream_name.rsplit("/", 1)[-1]


class TrainingLogs:
    """Reads a training job's CloudWatch log streams, page by page, counting API calls."""

    MAX_STREAMS_PER_CALL = 100  # FilterLogEvents accepts at most 100 logStreamNames

    def __init__(self, logs: Any | None = None, log_group: str = TRAINING_LOG_GROUP):
        self._logs = logs or client("logs")
        self._group = log_group
        self.api_calls = 0

    def stream_names(self, job_name: str) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": self._group, "logStreamNamePrefix": f"{job_name}/"}
        try:
            while True:
                self.api_calls += 1
                page = self._logs.describe_log_streams(**kwargs)
                names += [s["logStreamName"] for s in page.get("logStreams", [])]
                if not page.get("nextToken"):
                    return names
                kwargs["nextToken"] = page["nextToken"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return []
            raise

    def pages(self, stream_names: list[str], filter_pattern: str | None = None) -> Iterator[list[tuple[str, str]]]:
        """Pages of (stream name, message), each stream's events in order. With a filterPattern,
        CloudWatch returns only events that could match, so fewer pages travel."""
        for first in range(0, len(stream_names), self.MAX_STREAMS_PER_CALL):
            kwargs: dict[str, Any] = {
                "logGroupName": self._group,
                "logStreamNames": stream_names[first : first + self.MAX_STREAMS_PER_CALL],
            }
            if filter_pattern:
                kwargs["filterPattern"] = filter_pattern
            while True:
                self.api_calls += 1
                page = self._logs.filter_log_events(**kwargs)
                events = page.get("events", [])
                if events:
                    yield [(event["logStreamName"], event.get("message", "")) for event in events]
                token = page.get("nextToken")
                if not token:
                    break
                kwargs["nextToken"] = token


class TrainingJobMetrics:
    """Algorithm metrics SageMaker publishes to CloudWatch (namespace /aws/sagemaker/TrainingJobs),
    read the way the SageMaker SDK reads them: dimension TrainingJobName, statistic Average."""

    NAMESPACE = "/aws/sagemaker/TrainingJobs"
    MAX_DATAPOINTS = 1440  # GetMetricStatistics' limit per call

    def __init__(self, cloudwatch: Any | None = None):
        self._cloudwatch = cloudwatch or client("cloudwatch")
        self.api_calls = 0

    def latest(self, job_name: str, metric_names: list[str], start: datetime, end: datetime) -> dict[str, float]:
        seconds = max((end - start).total_seconds(), 60.0)
        period = max(60, math.ceil(seconds / self.MAX_DATAPOINTS / 60) * 60)
        latest: dict[str, float] = {}
        for name in metric_names:
            self.api_calls += 1
            points = self._cloudwatch.get_metric_statistics(
                Namespace=self.NAMESPACE,
                MetricName=name,
                Dimensions=[{"Name": "TrainingJobName", "Value": job_name}],
                StartTime=start,
                EndTime=end,
                Period=period,
                Statistics=["Average"],
            ).get("Datapoints", [])
            if points:
                latest[name] = max(points, key=lambda p: p["Timestamp"])["Average"]
        return latest


class ModelRegistry:
    """What the gate reads from SageMaker itself: the champion of a group and a job's tags."""

    def __init__(self, sagemaker: Any | None = None):
        self._sagemaker = sagemaker or client("sagemaker")

    def latest_approved(self, group: str) -> tuple[str, dict[str, str]] | None:
        """ARN and CustomerMetadataProperties of the group's newest Approved package, or None."""
        try:
            page = self._sagemaker.list_model_packages(
                ModelPackageGroupName=group,
                ModelApprovalStatus="Approved",
                SortBy="CreationTime",
                SortOrder="Descending",
                MaxResults=1,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
                return None  # no group yet: the first run
            raise
        summaries = page.get("ModelPackageSummaryList", [])
        if not summaries:
            return None
        arn = summaries[0]["ModelPackageArn"]
        described = self._sagemaker.describe_model_package(ModelPackageName=arn)
        return arn, described.get("CustomerMetadataProperties", {})

    def ensure_group(self, group: str, description: str, tags: list[dict[str, str]]) -> bool:
        """Create the group unless it exists; True when this call created it."""
        try:
            self._sagemaker.describe_model_package_group(ModelPackageGroupName=group)
            return False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFound"):
                raise
        try:
            self._sagemaker.create_model_package_group(
                ModelPackageGroupName=group, ModelPackageGroupDescription=description, Tags=tags
            )
        except ClientError as exc:
            # Another execution created it between our describe and create: that is the goal reached.
            if "already exists" not in exc.response.get("Error", {}).get("Message", ""):
                raise
            return False
        return True

    def create_package(self, request: dict[str, Any]) -> str:
        return self._sagemaker.create_model_package(**request)["ModelPackageArn"]

    def set_approval(self, model_package_arn: str, status: str, description: str) -> None:
        self._sagemaker.update_model_package(
            ModelPackageArn=model_package_arn, ModelApprovalStatus=status, ApprovalDescription=description[:1024]
        )

    def job_tags(self, training_job_arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for page in self._sagemaker.get_paginator("list_tags").paginate(ResourceArn=training_job_arn):
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        return tags


POLICY_PARAMETER_PREFIX = "/training-gate/policies/"
POLICY_CACHE_SECONDS = 300


def stored_policy(group: str, prefix: str = POLICY_PARAMETER_PREFIX) -> dict[str, Any] | None:
    """The per-group policy stored in SSM Parameter Store (JSON), cached; None when there is none."""
    from aws_lambda_powertools.utilities import parameters

    try:
        document = parameters.get_parameter(f"{prefix}{group}", max_age=POLICY_CACHE_SECONDS)
    except parameters.exceptions.GetParameterError as exc:
        # Powertools wraps the ClientError without `from`: the original is the exception's context.
        original = exc.__context__
        if isinstance(original, ClientError) and original.response["Error"]["Code"] == "ParameterNotFound":
            return None
        raise
    try:
        parsed = json.loads(str(document))
    except json.JSONDecodeError as exc:
        raise ValueError(f"policy parameter {prefix}{group} is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"policy parameter {prefix}{group} must hold a JSON object")
    return parsed


class DecisionLog:
    """The decision table: one item per (training job, effective policy). Its conditional write is
    what makes the gate decide, and register, at most once per job and policy."""

    def __init__(self, table_name: str, dynamodb: Any | None = None):
        self._dynamodb = dynamodb or client("dynamodb")
        self._table = table_name

    @staticmethod
    def _key(job_name: str, policy_sha256: str) -> dict[str, Any]:
        return {"training_job": {"S": job_name}, "policy_sha256": {"S": policy_sha256}}

    def record(self, job_name: str, policy_sha256: str, attributes: dict[str, str]) -> dict[str, Any] | None:
        """Write the decision unless one exists that did not fail. Returns None when written, else
        the existing item (this execution is a duplicate)."""
        item = {**self._key(job_name, policy_sha256), **{k: {"S": v} for k, v in attributes.items()}}
        item["status"] = {"S": "decided"}
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(training_job) OR #status = :failed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":failed": {"S": "failed"}},
            )
            return None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        existing = self._dynamodb.get_item(
            TableName=self._table, Key=self._key(job_name, policy_sha256), ConsistentRead=True
        ).get("Item", {})
        return {k: v.get("S", v.get("N")) for k, v in existing.items()}

    def add_duplicate(self, job_name: str, policy_sha256: str, execution_arn: str) -> None:
        self._dynamodb.update_item(
            TableName=self._table,
            Key=self._key(job_name, policy_sha256),
            UpdateExpression="ADD duplicates :one, duplicate_executions :execution",
            ExpressionAttributeValues={":one": {"N": "1"}, ":execution": {"SS": [execution_arn]}},
        )

    def mark(self, job_name: str, policy_sha256: str, status: str, **attributes: str) -> None:
        names = {"#status": "status", **{f"#{k}": k for k in attributes}}
        values = {":status": {"S": status}, **{f":{k}": {"S": v} for k, v in attributes.items()}}
        assignments = ", ".join(["#status = :status", *(f"#{k} = :{k}" for k in attributes)])
        self._dynamodb.update_item(
            TableName=self._table,
            Key=self._key(job_name, policy_sha256),
            UpdateExpression=f"SET {assignments}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def history(self, job_name: str) -> list[dict[str, Any]]:
        """Every decision about one job (the audit log), newest policies included."""
        items = self._dynamodb.query(
            TableName=self._table,
            KeyConditionExpression="training_job = :job",
            ExpressionAttributeValues={":job": {"S": job_name}},
        ).get("Items", [])
        return [{k: v.get("S", v.get("N", v.get("SS"))) for k, v in item.items()} for item in items]


DECISION_EVENT_SOURCE = "training-gate"
DECISION_EVENT_DETAIL_TYPE = "Training Gate Decision"


class DecisionEvents:
    """Custom events on the default bus, one per decision, for retraining pipelines to subscribe to."""

    def __init__(self, events: Any | None = None):
        self._events = events or client("events")

    def publish(self, detail: dict[str, Any], resources: list[str]) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Source": DECISION_EVENT_SOURCE,
                    "DetailType": DECISION_EVENT_DETAIL_TYPE,
                    "Detail": json.dumps(detail),
                    "Resources": resources,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the decision event: {response['Entries']}")
