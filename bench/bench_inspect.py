"""Artifact inspection benchmark (make bench): a generated ~300 MB model.tar.gz, one core.

Three numbers, each measured in a fresh process: the floor (inflate + sha256 of the same bytes, one
pass, with the fastest inflater installed), the gate's inspection (stream, digest, safe unpack,
allowlisted load, smoke prediction), and the naive path (extractall + joblib.load). Peak RSS is
reported for each next to the size of the loaded model.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ONE_CORE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CACHE = Path(tempfile.gettempdir()) / "training-gate-bench"


def build_artifact(megabytes: int) -> Path:
    """A LogisticRegression whose coefficients weigh `megabytes`: half random (incompressible),
    half repetitive, as real weight arrays partly are."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    path = CACHE / f"model-{megabytes}mb.tar.gz"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    classes = 4
    features = megabytes * (1 << 20) // (8 * classes)
    rng = np.random.default_rng(0)
    coef = np.empty((classes, features))
    half = features // 2
    coef[:, :half] = rng.standard_normal((classes, half))
    coef[:, half:] = np.round(rng.standard_normal((classes, features - half)), 1)
    model = LogisticRegression()
    model.coef_, model.intercept_ = coef, np.zeros(classes)
    model.classes_, model.n_features_in_ = np.arange(classes), features
    raw = io.BytesIO()
    joblib.dump(model, raw)
    with tarfile.open(path, "w:gz", compresslevel=6) as archive:
        info = tarfile.TarInfo("model.joblib")
        info.size = raw.getbuffer().nbytes
        raw.seek(0)
        archive.addfile(info, raw)
    return path


def floor(path: Path) -> dict:
    from training_gate.archive import _zlib

    digest = hashlib.sha256()
    inflater = _zlib.decompressobj(_zlib.MAX_WBITS | 16)
    inflated = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            inflated += len(inflater.decompress(chunk))
    return {"inflated": inflated, "inflater": _zlib.__name__}


LIMITS = {"max_member_bytes": 4 << 30, "max_total_bytes": 8 << 30}


def stream_check(path: Path) -> dict:
    """The streaming part alone: digest, walk, caps; the model member is read through and dropped."""
    from training_gate.archive import CHUNK, ArchiveLimits, unpack_stream

    def drain(stream) -> None:
        while stream.read(CHUNK):
            pass

    with tempfile.TemporaryDirectory() as workdir, open(path, "rb") as handle:
        result = unpack_stream(handle, Path(workdir), ArchiveLimits(**LIMITS), claim=lambda name: drain)
    return {"sha256": result.sha256[:12]}


def inspection(path: Path) -> dict:
    from training_gate.inspector.inspect import InspectConfig, TarballSource, inspect_artifact

    result = inspect_artifact(str(path), TarballSource(lambda: open(path, "rb")), InspectConfig(**LIMITS))
    return {"verdict": result.verdict, "checks": {c.name: c.status.value for c in result.checks}}


def naive(path: Path) -> dict:
    import joblib

    with tempfile.TemporaryDirectory() as workdir:
        with tarfile.open(path, "r:gz") as archive:
            archive.extractall(workdir, filter="data")
        model = joblib.load(Path(workdir) / "model.joblib")
    return {"class": type(model).__name__}


def peak_rss_mb() -> float:
    """VmHWM: the high-water mark of this process's resident memory (reset by exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(kind: str, path: Path) -> None:
    # Warm state, as in a warm function: modules imported and the allowlist built before timing.
    from training_gate.inspector.loader import default_allowlist

    default_allowlist()
    imports_mb = peak_rss_mb()
    started = time.perf_counter()
    outcome = {"floor": floor, "stream_check": stream_check, "inspection": inspection, "naive": naive}[kind](path)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {"kind": kind, "seconds": elapsed, "peak_rss_mb": peak_rss_mb(), "imports_mb": imports_mb, **outcome}
        )
    )


def run(kind: str, path: Path) -> dict:
    env = {**os.environ, **ONE_CORE}
    command = ["taskset", "-c", "0", sys.executable, __file__, "--child", kind, str(path)]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=300)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    path = build_artifact(args.megabytes)
    size_mb = path.stat().st_size / 1e6
    model_mb = args.megabytes * (1 << 20) / 1e6
    results = {kind: run(kind, path) for kind in ("floor", "stream_check", "inspection", "naive")}
    assert results["inspection"]["verdict"] == "pass", results["inspection"]
    print(f"artifact {size_mb:,.0f} MB compressed, model arrays {model_mb:,.0f} MB; one core, warm imports")
    for kind, result in results.items():
        rate = size_mb / result["seconds"]
        print(
            f"{kind:<13} {result['seconds']:6.2f} s  {rate:7.1f} MB/s of artifact  "
            f"{rate / (size_mb / results['floor']['seconds']):4.2f}x floor  "
            f"peak RSS {result['peak_rss_mb']:,.0f} MB ({result['peak_rss_mb'] - result['imports_mb']:+,.0f} MB "
            "over imports)"
        )
    for kind in ("stream_check", "inspection"):
        extra = results[kind]["peak_rss_mb"] - results[kind]["imports_mb"] - (model_mb if kind == "inspection" else 0)
        print(
            f"{kind}: peak RSS above imports{' and the loaded model' if kind == 'inspection' else ''}: "
            f"{extra:,.0f} MB (target <= 64 MB)"
        )
    print(f"floor inflater: {results['floor']['inflater']}")


if __name__ == "__main__":
    main()
