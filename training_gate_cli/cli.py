"""The `training-gate` command.

Exit codes for every subcommand: 0 passed/registered, 1 rejected, 2 usage or input error
(message on stderr), 3 inconclusive. `--json` prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from training_gate_cli.common import (
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    UsageError,
    exit_code,
    iter_lines,
    read_json,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"training-gate: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="training-gate", description="A quality gate for Amazon SageMaker training jobs.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = commands.add_parser("demo", help="run three jobs through the gate on the embedded local engine")
    demo.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    demo.add_argument("--no-color", action="store_true", help="plain output")

    metrics = commands.add_parser("metrics", help="parse training logs the way the gate parses CloudWatch")
    metrics.add_argument("logfiles", nargs="+", type=Path, help="one file per host; algo-1.txt is host algo-1")
    metrics.add_argument("--metric-definitions", type=Path, help='SageMaker\'s [{"Name": ..., "Regex": ...}]')
    metrics.add_argument("--json", action="store_true")

    inspect = commands.add_parser("inspect", help="inspect a model.tar.gz (local path or s3:// URI)")
    inspect.add_argument("artifact")
    inspect.add_argument(
        "--sample-input",
        type=Path,
        help='JSON rows [[5.1, 3.5, 1.4, 0.2]], records [{"age": 31, "city": "Paris"}], documents ["text"], '
        'or {"csv": "age,city\\n31,Paris\\n"}',
    )
    inspect.add_argument("--training-image", help="the job's TrainingImage: tells a built-in algorithm's format")
    inspect.add_argument(
        "--config", type=Path, help="JSON inspection settings (model_file, version_skew, caps, onnx_domains)"
    )
    inspect.add_argument("--json", action="store_true")

    evaluate = commands.add_parser("evaluate", help="apply a policy to metrics")
    evaluate.add_argument("--metrics", type=Path, required=True, help="the metrics command's JSON output")
    evaluate.add_argument("--policy", type=Path, help="policy JSON or YAML (default: the policy cdk.json ships)")
    evaluate.add_argument("--champion", type=Path, help='champion metrics JSON, e.g. {"accuracy": 0.91}')
    evaluate.add_argument("--json", action="store_true")
    validate = commands.add_parser("validate", help="run the gate's checks on a real training job (dry run)")
    validate.add_argument("--job", required=True, help="training job name")
    validate.add_argument("--policy", type=Path, help="policy JSON or YAML (default: the policy cdk.json ships)")
    validate.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    validate.add_argument("--endpoint-url", help="send every AWS call to this endpoint (e.g. a local emulator)")
    mode = validate.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", default=True, help="decide only (the default)")
    mode.add_argument("--apply", action="store_true", help="register a passing model / notify a rejection")
    validate.add_argument("--reports-bucket", help="bucket for the report and metrics file (needed by --apply)")
    validate.add_argument("--topic-arn", help="SNS topic for the rejection notification with --apply")
    validate.add_argument("--json", action="store_true")
    return parser


def run_metrics(args: argparse.Namespace) -> int:
    from training_gate.domain.metrics import metrics_document, scan_streams

    definitions = read_json(args.metric_definitions, "metric definitions") if args.metric_definitions else []
    if not isinstance(definitions, list):
        raise UsageError('metric definitions must be a JSON list of {"Name", "Regex"}')
    for path in args.logfiles:
        if not path.is_file():
            raise UsageError(f"log file not found: {path}")
    scan = scan_streams(((p.stem, iter_lines(p)) for p in args.logfiles), definitions)
    result = scan.result()
    if args.json:
        print(json.dumps(metrics_document(scan, result)))
        return EXIT_OK
    print(f"{'metric':<28} {'value':>14}  {'from':<28} {'host':<8} matches")
    for name, metric in result.metrics.items():
        print(f"{name:<28} {metric.raw:>14}  {metric.original_name:<28} {metric.host or '-':<8} {metric.matches}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    return EXIT_OK


def run_inspect(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from training_gate.dal.s3 import ArtifactNotFound, ArtifactStore
    from training_gate.domain.inputs import field_problems
    from training_gate.inspector.errors import InspectorEnvironmentError
    from training_gate.inspector.inspect import InspectConfig, inspect_artifact

    settings = read_json(args.config, "config") if args.config else {}
    if args.sample_input:
        settings["sample_input"] = read_json(args.sample_input, "sample input")
    try:
        config = InspectConfig.model_validate(settings)
    except ValidationError as exc:
        raise UsageError(f"invalid inspection settings: {field_problems(exc)}") from exc

    uri = args.artifact
    if uri.startswith("s3://"):
        store = ArtifactStore()

        def opener() -> Any:
            return store.open(uri)

    else:
        path = Path(uri)

        def opener() -> Any:
            if not path.is_file():
                raise ArtifactNotFound(f"artifact not found at {path}")
            return open(path, "rb")

    try:
        result = inspect_artifact(uri, opener, config, training_image=args.training_image)
    except InspectorEnvironmentError as exc:  # the gate could not inspect: no verdict on the model
        if args.json:
            print(json.dumps({"verdict": None, "error": {"type": type(exc).__name__, "message": str(exc)}}))
        else:
            print(f"training-gate inspect: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INCONCLUSIVE
    if args.json:
        print(
            json.dumps(
                {
                    "verdict": result.verdict,
                    "checks": [c.model_dump(mode="json") for c in result.checks],
                    "artifact": {"sha256": result.artifact.sha256, "bytes": result.artifact.bytes},
                    "model": result.model.model_dump(mode="json", by_alias=True),
                    "recognition": result.recognition.model_dump(mode="json") if result.recognition else None,
                    "protections": [p.model_dump(mode="json") for p in result.protections],
                    "findings": [f.model_dump(mode="json") for f in result.findings],
                }
            )
        )
    else:
        for check in result.checks:
            print(f"{check.status.value.upper():<8} {check.name:<17} {check.detail}")
        summary = result.model.summary()
        if summary:
            print(f"{'MODEL':<8} {'':<17} {summary}")
        absent = [p for p in result.protections if p.status != "in force"]
        for protection in absent:
            print(f"{'NOTE':<8} {'protection':<17} {protection.name} not available: {protection.detail}")
        print(f"verdict: {result.verdict}")
    return {"pass": EXIT_OK, "skip": EXIT_INCONCLUSIVE, "inconclusive": EXIT_INCONCLUSIVE}.get(
        result.verdict, EXIT_REJECTED
    )


def run_evaluate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from infra.config import read_context
    from training_gate.domain.inputs import field_problems
    from training_gate.domain.metrics import canonical_name
    from training_gate.domain.models import MetricValue
    from training_gate.domain.policy import Champion, Policy, decide
    from training_gate.domain.report import decision_table

    document = read_json(args.metrics, "metrics")
    values = document.get("metrics", document) if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise UsageError('metrics must be a JSON object {"name": value} or the metrics command\'s output')
    raw_policy = read_json(args.policy, "policy") if args.policy else read_context()["policy"]
    try:
        policy = Policy.model_validate(raw_policy)
    except ValidationError as exc:
        raise UsageError(f"invalid policy: {field_problems(exc)}") from exc
    metrics: dict[str, MetricValue] = {}
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
            raise UsageError(f"metric {name!r} must be a number, got {json.dumps(value)}")
        metrics[canonical_name(name)] = MetricValue.from_raw(
            "nan" if value is None else str(value), name=canonical_name(name), original_name=name, source="log"
        )
    champion = None
    if args.champion:
        values = read_json(args.champion, "champion")
        if not isinstance(values, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()
        ):
            raise UsageError('champion must be a JSON object of numbers, e.g. {"accuracy": 0.91}')
        champion = Champion(
            model_package_arn=str(args.champion), metrics={canonical_name(k): float(v) for k, v in values.items()}
        )
    decision = decide(policy, metrics, None, champion)
    if args.json:
        print(json.dumps(decision.model_dump(mode="json")))
    else:
        print(decision_table(decision))
        print(f"decision: {decision.outcome.value}")
        for reason in decision.reasons:
            print(f"- {reason}")
    return exit_code(decision.outcome.value)


def main(argv: list[str] | None = None) -> int:
    # Node 20 is what this platform offers; the CDK's end-of-life banner says nothing about the gate.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from training_gate_cli.demo import run_demo

            color = not args.no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ
            return run_demo(color=color, as_json=args.json)
        from training_gate_cli.validate import run_validate

        runners = {"metrics": run_metrics, "inspect": run_inspect, "evaluate": run_evaluate, "validate": run_validate}
        return runners[args.command](args)
    except UsageError as exc:
        print(f"training-gate {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
