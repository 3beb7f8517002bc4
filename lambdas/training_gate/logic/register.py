"""RegisterModel's use case: create the package exactly once, and never forget it.

The request is built here, where it is sent, from the decision's report. Before it is sent, the
request is stored in the decision item; an execution that takes the decision over sends that same
request with the same ClientToken, so SageMaker returns the package it already made
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html, ClientToken).
If the token no longer helps, the package is found by the decision's identity in its metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from training_gate.dal.clients import ClientError, error_code
from training_gate.dal.dynamodb import DecisionLog, NotOwner
from training_gate.dal.events import DecisionEvents
from training_gate.dal.s3 import ArtifactStore, parse_s3_uri
from training_gate.dal.sagemaker import ModelRegistry
from training_gate.domain.contract import Evaluation, Registration, ReportRegistration, TrainingJob
from training_gate.domain.models import ModelInfo
from training_gate.domain.report import client_token, model_monitor_statistics, sanitize_metadata
from training_gate.domain.report_document import Report
from training_gate.domain.settings import InferenceConfig
from training_gate.logic.finish import (
    FinishPorts,
    RecordOutcomeRequest,
    judged_job,
    own_package,
    record_outcome,
    record_superseded,
)

GROUP_DESCRIPTION = "Models that passed training-gate"
# A versioned package takes its group's tags and refuses its own (CreateModelPackage: "If you supply
# ModelPackageGroupName, your model package belongs to the model group you specify and uses the tags
# associated with the model group"); the gate's identity on the package is in its metadata.
GROUP_TAGS = [{"Key": "managed-by", "Value": "training-gate"}]
METADATA_ENTRIES_MAX = 50  # CustomerMetadataProperties entries AWS allows
METADATA_METRICS_MAX = 40  # of them, at most, whatever room the fixed entries leave
# Errors after which a retry with the same token cannot help; the package may exist all the same.
_THROTTLING = {"ThrottlingException", "Throttling", "TooManyRequestsException"}


class RegisterRequest(BaseModel):
    job: TrainingJob
    evaluation: Evaluation
    execution_arn: str


@dataclass
class RegisterPorts:
    registry: ModelRegistry
    log: DecisionLog
    store: ArtifactStore
    events: DecisionEvents


def decision_identity(job: TrainingJob, policy_sha256: str) -> dict[str, str]:
    """The metadata that names the decision a package came from: how a lost package is found."""
    return {"training_job_arn": job.training_job_arn, "policy_sha256": policy_sha256}


def registration_request(
    job: TrainingJob,
    report: Report,
    report_uri: str,
    statistics: tuple[str, str],
    inference: InferenceConfig,
) -> dict[str, Any]:
    """CreateModelPackage's request. Nothing in it depends on which execution sends it."""
    decision = report.decision
    stats_uri, stats_sha = statistics
    # Every reported metric is stored, so a later champion comparison can read it back.
    stored_metrics = {
        f"metric_{name}": m.raw for name, m in sorted(report.metrics.metrics.items()) if m.value is not None
    }
    metadata = {
        "managed_by": "training-gate",
        "training_job_name": job.training_job_name,
        **({"tuning_job_name": report.tuning.tuning_job_name} if report.tuning else {}),
        **decision_identity(job, decision.policy_sha256),
        "gate_decision": decision.outcome.value,
        "gate_report": report_uri,
        "artifact_sha256": report.inspection.artifact.sha256 or "",
        **model_metadata(report.inspection.model),
    }
    room = min(METADATA_METRICS_MAX, METADATA_ENTRIES_MAX - len(metadata))
    metadata.update(dict(list(stored_metrics.items())[:room]))
    request: dict[str, Any] = {
        "ModelPackageGroupName": report.model_package_group,
        "ModelPackageDescription": (
            f"registered by training-gate: {decision.outcome.value} for training job {job.training_job_name}"
            + (f", the best of tuning job {report.tuning.tuning_job_name}" if report.tuning else "")
        ),
        "ModelApprovalStatus": report.policy.outcome.approval_status,
        "ClientToken": client_token(job.training_job_arn, decision.policy_sha256),
        "CustomerMetadataProperties": sanitize_metadata(metadata),
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": stats_uri,
                    "ContentDigest": f"sha256:{stats_sha}",
                }
            }
        },
    }
    image = inference.image or job.training_image
    if image:
        spec: dict[str, Any] = {
            "Containers": [{"Image": image, "ModelDataUrl": report.inspection.artifact.uri}],
            "SupportedContentTypes": inference.content_types,
            "SupportedResponseMIMETypes": inference.response_types,
        }
        # AWS refuses an empty list here: the key is left out instead.
        if inference.realtime_instance_types:
            spec["SupportedRealtimeInferenceInstanceTypes"] = inference.realtime_instance_types
        if inference.transform_instance_types:
            spec["SupportedTransformInstanceTypes"] = inference.transform_instance_types
        request["InferenceSpecification"] = spec
    return request


def model_metadata(model: ModelInfo) -> dict[str, str]:
    """What the package says about its model: framework, format, the reader that judged it and the version
    that wrote it, a checkpoint's parameters, dtypes and bytes (values within AWS's characters:
    `sanitize_metadata` replaces any other)."""
    entries = {
        "model_framework": model.framework,
        "model_format": model.format,
        "model_reader": f"{model.reader} {model.reader_version or ''}".strip() if model.reader else None,
        "model_writer_version": model.writer_version,
        "model_bytes_validated": None if model.bytes_validated is None else str(model.bytes_validated).lower(),
        # A checkpoint's size, as its reader counted it.
        "model_parameters": _text(model.details.get("parameters")),
        "model_dtypes": _text(model.details.get("dtypes")),
        "model_bytes": _text(model.details.get("tensor_bytes")),
    }
    return {key: value for key, value in entries.items() if value}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def build_request(
    job: TrainingJob, report: Report, report_uri: str, store: ArtifactStore, inference: InferenceConfig
) -> dict[str, Any]:
    """The request built from the decision's report, its statistics written beside the report."""
    bucket, key = parse_s3_uri(report_uri)
    statistics = store.put_json(
        bucket, key.rsplit("/", 1)[0] + "/statistics.json", model_monitor_statistics(report.metrics.metrics)
    )
    return registration_request(job, report, report_uri, statistics, inference)


def register_directly(
    job: TrainingJob, report_uri: str, registry: ModelRegistry, store: ArtifactStore, inference: InferenceConfig
) -> str:
    """The command line's `validate --apply`: no decision table, the same request, the same token."""
    request = build_request(job, _read_report(store, report_uri), report_uri, store, inference)
    registry.ensure_group(request["ModelPackageGroupName"], GROUP_DESCRIPTION, GROUP_TAGS)
    arn, _ = _create_once(registry, request, decision_identity(job, request_policy(request)))
    return arn


def request_policy(request: dict[str, Any]) -> str:
    return str(request["CustomerMetadataProperties"].get("policy_sha256", ""))


def _read_report(store: ArtifactStore, report_uri: str) -> Report:
    return Report.model_validate(store.get_json(report_uri))


def _create_once(registry: ModelRegistry, request: dict[str, Any], identity: dict[str, str]) -> tuple[str, bool]:
    """(package ARN, created by this call)."""
    group = request["ModelPackageGroupName"]
    try:
        return registry.create_package(request), True
    except ClientError as exc:
        if error_code(exc) in _THROTTLING:
            raise  # botocore already retried it with backoff; a later attempt reuses the same token
        found = registry.find_package(group, identity)
        if found is None:
            raise
        return found, False


def register(request: RegisterRequest, ports: RegisterPorts, inference: InferenceConfig) -> Registration:
    """Create (or adopt) the package, record it, then the decision event: the decision is complete."""
    key, sha = request.evaluation.key(request.job), request.evaluation.policy_sha256
    try:
        registration = _register(request, ports, inference)
    except NotOwner:
        record_superseded(ports.log, key, sha, request.execution_arn, ports.log.get(key, sha))
        raise
    completion = record_outcome(
        RecordOutcomeRequest(job=request.job, evaluation=request.evaluation, execution_arn=request.execution_arn),
        FinishPorts(log=ports.log, events=ports.events, registry=ports.registry),
    )
    if completion.completion == "superseded":
        raise NotOwner(f"execution {request.execution_arn} lost the decision on {request.job.training_job_name}")
    return registration.model_copy(update={"answers_due": completion.answers_due})


def _register(request: RegisterRequest, ports: RegisterPorts, inference: InferenceConfig) -> Registration:
    evaluation, me = request.evaluation, request.execution_arn
    key = evaluation.key(request.job)
    item = ports.log.get(key, evaluation.policy_sha256)
    if item is None or item.owner != me:
        raise NotOwner(f"execution {me} does not own the decision on {key}")
    job = judged_job(item, request.job)
    if item.model_package_arn:
        # An earlier attempt (a retry, or the execution this one took over) created it; the report may
        # not say so yet if that attempt stopped right after recording the package.
        arn = item.model_package_arn
        adopted = arn == job.output_model_package_arn
        if evaluation.report_uri:
            _record_in_report(ports.store, evaluation.report_uri, arn, adopted)
        return Registration(
            training_job_name=job.training_job_name,
            model_package_arn=arn,
            model_package_version=arn.rsplit("/", 1)[-1],
            adopted=adopted,
            created=False,
        )
    report_uri = evaluation.report_uri
    if not report_uri:
        raise ValueError(f"the decision on {job.training_job_name} has no report to register from")
    report = _read_report(ports.store, report_uri)
    own = own_package(job, evaluation.model_package_group)
    if own:
        # The job registered its model itself, in the decision's group: apply the decision to it, add none.
        arn = own
        ports.registry.set_approval(
            arn,
            report.policy.outcome.approval_status,
            f"training-gate: pass under policy {evaluation.policy_sha256[:12]}; report {report_uri}",
        )
        created = False
    else:
        identity = decision_identity(job, evaluation.policy_sha256)
        found = None
        if item.registration_request:
            # An earlier attempt stored, and may have sent, this request: the package may exist even
            # if the ClientToken no longer remembers it, so look before sending it again.
            sent = json.loads(item.registration_request)
            found = ports.registry.find_package(sent["ModelPackageGroupName"], identity)
        else:
            sent = build_request(job, report, report_uri, ports.store, inference)
            ports.log.store_request(key, evaluation.policy_sha256, me, json.dumps(sent))
        if found is not None:
            arn, created = found, False
        else:
            ports.registry.ensure_group(sent["ModelPackageGroupName"], GROUP_DESCRIPTION, GROUP_TAGS)
            arn, created = _create_once(ports.registry, sent, identity)
    ports.log.record_package(key, evaluation.policy_sha256, me, arn)
    adopted = own is not None
    _record_in_report(ports.store, report_uri, arn, adopted, report)
    return Registration(
        training_job_name=job.training_job_name,
        model_package_arn=arn,
        model_package_version=arn.rsplit("/", 1)[-1],
        adopted=adopted,
        created=created,
    )


def _record_in_report(
    store: ArtifactStore, report_uri: str, arn: str, adopted: bool, report: Report | None = None
) -> None:
    """The typed update a registration makes to report.json (written once, unless it already says so)."""
    report = report or _read_report(store, report_uri)
    registration = ReportRegistration(
        model_package_arn=arn, model_package_version=arn.rsplit("/", 1)[-1], adopted=adopted
    )
    if report.registration == registration:
        return
    report.registration = registration
    bucket, key = parse_s3_uri(report_uri)
    store.put_json(bucket, key, report.document())
