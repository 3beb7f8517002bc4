"""`training-gate validate`: the gate's checks on a real training job, from a laptop, without the
state machine. A dry run by default; `--apply` registers (or notifies) as the gate would."""

from __future__ import annotations

import json
import os
from typing import Any

from training_gate_cli.cli import EXIT_INCONCLUSIVE, EXIT_OK, EXIT_REJECTED, UsageError

LOCAL_EXECUTION = "arn:aws:states:{region}:000000000000:execution:training-gate-cli:{job}"


def run_validate(args: Any) -> int:
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    if args.apply and not args.reports_bucket:
        raise UsageError("--apply needs --reports-bucket: a registered package points at its metrics file there")

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _validate(args)
    except (ClientError, BotoCoreError) as exc:
        raise UsageError(f"AWS refused the request: {exc}") from exc


def _validate(args: Any) -> int:
    import boto3
    from pydantic import ValidationError

    from infra.config import load_config, read_context
    from training_gate.dal.aws import ArtifactStore, ModelRegistry, TrainingJobMetrics, TrainingLogs, client
    from training_gate.domain.failure import classify_failure
    from training_gate.domain.inputs import GateInput, field_problems
    from training_gate.domain.policy import Outcome, Policy
    from training_gate.inspector.inspect import InspectConfig, PrefixSource, TarballSource, inspect_artifact
    from training_gate.logic.collect import collect_job_metrics
    from training_gate.logic.evaluate import EvaluateInput, GateSettings, evaluate
    from training_gate.logic.register import GROUP_DESCRIPTION, GROUP_TAGS
    from training_gate_cli.cli import _read_json

    config = load_config(read_context())
    policy = config.policy
    if args.policy:
        try:
            policy = Policy.model_validate(_read_json(args.policy, "policy"))
        except ValidationError as exc:
            raise UsageError(f"invalid policy: {field_problems(exc)}") from exc

    sagemaker = client("sagemaker")
    try:
        job = sagemaker.describe_training_job(TrainingJobName=args.job)
    except sagemaker.exceptions.ClientError as exc:
        raise UsageError(f"training job {args.job!r} not found: {exc.response['Error']['Message']}") from exc
    job = json.loads(json.dumps(job, default=str))  # timestamps as text, as Step Functions hands them over
    status = job["TrainingJobStatus"]
    if status != "Completed":
        summary = classify_failure(args.job, status, job.get("SecondaryStatus"), job.get("FailureReason"))
        _print(args, {"outcome": "training_job_not_completed", "status": status, "advice": summary.message})
        return EXIT_REJECTED

    store = ArtifactStore()
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    if job.get("OutputDataConfig", {}).get("CompressionType") == "NONE":
        prefix = uri if uri.endswith("/") else uri + "/"
        source: Any = PrefixSource(lambda: store.list_prefix(prefix), lambda key: store.open(prefix + key))
    else:
        source = TarballSource(lambda: store.open(uri))
    inspect_config = InspectConfig(
        sample_input=config.sample_input, model_file=config.model_file, holdout=config.holdout
    )
    inspection = inspect_artifact(uri, source, inspect_config, read_holdout=store.open)
    cloudwatch = TrainingJobMetrics() if config.read_cloudwatch_metrics else None
    metrics = collect_job_metrics(job, TrainingLogs(), store, cloudwatch)

    region = boto3.session.Session().region_name or "us-east-1"
    settings = GateSettings(
        default_policy=policy,
        default_group=config.model_package_group,
        allowed_groups=config.model_package_groups,
        reports_bucket=args.reports_bucket or "",
        inference=config.inference.model_dump(mode="json"),
    )
    request = EvaluateInput(
        job=job,
        inspection=inspection,
        metrics=metrics,
        settings=GateInput(TrainingJobName=args.job, poll_interval_seconds=0, max_polls=1, dry_run=not args.apply),
        execution_arn=LOCAL_EXECUTION.format(region=region, job=args.job),
    )
    registry = ModelRegistry()
    result = evaluate(request, settings, store, registry, lambda group: None)
    view: dict[str, Any] = {
        "outcome": result.outcome.value,
        "reasons": result.decision.reasons,
        "table": result.table,
        "checks": [c.model_dump(mode="json") for c in inspection.checks],
        "report_uri": result.report_uri,
        "applied": bool(args.apply),
    }
    if args.apply and result.registration is not None:
        registry.ensure_group(result.model_package_group, GROUP_DESCRIPTION, GROUP_TAGS)
        view["model_package_arn"] = registry.create_package(result.registration)
    elif args.apply and args.topic_arn:
        client("sns").publish(
            TopicArn=args.topic_arn, Subject=result.notification.subject, Message=result.notification.message
        )
        view["notified"] = args.topic_arn
    _print(args, view)
    return {Outcome.PASS: EXIT_OK, Outcome.REJECT: EXIT_REJECTED, Outcome.INCONCLUSIVE: EXIT_INCONCLUSIVE}[
        result.outcome
    ]


def _print(args: Any, view: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(view))
        return
    if "table" in view:
        print(view["table"])
    for check in view.get("checks", []):
        print(f"{check['status'].upper():<8} {check['name']:<22} {check['detail']}")
    print(
        f"decision: {view['outcome']}" + ("" if view.get("applied") else " (dry run: nothing registered or notified)")
    )
    for reason in view.get("reasons", []):
        print(f"- {reason}")
    if "advice" in view:
        print(view["advice"])
    if "model_package_arn" in view:
        print(f"registered: {view['model_package_arn']}")
