"""Cost and cold start of the registered path (make bench).

- State transitions and Lambda invocations of one execution for a completed job, from the execution
  history on the local engine (targets: <= 12 transitions, <= 5 invocations).
- Cold import time of each handler module in a fresh interpreter with the function's environment
  (median of 7; target < 150 ms for every function but the inspector).
- Deployment package size of the zip functions against Lambda's limits.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
HANDLERS = (
    "validate_input",
    "describe_training_job",
    "collect_metrics",
    "evaluate_policy",
    "register_model",
    "describe_failure",
    "record_outcome",
    "alert_operations",
    "inspect_artifact",
)
RUNS = 7


def registered_path() -> None:
    from training_gate_cli.artifacts import iris_model_joblib, pack_model_tar_gz
    from training_gate_cli.local_engine import LocalGate, load_template
    from training_gate_cli.local_engine.emulated import create_training_job, training_log
    from training_gate_cli.synth import synthesize

    template = synthesize()
    with LocalGate(load_template(template), assets=template.parent) as gate:
        artifact = pack_model_tar_gz({"model.joblib": iris_model_joblib()})
        log = training_log(0.91, 0.905, 0.908, 0.901, 0.905)
        for name in ("bench-first", "bench-second"):  # the second finds its group: the steady state
            create_training_job(gate, name, log_lines=log, artifact=artifact, statuses=())
            result = gate.run({"TrainingJobName": name}, name=name)
        invocations = sum(
            1
            for e in result.history
            if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled")
            and (
                e.get("taskScheduledEventDetails", {}).get("resource") == "invoke"
                or "lambdaFunctionScheduledEventDetails" in e
            )
        )
    print(
        f"registered path of a completed job: {result.transitions} state transitions, {invocations} Lambda "
        f"invocations ({' -> '.join(result.states)})"
    )


def lambda_environment(template: dict, handler: str) -> dict[str, str]:
    """The environment a cold start of `handler`'s function sees: the function's own variables from
    the synthesized template (references replaced by placeholders) and those Lambda sets itself.
    LAMBDA_TASK_ROOT matters: without it the X-Ray SDK builds a sampling client at import, which it
    never does in Lambda."""
    service = f"training-gate-{handler}"
    for resource in template["Resources"].values():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if resource["Type"] == "AWS::Lambda::Function" and variables.get("POWERTOOLS_SERVICE_NAME") == service:
            own = {k: v if isinstance(v, str) else "unresolved-reference" for k, v in variables.items()}
            break
    else:
        raise LookupError(f"no function in the template runs {handler}")
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    return {
        **keep,
        **own,
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_LAMBDA_FUNCTION_NAME": service,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    }


# What a handler that calls AWS cannot do without, and nothing of the gate's own: the libraries the
# functions are built on, set up as the handlers set them up.
LIBRARIES_ALONE = """
import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import parse
from pydantic import BaseModel
Logger(); Metrics(namespace="TrainingGate"); Tracer(auto_patch=False).patch(["botocore"])
class Model(BaseModel):
    field: int
"""


def _median_import_ms(code: str, env: dict[str, str]) -> float:
    timer = f"import time; started = time.perf_counter()\n{code}\nprint(time.perf_counter() - started)"
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", timer], env=env, capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        * 1000
        for _ in range(RUNS)
    ]
    return statistics.median(samples)


def cold_imports() -> None:
    from training_gate_cli.local_engine import load_template
    from training_gate_cli.synth import synthesize

    template = load_template(synthesize())
    for handler in HANDLERS:
        median = _median_import_ms(f"import training_gate.handlers.{handler}", lambda_environment(template, handler))
        target = (
            "inspector: scikit-learn" if handler == "inspect_artifact" else ("ok" if median < 150 else "OVER 150 ms")
        )
        print(f"cold import {handler:<17} {median:7.1f} ms  ({target})")
    alone = _median_import_ms(LIBRARIES_ALONE, lambda_environment(template, "evaluate_policy"))
    print(f"cold import of the libraries alone (boto3, Powertools with Tracer, pydantic): {alone:.1f} ms")


def package_sizes() -> None:
    root = REPO / "lambdas"
    excluded = ("training_gate/inspector", "training_gate/handlers/inspect_artifact.py")
    files = [
        p
        for p in root.rglob("*.py")
        if not any(str(p.relative_to(root)).startswith(e) for e in excluded) and "__pycache__" not in p.parts
    ]
    raw = sum(p.stat().st_size for p in files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(root))
    print(
        f"zip functions' code: {raw / 1024:.0f} KiB unzipped, {len(buffer.getvalue()) / 1024:.0f} KiB zipped "
        "(limits 250 MB unzipped with layers, 50 MB zipped); dependencies come from the Powertools layer"
    )
    print("inspector: container image (limit 10 GB), built at deploy; its size is known only after `docker build`")


if __name__ == "__main__":
    registered_path()
    cold_imports()
    package_sizes()
