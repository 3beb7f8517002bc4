#!/usr/bin/env python3
"""Writes, or checks, the hashed requirements lock of each supported inspector image.

    python scripts/lock_inspector_image.py                  # relock every pair in infra/inspector_image.py
    python scripts/lock_inspector_image.py --sklearn 1.4.2  # relock one pair
    python scripts/lock_inspector_image.py --check          # make test: every lock resolves for its image
    python scripts/lock_inspector_image.py --base-digests   # pin each base image tag to its digest (Docker)
    python scripts/lock_inspector_image.py --base-digests --dry-run   # what it would run and write

Each pair is resolved by pip itself for the image, not for this machine: `pip install --dry-run --report`
with the base image's Python version, ABI and every manylinux tag its glibc accepts, binary wheels only.
The inputs are scikit-learn, the project's shared pins and the pair's framework readers. The lock pins each
chosen wheel by name, version and sha256, which is what the Dockerfile installs with `--no-deps
--require-hashes --only-binary=:all:`: exactly the lock, nothing resolved at build time. Dependencies a
reader declares but never imports to load and predict (CatBoost's plotting: matplotlib, plotly, graphviz)
are left out with whatever only they need (UNUSED). The check runs the image's install as a dry run (a
missing wheel or a wrong hash fails here, not at deploy), then proves the lock complete: every dependency
each locked package declares for the image's Python and platform is locked too, or declared unused.

`--base-digests` asks the registry which digest each base image tag points at now (`docker buildx imagetools
inspect <tag>`: the multi-platform index, from which the build picks linux/amd64) and records it in
lambdas/inspector-image/base-images.json; the image is then built FROM <tag>@<digest>, the same bytes on every
later deploy until the digests are refreshed again (for the base image's security patches).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.inspector_image import (  # noqa: E402
    BASE_DIGESTS_FILE,
    BUILD_CONTEXT,
    DIGEST_PATTERN,
    LOCK_DIR,
    SUPPORTED_PAIRS,
    ImagePair,
    pip_environment,
)

STAMP = REPO / ".venv" / ".inspector-locks-checked"
# The project's own pins (requirements.txt) that the image shares; a pair's constraints may override one.
SHARED = ("aws-lambda-powertools", "pydantic", "boto3", "joblib", "skops", "isal")
# Left to the resolver within each pair's bounds (the project's pyarrow pin needs glibc 2.28, newer than
# Amazon Linux 2): it picks the newest release with a wheel for the pair's base, and the lock fixes it.
RESOLVED = ("numpy", "scipy", "pyarrow", "pandas")
# The extra the inspector's tracer needs (aws-xray-sdk).
EXTRAS = {"aws-lambda-powertools": "[tracer]"}
# Dependencies a reader declares that loading and predicting never import: CatBoost's plotting and widgets
# (catboost imports them lazily, for plots only). Left out of the image with what only they need.
UNUSED = {"catboost": ("graphviz", "matplotlib", "plotly")}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_pins(requirements: Path = REPO / "requirements.txt") -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;#]+)", line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def inputs(pair: ImagePair) -> list[str]:
    """The top-level requirements the resolver starts from."""
    pins = project_pins()
    overridden = {canonical(re.split(r"[<>=!~]", c, maxsplit=1)[0]) for c in pair.constraints}
    lines = [f"scikit-learn=={pair.sklearn_version}"]
    for name in SHARED:
        if name not in overridden:
            lines.append(f"{name}{EXTRAS.get(name, '')}=={pins[name]}")
    lines += [name for name in RESOLVED if name not in overridden]
    lines += list(pair.readers)
    lines += list(pair.constraints)
    return lines


def marker_environment(pair: ImagePair) -> dict[str, str]:
    """The environment markers of the pair's image (CPython on x86_64 Linux), for requirements' markers."""
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{pair.python_version}.0",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{pair.python_version}.0",
        "python_version": pair.python_version,
        "sys_platform": "linux",
    }


def dependencies(item: dict[str, Any], pair: ImagePair, extras: set[str]) -> dict[str, set[str]]:
    """What one package of pip's report needs on the pair's image: dependency name -> the extras asked of it."""
    from packaging.requirements import InvalidRequirement, Requirement

    environment = marker_environment(pair)
    needed: dict[str, set[str]] = {}
    for line in item["metadata"].get("requires_dist", []):
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise RuntimeError(f"{item['metadata']['name']} declares {line!r}: {exc}") from exc
        marker = requirement.marker
        if marker is None or any(marker.evaluate({**environment, "extra": extra}) for extra in extras | {""}):
            needed.setdefault(canonical(requirement.name), set()).update(requirement.extras)
    return needed


def needed_closure(report: dict[str, Any], pair: ImagePair, roots: dict[str, set[str]]) -> set[str]:
    """Every package the roots need (the report's, and any it lacks), never following a dependency declared
    UNUSED."""
    by_name = {canonical(i["metadata"]["name"]): i for i in report["install"]}
    extras: dict[str, set[str]] = {name: set(asked) for name, asked in roots.items()}
    pending = list(roots)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)  # reached: a name the report lacks is a missing dependency
        if name not in by_name:
            continue
        unused = set(UNUSED.get(name, ()))
        for dependency, asked in dependencies(by_name[name], pair, extras.get(name, set())).items():
            if dependency in unused:
                continue
            extras.setdefault(dependency, set()).update(asked)
            pending.append(dependency)
    return seen


def roots_of(pair: ImagePair) -> dict[str, set[str]]:
    roots: dict[str, set[str]] = {}
    for line in inputs(pair):
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?", line)
        if match:
            roots.setdefault(canonical(match.group(1)), set()).update(filter(None, (match.group(2) or "").split(",")))
    return roots


def target_args(pair: ImagePair) -> list[str]:
    py = pair.python_version.replace(".", "")
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", pair.python_version]
    args += ["--abi", f"cp{py}"]
    for tag in pair.base.platform_tags():
        args += ["--platform", tag]
    return args


def dry_run(pair: ImagePair, requirements: Path, *, require_hashes: bool) -> dict:
    """pip's installation report for `requirements` on the pair's image: resolved when writing a lock,
    exactly the lock's wheels (`--no-deps`, as the image installs it) when checking one."""
    with tempfile.TemporaryDirectory() as target:
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        command += ["--report", "-", "--target", target, *target_args(pair), "-r", str(requirements)]
        if require_hashes:
            command += ["--require-hashes", "--no-deps"]
        result = subprocess.run(command, capture_output=True, text=True, env=pip_environment())
    if result.returncode != 0:
        raise RuntimeError(f"pip could not resolve {requirements.name} for {pair.describe()}:\n{result.stderr}")
    return json.loads(result.stdout)


def write_lock(pair: ImagePair) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.in"
        requirements.write_text("\n".join(inputs(pair)) + "\n")
        report = dry_run(pair, requirements, require_hashes=False)
    needed = needed_closure(report, pair, roots_of(pair))
    entries = []
    for item in report["install"]:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if canonical(name) not in needed:
            continue
        sha256 = item["download_info"]["archive_info"]["hashes"]["sha256"]
        wheel = item["download_info"]["url"].rsplit("/", 1)[-1]
        entries.append((canonical(name), version, sha256, wheel))
    lines = [
        f"# The inspector image for scikit-learn {pair.describe()}.",
        f"# Base {pair.base.image} (glibc {'.'.join(map(str, pair.base.glibc))}), linux/amd64.",
        "# Generated by scripts/lock_inspector_image.py from these inputs; regenerate, do not edit:",
        *(f"#   {line}" for line in inputs(pair)),
        *(
            f"# Left out, declared by {reader} but never imported to load and predict: {', '.join(names)}"
            for reader, names in UNUSED.items()
            if reader in needed
        ),
        "",
    ]
    for name, version, sha256, wheel in sorted(entries):
        lines += [f"{name}=={version} \\", f"    --hash=sha256:{sha256}", f"    # {wheel}"]
    pair.lock_path.parent.mkdir(parents=True, exist_ok=True)
    pair.lock_path.write_text("\n".join(lines) + "\n")
    return pair.lock_path


def locked(lock: Path) -> dict[str, str]:
    return {
        canonical(m.group(1)): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read_text(), flags=re.MULTILINE)
    }


def check(pair: ImagePair) -> str:
    """Raises with the reason when the pair's lock does not install on its image."""
    if not pair.lock_path.exists():
        raise RuntimeError(f"{pair.describe()}: no lock {pair.lock_path.relative_to(REPO)}; run this script")
    pins = locked(pair.lock_path)
    if pins.get("scikit-learn") != pair.sklearn_version:
        raise RuntimeError(f"{pair.lock_path.name} pins scikit-learn {pins.get('scikit-learn')}")
    started = time.monotonic()
    report = dry_run(pair, pair.lock_path, require_hashes=True)
    resolved = {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in report["install"]}
    if resolved != pins:
        raise RuntimeError(f"{pair.lock_path.name}: pip would install {resolved}, the lock says {pins}")
    # The image installs with --no-deps: the lock itself must hold every dependency its packages declare.
    needed = needed_closure(report, pair, roots_of(pair)) | set(roots_of(pair))
    missing_dependencies = sorted(needed - set(pins))
    if missing_dependencies:
        raise RuntimeError(f"{pair.lock_path.name} lacks dependencies: {', '.join(missing_dependencies)}")
    expected = {
        canonical(line.split("==")[0].split("[")[0]): line.split("==")[1] for line in inputs(pair) if "==" in line
    }
    drift = {name: (pins.get(name), version) for name, version in expected.items() if pins.get(name) != version}
    if drift:
        raise RuntimeError(f"{pair.lock_path.name} is stale (locked, wanted): {drift}; run this script")
    # Packages left to the resolver have no pin to compare, but a lock written before one joined lacks it.
    missing = [name for name in RESOLVED if name not in pins]
    if missing:
        raise RuntimeError(f"{pair.lock_path.name} is stale: it lacks {', '.join(missing)}; run this script")
    return (
        f"ok  {pair.lock_path.name}: {len(pins)} hashed wheels install on {pair.base.image} "
        f"(cp{pair.python_version.replace('.', '')}, manylinux up to glibc {'.'.join(map(str, pair.base.glibc))}) "
        f"in {time.monotonic() - started:.1f} s"
    )


def checked_inputs() -> str:
    """A digest of everything a check depends on: when it matches the last passing check, it is skipped locally."""
    files = [REPO / "requirements.txt", REPO / "infra" / "inspector_image.py", Path(__file__).resolve()]
    files += sorted((BUILD_CONTEXT / LOCK_DIR).glob("*"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def digest_command(image: str) -> list[str]:
    return ["docker", "buildx", "imagetools", "inspect", image, "--format", "{{json .Manifest}}"]


def manifest_digest(output: str, image: str) -> str:
    """The digest in `imagetools inspect --format '{{json .Manifest}}'` output: the tag's index (or manifest)."""
    try:
        digest = json.loads(output)["digest"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RuntimeError(f"{image}: `imagetools inspect` printed no manifest digest: {output[:200]!r}") from exc
    if not isinstance(digest, str) or not DIGEST_PATTERN.fullmatch(digest):
        raise RuntimeError(f"{image}: {digest!r} is not a sha256 digest")
    return digest


def refresh_base_digests(dry_run: bool, run: Any = subprocess.run) -> int:
    images = sorted({pair.base.image for pair in SUPPORTED_PAIRS})
    digests: dict[str, str | None] = {}
    for image in images:
        command = digest_command(image)
        if dry_run:
            print(f"would run: {shlex.join(command)}")
            digests[image] = None
            continue
        result = run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"FAIL {image}: {result.stderr.strip() or result.stdout.strip()}", file=sys.stderr)
            return 1
        digests[image] = manifest_digest(result.stdout, image)
        print(f"{image}@{digests[image]}")
    target = BASE_DIGESTS_FILE.relative_to(REPO)
    if dry_run:
        print(f"would write {target} with the digest of each of: {', '.join(images)}")
        return 0
    BASE_DIGESTS_FILE.write_text(json.dumps(digests, indent=2, sort_keys=True) + "\n")
    print(f"wrote {target}: commit it with the change")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="check every lock instead of writing")
    parser.add_argument("--sklearn", action="append", help="only this sklearn_version (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="pairs resolved at once (network-bound)")
    parser.add_argument("--force", action="store_true", help="check even when nothing changed since the last pass")
    parser.add_argument("--base-digests", action="store_true", help="pin each base image tag to its current digest")
    parser.add_argument("--dry-run", action="store_true", help="with --base-digests: print, run nothing, write nothing")
    args = parser.parse_args(argv)
    if args.base_digests:
        return refresh_base_digests(args.dry_run)
    pairs = [p for p in SUPPORTED_PAIRS if not args.sklearn or p.sklearn_version in args.sklearn]
    if args.sklearn and len(pairs) != len(set(args.sklearn)):
        parser.error(f"supported: {', '.join(p.sklearn_version for p in SUPPORTED_PAIRS)}")
    # CI proves every lock on each run; locally a pass stays valid until a lock or its inputs change.
    in_ci = os.environ.get("CI", "").lower() == "true"
    digest = checked_inputs()
    if args.check and not (args.force or in_ci or args.sklearn) and STAMP.exists() and STAMP.read_text() == digest:
        print("inspector image locks: unchanged since they last resolved (--force or CI=true checks again)")
        return 0
    started = time.monotonic()
    failures = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pair: pool.submit(check if args.check else write_lock, pair) for pair in pairs}
        for pair, future in futures.items():
            try:
                outcome = future.result()
            except RuntimeError as exc:
                failures.append(pair)
                print(f"FAIL {pair.lock_name}: {exc}", file=sys.stderr)
            else:
                print(outcome if args.check else f"wrote {Path(outcome).relative_to(REPO)}")
    known = {p.lock_name for p in SUPPORTED_PAIRS}
    orphans = [p.name for p in sorted((BUILD_CONTEXT / LOCK_DIR).glob("requirements-*.txt")) if p.name not in known]
    for orphan in orphans:
        print(f"FAIL {orphan}: belongs to no pair in infra/inspector_image.py; delete it", file=sys.stderr)
    elapsed = time.monotonic() - started
    print(f"inspector image locks: {len(pairs) - len(failures)} of {len(pairs)} ok in {elapsed:.1f} s")
    if failures or orphans:
        return 1
    if args.check and not args.sklearn:
        STAMP.parent.mkdir(parents=True, exist_ok=True)
        STAMP.write_text(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
