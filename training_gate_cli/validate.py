"""`training-gate validate`: the gate's checks on a real training job, from a laptop, without the
state machine. A dry run by default; `--apply` registers (or notifies) as the gate would.

It runs the functions' own use cases through the same AWS-access layer."""

from __future__ import annotations

import json
import os
from typing import Any

from training_gate_cli.common import EXIT_REJECTED, UsageError, exit_code, read_json

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
    from pydantic import ValidationError

    from infra.config import load_config, read_context
    from training_gate.dal.cloudwatch import TrainingJobMetrics
    from training_gate.dal.logs import TrainingLogs
    from training_gate.dal.s3 import ArtifactStore
    from training_gate.dal.sagemaker import ModelRegistry, TrainingJobNotFound, TrainingJobs
    from training_gate.dal.sns import Topic
    from training_gate.domain.contract import MetricsSummary
    from training_gate.domain.failure import classify_failure
    from training_gate.domain.inputs import GateInput, field_problems
    from training_gate.domain.policy import Outcome, Policy
    from training_gate.inspector.inspect import InspectConfig
    from training_gate.logic.artifact import inspect_job
    from training_gate.logic.collect import collect_job_metrics
    from training_gate.logic.evaluate import EvaluatePorts, EvaluateRequest, GateSettings, evaluate
    from training_gate.logic.register import register_directly

    config = load_config(read_context())
    policy = config.policy
    if args.policy:
        try:
            policy = Policy.model_validate(read_json(args.policy, "policy"))
        except ValidationError as exc:
            raise UsageError(f"invalid policy: {field_problems(exc)}") from exc

    jobs = TrainingJobs()
    try:
        described = jobs.describe(args.job)
    except TrainingJobNotFound as exc:
        raise UsageError(str(exc)) from exc
    job = described.job
    if job.status != "Completed":
        summary = classify_failure(job.training_job_name, job.status, job.secondary_status, job.failure_reason)
        _print(args, {"outcome": "training_job_not_completed", "status": job.status, "advice": summary.message})
        return EXIT_REJECTED

    store = ArtifactStore()
    inspect_config = InspectConfig(
        sample_input=config.sample_input, model_file=config.model_file, holdout=config.holdout
    )
    inspection = inspect_job(job, store, inspect_config, read_holdout=store.open)
    cloudwatch = TrainingJobMetrics() if config.read_cloudwatch_metrics else None
    collected = collect_job_metrics(job, described.sources, TrainingLogs(), store, cloudwatch)

    from training_gate.dal.clients import region as current_region

    region = current_region()
    gate = GateSettings(
        default_policy=policy,
        default_group=config.model_package_group,
        allowed_groups=config.model_package_groups,
        reports_bucket=args.reports_bucket or "",
    )
    request = EvaluateRequest(
        job=job,
        inspection=inspection,
        metrics=MetricsSummary(metrics_uri=None, log_streams=collected.log_streams),
        settings=GateInput(training_job_name=args.job, poll_interval_seconds=0, max_polls=1, dry_run=not args.apply),
        execution_arn=LOCAL_EXECUTION.format(region=region, job=args.job),
    )
    registry = ModelRegistry()
    ports = EvaluatePorts(store=store, registry=registry, jobs=jobs, load_stored=lambda group: None)
    result = evaluate(request, collected, gate, ports)
    view: dict[str, Any] = {
        "outcome": result.outcome.value,
        "reasons": result.reasons,
        "table": result.table,
        "checks": [c.model_dump(mode="json") for c in inspection.checks],
        "report_uri": result.report_uri,
        "applied": bool(args.apply),
    }
    if args.apply and result.outcome == Outcome.PASS and result.report_uri:
        view["model_package_arn"] = register_directly(job, result.report_uri, registry, store, config.inference)
    elif args.apply and args.topic_arn and result.outcome in (Outcome.REJECT, Outcome.INCONCLUSIVE):
        Topic(args.topic_arn).publish(result.notification.subject, result.notification.message)
        view["notified"] = args.topic_arn
    _print(args, view)
    return exit_code(result.outcome.value)


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
