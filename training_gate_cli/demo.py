"""`training-gate demo`: four training jobs through the synthesized gate on the local engine: two scikit-learn
jobs (one registered, one rejected), a built-in XGBoost job judged by the metrics XGBoost logs, and a job that
failed."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from dataclasses import dataclass
from typing import Any, TextIO

from training_gate.dal.sagemaker import ModelRegistry
from training_gate_cli.artifacts import iris_model_joblib, iris_xgboost_model, pack_model_tar_gz
from training_gate_cli.local_engine import ExecutionResult, LocalGate, load_template
from training_gate_cli.local_engine.emulated import create_training_job, state_change_event, training_log
from training_gate_cli.synth import synthesize

WIDTH = 100


# The built-in XGBoost container's MetricDefinitions for what it logs each round (it defines 36; these are the
# ones a binary:logistic job with eval_metric logloss, error and auc prints).
XGBOOST_METRIC_DEFINITIONS = [
    {
        "Name": f"{split}:{metric}",
        "Regex": rf".*\[[0-9]+\].*#011{split}-{metric}:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*",
    }
    for split in ("train", "validation")
    for metric in ("logloss", "error", "auc")
]


def xgboost_log(logloss: float, error: float, auc: float, rounds: int = 10) -> list[str]:
    """The built-in container's log: one line per round, `#011` for the tab CloudWatch shows that way."""
    lines = ["INFO:sagemaker_xgboost_container.training:Running XGBoost Sagemaker in algorithm mode"]
    for round_ in range(rounds):
        left = rounds - round_ - 1  # the values improve towards the last round's
        train = f"#011train-logloss:{logloss * 0.8 + 0.02 * left:.5f}#011train-error:{error * 0.5:.5f}"
        valid = (
            f"#011validation-logloss:{logloss + 0.02 * left:.5f}#011validation-error:{error + 0.001 * left:.5f}"
            f"#011validation-auc:{auc - 0.001 * left:.5f}"
        )
        lines.append(f"[{round_}]{train}{valid}")
    return lines


@dataclass(frozen=True)
class Scenario:
    job_name: str
    title: str
    log_lines: list[str] | None
    final_status: str
    expected_status: str  # the execution's status
    expected_error: str | None
    failure_reason: str | None = None
    framework: str = "scikit-learn"  # which artifact the job leaves: scikit-learn or xgboost
    metric_definitions: list[dict[str, str]] | None = None


def scenarios(stamp: str) -> list[Scenario]:
    return [
        Scenario(
            f"iris-good-{stamp}",
            "a job that meets the policy",
            training_log(0.912, 0.905, 0.908, 0.901, 0.905),
            "Completed",
            "SUCCEEDED",
            None,
        ),
        Scenario(
            f"iris-weak-{stamp}",
            "a job whose metrics miss the thresholds",
            training_log(0.752, 0.71, 0.74, 0.70, 0.72),
            "Completed",
            "FAILED",
            "ModelRejected",
        ),
        Scenario(
            f"iris-xgboost-{stamp}",
            "a built-in XGBoost job, judged by the validation:logloss, error and auc it logged",
            xgboost_log(0.105, 0.027, 0.996),
            "Completed",
            "SUCCEEDED",
            None,
            framework="xgboost",
            metric_definitions=XGBOOST_METRIC_DEFINITIONS,
        ),
        Scenario(
            f"iris-crashed-{stamp}",
            "a job that failed",
            ["[INFO] Loading training data", "Traceback (most recent call last):", "ValueError: Input contains NaN"],
            "Failed",
            "FAILED",
            "TrainingJobFailed",
            failure_reason="AlgorithmError: ValueError: Input contains NaN, infinity or a value too large "
            "for dtype('float64'). Check the training data in channel train.",
        ),
    ]


class Printer:
    def __init__(self, out: TextIO, color: bool):
        self.out = out
        self.color = color

    def line(self, text: str = "") -> None:
        """Lines folded to fit a 100-column terminal; a URL longer than that stays whole, to be copied."""
        for line in text.split("\n"):
            indent = line[: len(line) - len(line.lstrip(" |"))]
            rows = textwrap.wrap(
                line, WIDTH, subsequent_indent=indent + "  ", break_long_words=False, break_on_hyphens=False
            )
            for row in rows or [line]:
                print(row, file=self.out, flush=True)

    def mark(self, text: str, good: bool) -> str:
        if not self.color:
            return text
        return f"\033[{'32' if good else '31'}m{text}\033[0m"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def run_scenario(gate: LocalGate, scenario: Scenario, artifact: bytes, printer: Printer) -> dict[str, Any]:
    printer.line(f"== {scenario.job_name}: {scenario.title}")
    job = create_training_job(
        gate,
        scenario.job_name,
        log_lines=scenario.log_lines,
        final_status=scenario.final_status,
        failure_reason=scenario.failure_reason,
        artifact=artifact if scenario.final_status == "Completed" else None,
        metric_definitions=scenario.metric_definitions,
    )
    event = state_change_event(job, scenario.final_status)
    execution_input = gate.route_event(event)
    if execution_input is None:
        printer.line("   the EventBridge rule did not match the event: nothing started")
        return {"job": scenario.job_name, "as_designed": False, "status": None}
    printer.line(f"   EventBridge rule matched; state machine input: {json.dumps(execution_input)}")

    def on_state(name: str, elapsed: float) -> None:
        printer.line(f"   [{elapsed:6.2f}s] {name}")

    result = gate.run(execution_input, name=scenario.job_name, on_state=on_state)
    notes = list(gate.notifications())
    as_designed = result.status == scenario.expected_status and result.error == scenario.expected_error
    summary = _describe(result, notes, printer)
    verdict = printer.mark("as designed" if as_designed else "NOT as designed", as_designed)
    printer.line(f"   => execution {result.status}{f' ({result.error})' if result.error else ''}: {verdict}")
    printer.line()
    return {
        "job": scenario.job_name,
        "as_designed": as_designed,
        "status": result.status,
        "error": result.error,
        "states": result.states,
        "transitions": result.transitions,
        "notifications": [{"subject": n.get("Subject"), "message": n.get("Message")} for n in notes],
        **summary,
    }


def _describe(result: ExecutionResult, notes: list[dict[str, Any]], printer: Printer) -> dict[str, Any]:
    if result.status == "SUCCEEDED" and result.output and result.output.get("model_package_arn"):
        arn = result.output["model_package_arn"]
        package = ModelRegistry().describe_package(arn)
        printer.line("   Validation report:")
        printer.line(_indent(result.output["table"], "     "))
        printer.line(
            f"   Decision: {printer.mark('REGISTERED', True)} as version {result.output['model_package_version']} "
            f"of {package['ModelPackageGroupName']} ({package['ModelApprovalStatus']})"
        )
        printer.line(f"   Model package: {arn}")
        metadata = package.get("CustomerMetadataProperties", {})
        if metadata.get("model_framework"):
            printer.line(
                f"   Model: {metadata['model_framework']} {metadata.get('model_format', '')}, read by "
                f"{metadata.get('model_reader', '?')} (the package's metadata)"
            )
        printer.line(f"   Report: {result.output['report_uri']}")
        return {"model_package_arn": arn, "model_package_version": result.output["model_package_version"]}
    for note in notes:
        printer.line(f"   Notification published to SNS: {note.get('Subject')}")
        printer.line(_indent(note.get("Message", ""), "     | "))
    return {}


def run_demo(out: TextIO | None = None, color: bool = False, as_json: bool = False) -> int:
    out = out or sys.stdout
    printer = Printer(sys.stderr if as_json else out, color)
    started = time.monotonic()
    printer.line("training-gate demo: the synthesized gate on an emulated AWS account (no AWS account used)")
    template = synthesize()
    printer.line(f"template: {template}")
    artifacts = {
        "scikit-learn": pack_model_tar_gz({"model.joblib": iris_model_joblib()}),
        "xgboost": pack_model_tar_gz({"xgboost-model": iris_xgboost_model()}),
    }
    printer.line(f"model.tar.gz: iris LogisticRegression pipeline, {len(artifacts['scikit-learn'])} bytes")
    printer.line(f"model.tar.gz: built-in XGBoost (UBJSON xgboost-model), {len(artifacts['xgboost'])} bytes")
    printer.line()
    stamp = time.strftime("%H%M%S")
    with LocalGate(load_template(template), assets=template.parent) as gate:
        results = [run_scenario(gate, s, artifacts[s.framework], printer) for s in scenarios(stamp)]
    ok = all(r["as_designed"] for r in results)
    elapsed = time.monotonic() - started
    printer.line(f"{sum(r['as_designed'] for r in results)}/{len(results)} jobs ended as designed in {elapsed:.1f} s")
    if as_json:
        print(json.dumps({"ok": ok, "seconds": round(elapsed, 2), "jobs": results}), file=out)
    return 0 if ok else 1
