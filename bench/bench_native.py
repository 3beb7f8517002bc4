"""The inspection of XGBoost, LightGBM, CatBoost and ONNX models against loading and predicting with the
framework alone (make bench), on the fixtures of tests/fixtures/native, one core.

For each framework, a model.tar.gz of one fixture (and a pickled XGBClassifier, `xgb-sklearn`, which goes
through the gate's loader), and:
- alone, cold: a fresh interpreter imports the framework, loads the file and predicts six rows (what a
  script pays, import included);
- alone, warm: load and predict in a process that imported the framework already;
- gate, cold: `training-gate inspect --json` in a fresh process (the sandbox's zygote starts, then one
  inspection: unpack, recognise, the gate's parser, the reader's import and load in the child, the smoke
  prediction);
- gate, warm: one more inspection in a process whose sandbox runs already (a reused function environment).
Each is the median of `--repeat` runs. The difference between gate, warm and alone, warm is what the
gate's own checks and the contained child cost per model.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "lambdas")]

from tests.support.native_fixtures import NATIVE, manifest  # noqa: E402
from training_gate_cli.artifacts import pack_model_tar_gz  # noqa: E402

CASES = {
    "xgboost": ("xgboost/3.0.5/binary.ubj", "xgboost-model"),
    "lightgbm": ("lightgbm/4.6.0/multiclass.txt", "model.txt"),
    "catboost": ("catboost/1.2.10/multiclass.cbm", "model.cbm"),
    "onnx": ("onnx/multiclass-forest.onnx", "model.onnx"),
    # A pickled XGBClassifier: the gate's loader (identity, learned states, the Booster validated and converted).
    "xgb-sklearn": ("xgboost/3.2.0/sklearn-binary.pkl", "model.pkl"),
}
# Import, then load and predict: the framework alone, as a script would use it.
IMPORT = {
    "xgboost": "import xgboost as x",
    "lightgbm": "import lightgbm as l",
    "catboost": "import catboost as c",
    "onnx": "import onnxruntime as o",
    "xgb-sklearn": "import pickle, xgboost as x",
}
PREDICT = {
    "xgboost": "b = x.Booster(); b.load_model(P); b.predict(x.DMatrix(n.asarray(R)))",
    "lightgbm": "l.Booster(model_file=P).predict(n.asarray(R))",
    "catboost": "m = c.CatBoost(); m.load_model(P); m.predict(n.asarray(R))",
    "onnx": (
        "s = o.InferenceSession(P, providers=['CPUExecutionProvider']); "
        "s.run(None, {s.get_inputs()[0].name: n.asarray(R, dtype=n.float32)})"
    ),
    "xgb-sklearn": "pickle.load(open(P, 'rb')).predict_proba(n.asarray(R))",
}
ONE_CORE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}


def _rows(framework: str) -> list[list[float]]:
    missing = 0.0 if framework == "onnx" else float("nan")
    return [[missing if v is None else v for v in row] for row in manifest()["probe"]]


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=REPO)
    return time.perf_counter() - started


def _script(framework: str, model: Path, rows: list[list[float]], repeat: int) -> str:
    """Import, then `repeat` loads and predictions, timed; prints the median of those (the warm cost)."""
    data = json.dumps([[None if v != v else v for v in row] for row in rows])
    return "\n".join(
        [
            "import json, time, numpy as n",
            IMPORT[framework],
            f"P = {str(model)!r}",
            f"R = [[float('nan') if v is None else v for v in row] for row in json.loads({data!r})]",
            "times = []",
            f"for _ in range({repeat}):",
            "    t = time.perf_counter()",
            f"    {PREDICT[framework]}",
            "    times.append(time.perf_counter() - t)",
            "print(sorted(times)[len(times) // 2])",
        ]
    )


def bench(framework: str, repeat: int, scratch: Path) -> dict[str, float]:
    path, name = CASES[framework]
    model = NATIVE / path
    rows = _rows(framework)
    artifact = scratch / f"{framework}.tar.gz"
    artifact.write_bytes(pack_model_tar_gz({name: model.read_bytes()}))
    sample = scratch / f"{framework}.json"
    sample.write_text(json.dumps([[None if v != v else v for v in row] for row in rows]))
    python = sys.executable
    env = {**ONE_CORE, "PYTHONPATH": f"{REPO}:{REPO / 'lambdas'}"}
    once = _script(framework, model, rows, 1)
    alone_cold = statistics.median(_timed([python, "-c", once], env) for _ in range(repeat))
    warm = subprocess.run(
        [python, "-c", _script(framework, model, rows, repeat)], check=True, capture_output=True, text=True, env=env
    )
    command = [python, "-m", "training_gate_cli.cli", "inspect", str(artifact), "--sample-input", str(sample), "--json"]
    gate_cold = statistics.median(_timed(command, env) for _ in range(repeat))
    return {
        "alone_cold_s": round(alone_cold, 3),
        "alone_warm_s": round(float(warm.stdout), 4),
        "gate_cold_s": round(gate_cold, 3),
        "gate_warm_s": round(_gate_warm(artifact, rows, repeat), 3),
    }


def _gate_warm(artifact: Path, rows: list[list[float]], repeat: int) -> float:
    from training_gate.inspector.inspect import InspectConfig, inspect_artifact
    from training_gate.inspector.sandbox import default_sandbox

    default_sandbox().start()
    data = artifact.read_bytes()
    config = InspectConfig(sample_input=[[None if v != v else v for v in row] for row in rows])
    times = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        result = inspect_artifact(f"s3://bench/{artifact.name}", lambda: io.BytesIO(data), config)
        times.append(time.perf_counter() - started)
        assert result.verdict == "pass", result.checks
    return statistics.median(times[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--framework", action="append", choices=sorted(CASES))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="training-gate-bench-native-") as scratch:
        results = {f: bench(f, args.repeat, Path(scratch)) for f in args.framework or sorted(CASES)}
    print(f"{'framework':<10} {'alone cold':>11} {'alone warm':>11} {'gate cold':>10} {'gate warm':>10}")
    for framework, row in results.items():
        print(
            f"{framework:<10} {row['alone_cold_s']:>10.3f}s {row['alone_warm_s']:>10.4f}s "
            f"{row['gate_cold_s']:>9.3f}s {row['gate_warm_s']:>9.3f}s"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
