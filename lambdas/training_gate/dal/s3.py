"""Model artifacts and the gate's own reports in S3."""

from __future__ import annotations

import hashlib
import json
from typing import Any, BinaryIO

from training_gate.dal.clients import ClientError, client, error_code

_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}
_ACCESS_DENIED = {"AccessDenied", "403", "AllAccessDisabled"}
# SSE-KMS objects the function's role may not decrypt answer with these (S3 passes KMS's refusal on).
_KMS_DENIED = {"KMS.AccessDeniedException", "KMS.DisabledException", "KMS.NotFoundException", "KMSAccessDenied"}


class ArtifactNotFound(Exception):
    """The artifact is not where the job says: the model's owners must look (a rejection)."""


class ArtifactAccessDenied(Exception):
    """The gate may not read the artifact (bucket policy, IAM or KMS): operations must fix the gate's
    access; the model itself was never judged."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def _raise_for_read(exc: ClientError, uri: str) -> None:
    code = error_code(exc)
    if code in _NOT_FOUND:
        raise ArtifactNotFound(f"artifact not found at {uri}") from exc
    if code in _ACCESS_DENIED or code in _KMS_DENIED or code.startswith("KMS"):
        raise ArtifactAccessDenied(
            f"access denied reading {uri} ({code}): allow the gate to read this bucket "
            "(artifact_bucket_patterns in cdk.json) and, for SSE-KMS buckets, to decrypt with its key "
            "(artifact_kms_key_arns)"
        ) from exc
    raise exc


class ArtifactStore:
    def __init__(self, s3: Any | None = None):
        self._s3 = s3 or client("s3")

    def open(self, uri: str) -> BinaryIO:
        bucket, key = parse_s3_uri(uri)
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            _raise_for_read(exc, uri)
            raise  # unreachable: _raise_for_read always raises

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
            _raise_for_read(exc, uri)
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

    def get_text(self, uri: str) -> str:
        bucket, key = parse_s3_uri(uri)
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def put_text(self, bucket: str, key: str, text: str, content_type: str = "text/markdown") -> str:
        self._s3.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType=content_type)
        return f"s3://{bucket}/{key}"


# The settings document is a few kilobytes; anything larger is not the stack's document.
SETTINGS_MAX_BYTES = 1 << 20


class SettingsUnavailable(Exception):
    """The function's settings document could not be read, or is not the one the stack wrote."""


def read_settings(uri: str, sha256: str, s3: Any | None = None) -> dict[str, str]:
    """The stack's settings document (variable name -> value), checked against the digest the stack recorded
    in the function's environment: a changed or truncated object is refused, never half used."""
    bucket, key = parse_s3_uri(uri)
    try:
        body = (s3 or client("s3")).get_object(Bucket=bucket, Key=key)["Body"].read(SETTINGS_MAX_BYTES + 1)
    except ClientError as exc:
        raise SettingsUnavailable(
            f"the settings document {uri} could not be read ({error_code(exc)}): the function's role must be able "
            "to read it, and the object must still be in the CDK's asset bucket (redeploy the stack to restore it)"
        ) from exc
    digest = hashlib.sha256(body).hexdigest()
    if digest != sha256:
        raise SettingsUnavailable(f"the settings document {uri} has sha256 {digest}, the stack wrote {sha256}")
    document = json.loads(body)
    if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
        raise SettingsUnavailable(f"the settings document {uri} is not an object of strings")
    return document
