#!/usr/bin/env python3
"""Runs the inspector's tests on the library versions of an image lock, in a virtual environment of their own.

    python scripts/inspector_lock_tests.py                  # the lock of cdk.json's sklearn_version
    python scripts/inspector_lock_tests.py --sklearn 1.2.1  # another supported pair
    python scripts/inspector_lock_tests.py --all            # every supported pair, each on its pythonX.Y

The main environment runs the project's scikit-learn (requirements.txt); the image runs the lock's. This
environment holds the lock's versions (scikit-learn, numpy, scipy, joblib and the rest) plus pytest and
hypothesis, and nothing of the CDK or moto stack. It is built on this machine's Python, which may differ
from the image's: the output says so. It is kept between runs and rebuilt when its requirements change.
SKIP_INSPECTOR_LOCK_TESTS=1 skips it locally; with CI=true it always runs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.inspector_image import SUPPORTED_PAIRS, image_pair, pip_environment  # noqa: E402

# The one list of what this environment runs: globs, so new inspector test files join by their name.
INSPECTOR_TESTS = (
    "tests/unit/test_archive*.py",
    "tests/unit/test_checkpoints*.py",
    "tests/unit/test_inspector*.py",
    "tests/unit/test_loader*.py",
    "tests/unit/test_native_*.py",
    "tests/unit/test_sandbox*.py",
    "tests/unit/test_structures*.py",
)
# Besides the lock: the test tools, at the project's pins (requirements-dev.txt), unless the lock has them.
# pandas comes from the lock itself (the image reads CSV and Parquet holdouts), at the version its numpy allows.
TEST_TOOLS = ("pytest", "hypothesis")
SKIP_VARIABLE = "SKIP_INSPECTOR_LOCK_TESTS"
ENVS = REPO / ".venv" / "lock-envs"
SHOWN = ("scikit-learn", "numpy", "scipy", "joblib", "xgboost-cpu", "lightgbm", "catboost", "onnx", "onnxruntime")


def pins_of(path: Path) -> dict[str, str]:
    return {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;#\\]+)", path.read_text(), flags=re.MULTILINE)
    }


def default_sklearn_version() -> str:
    from infra.config import GateConfig, read_context

    return read_context().get("sklearn_version") or GateConfig.model_fields["sklearn_version"].default


def requirements(lock: Path) -> list[str]:
    """The lock's versions without its hashes (those are for the image's platform, not this machine's)."""
    dev = pins_of(REPO / "requirements-dev.txt")
    locked = pins_of(lock)
    tools = [f"{tool}=={dev[tool]}" for tool in TEST_TOOLS if tool not in locked]
    return [f"{n}=={v}" for n, v in locked.items()] + tools


def python_version_of(python: str) -> str:
    command = [python, "-c", "import platform; print(platform.python_version())"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def ensure_env(python: str, name: str, wanted: list[str]) -> Path:
    """One environment per requirement set (its digest in the name): checkouts that differ in their
    requirements each keep their own instead of rebuilding one another's."""
    digest = hashlib.sha256("\n".join([python, *wanted]).encode()).hexdigest()
    env = ENVS / f"{name}-{digest[:10]}"
    stamp = env / ".requirements.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return env
    shutil.rmtree(env, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(env)], check=True)
    requirements_file = env / "requirements.txt"
    requirements_file.write_text("\n".join(wanted) + "\n")
    command = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    try:
        subprocess.run(
            [*command, "--only-binary=:all:", "-r", str(requirements_file)], check=True, env=pip_environment()
        )
    except subprocess.CalledProcessError:
        shutil.rmtree(env, ignore_errors=True)
        raise
    stamp.write_text(digest)
    return env


def interpreter_for(python_version: str, default: str) -> str:
    """pythonX.Y from PATH if it runs (a version manager's shim may not), else `default`."""
    found = shutil.which(f"python{python_version}")
    if found:
        try:
            if python_version_of(found).startswith(f"{python_version}."):
                return found
        except subprocess.CalledProcessError:
            pass
    return default


def run_pair(sklearn_version: str, python: str, pytest_args: list[str]) -> int:
    pair = image_pair(sklearn_version)
    locked = pins_of(pair.lock_path)
    version = python_version_of(python)
    print(
        f"inspector tests on {pair.lock_path.name}: "
        + ", ".join(f"{name} {locked[name]}" for name in SHOWN if name in locked)
        + f"; Python {version}"
    )
    if not version.startswith(f"{pair.python_version}."):
        print(
            f"NOTE: this Python is {version}, the image's is {pair.python_version}: the library versions are the "
            f"image's, the interpreter is not (--python picks another)"
        )
    started = time.monotonic()
    try:
        env = ensure_env(python, f"py{version}-sklearn-{pair.sklearn_version}", requirements(pair.lock_path))
    except subprocess.CalledProcessError:
        print(
            f"FAIL: pip could not install {pair.lock_path.name}'s versions on Python {version} (above: the first "
            f"missing wheel); run with --python python{pair.python_version}",
            file=sys.stderr,
        )
        return 1
    print(f"environment ready in {time.monotonic() - started:.1f} s")
    files = sorted({str(p.relative_to(REPO)) for pattern in INSPECTOR_TESTS for p in REPO.glob(pattern)})
    # The project is used from the source tree, not installed: nothing but the lock enters the environment.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "lambdas"), str(REPO)])}
    environment.pop("VIRTUAL_ENV", None)
    command = [str(env / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *files, *pytest_args]
    return subprocess.run(command, cwd=REPO, env=environment).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sklearn", help=f"one of {', '.join(p.sklearn_version for p in SUPPORTED_PAIRS)}")
    parser.add_argument("--all", action="store_true", help="every supported pair, each on its own pythonX.Y")
    parser.add_argument(
        "--python-for",
        action="append",
        default=[],
        metavar="X.Y=PATH",
        help="with --all: the interpreter for the pairs of Python X.Y (default: pythonX.Y on PATH)",
    )
    parser.add_argument("--python", default=sys.executable, help="the interpreter to build on (default: this one)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest after the test files")
    args = parser.parse_args(argv)
    in_ci = os.environ.get("CI", "").lower() == "true"
    if os.environ.get(SKIP_VARIABLE):
        if not in_ci:
            print(f"inspector tests on the image lock: skipped ({SKIP_VARIABLE} is set)")
            return 0
        print(f"{SKIP_VARIABLE} is ignored in CI: the inspector tests run on the image lock")
    if not args.all:
        return run_pair(args.sklearn or default_sklearn_version(), args.python, args.pytest_args)
    chosen = dict(item.split("=", 1) for item in args.python_for)
    results = []
    for pair in SUPPORTED_PAIRS:
        python = chosen.get(pair.python_version) or interpreter_for(pair.python_version, args.python)
        started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        code = run_pair(pair.sklearn_version, python, args.pytest_args)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        results.append((pair.sklearn_version, code, time.monotonic() - started, cpu))
    # CPU as the kernel accounts it to this process's children: pytest and what it waits for, not the
    # sandbox's inspection children (the zoo test prints theirs).
    for version, code, wall, cpu in results:
        verdict = "passed" if code == 0 else f"FAILED ({code})"
        print(f"scikit-learn {version}: {verdict} in {wall:.0f} s, {cpu:.0f} s of CPU")
    return max(code for _version, code, _wall, _cpu in results)


if __name__ == "__main__":
    sys.exit(main())
