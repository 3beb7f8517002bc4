"""The artifact inspection: locate, stream and unpack safely, find, load, check version, smoke test.

Each step reports a named check; the first failing step stops the ones that depend on it (they are
reported as skipped), so a reader sees exactly where the artifact fell short.

This module is the parent's half and never unpickles anything: it reads the artifact (it holds the
credentials), hashes the bytes it reads, and pumps them into a disposable child (`sandbox`) that
unpacks, loads and predicts under memory, time and file-size limits (`child`). The child's verdicts
come back as JSON; a child that crashes, hangs or runs out of memory is a named failure of the step
it was in. Failures of the gate's own environment raise `InspectorEnvironmentError` instead.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from training_gate.archive import CHUNK, ArchiveLimits, UnsafeArchive, WorkSpaceExhausted, safe_relative_name
from training_gate.dal.s3 import ArtifactAccessDenied as StoreAccessDenied
from training_gate.dal.s3 import ArtifactNotFound
from training_gate.domain.models import (
    ArtifactInfo,
    CheckResult,
    CheckStatus,
    Finding,
    InspectionResult,
    MetricValue,
    ModelInfo,
    Protection,
    Recognition,
)
from training_gate.inspector.config import CHECK_ORDER, DISK_RESERVE_BYTES, WORK_SPACE_ADVICE, InspectConfig
from training_gate.inspector.errors import ArtifactAccessDenied, InspectorEnvironmentError
from training_gate.inspector.sandbox import ChildLimits, ChildOutcome, Sandbox, default_sandbox

__all__ = ["CHECK_ORDER", "DISK_RESERVE_BYTES", "InspectConfig", "PrefixSource", "TarballSource", "inspect_artifact"]

# The parent reads the artifact in 1 MiB pieces, the size of the pipe: fewer switches to the child.
READ_SIZE = 1 << 20
# The child must end this long before the function does, so the verdict can still be returned.
FUNCTION_TIMEOUT_MARGIN_S = 30.0
# Denials and throttling are the gate's problem, never the model's (S3 and KMS error codes).
_ACCESS_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "InvalidObjectState"})


class _Checks:
    def __init__(self) -> None:
        self.results: list[CheckResult] = []

    def add(self, name: str, status: CheckStatus, detail: str) -> None:
        self.results.append(CheckResult(name=name, status=status, detail=detail))

    def names(self) -> set[str]:
        return {c.name for c in self.results}

    def skip_rest(self, after: str) -> None:
        done = self.names()
        for name in CHECK_ORDER[CHECK_ORDER.index(after) + 1 :]:
            if name not in done:
                self.add(name, CheckStatus.SKIPPED, f"not run: {after} failed")


# -- artifact sources ------------------------------------------------------------------------------


@dataclass
class Materialized:
    files: list[str]
    sha256: str
    bytes: int
    detail: str


class TarballSource:
    """model.tar.gz (CompressionType GZIP): one stream, hashed here and unpacked by the child."""

    def __init__(self, open_stream: Callable[[], BinaryIO]):
        self._open = open_stream

    def open(self) -> BinaryIO:
        return self._open()


class PrefixSource:
    """CompressionType NONE: the model is a set of objects under an S3 prefix, copied with the same caps."""

    def __init__(self, list_objects: Callable[[], list[tuple[str, int]]], open_object: Callable[[str], BinaryIO]):
        self._list = list_objects
        self._open = open_object

    def materialize(self, workdir: Path, limits: ArchiveLimits) -> Materialized:
        """Objects are copied to `workdir` by the parent (it holds the credentials); the child loads them."""
        objects = self._list()
        if not objects:
            raise ArtifactNotFound("no objects under the artifact prefix")
        if len(objects) > limits.max_members:
            raise UnsafeArchive(
                "unpack_limits", f"more than {limits.max_members} objects under the prefix (max_members)"
            )
        total = sum(size for _, size in objects)
        if total > limits.max_total_bytes:
            raise UnsafeArchive("unpack_limits", f"{total} bytes under the prefix, over the cap (max_total_bytes)")
        for relative, size in sorted(objects):
            if size > limits.max_member_bytes:
                raise UnsafeArchive(
                    "unpack_limits", f"object {relative!r} is {size} bytes, over the cap (max_member_bytes)"
                )
        # Within its own caps, an artifact that does not fit the work space is the gate's limit, not the model's.
        if limits.max_written_bytes is not None and total > limits.max_written_bytes:
            raise WorkSpaceExhausted(
                f"the objects under the prefix take {total} bytes, over the {limits.max_written_bytes} bytes free in "
                "the gate's work directory."
            )
        manifest = hashlib.sha256()
        files = []
        for relative, size in sorted(objects):
            if size > limits.max_member_bytes:
                raise UnsafeArchive(
                    "unpack_limits", f"object {relative!r} is {size} bytes, over the cap (max_member_bytes)"
                )
            path = safe_relative_name(relative)
            target = workdir.joinpath(*path.parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                sink = open(target, "xb")
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
                raise UnsafeArchive("member_names", f"object {relative!r} cannot be copied: {exc.strerror}") from exc
            digest = hashlib.sha256()
            written = 0
            with self._open(relative) as source, sink:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    if written > limits.max_member_bytes:
                        raise UnsafeArchive(
                            "unpack_limits", f"object {relative!r} grew past the cap while read (max_member_bytes)"
                        )
                    digest.update(chunk)
                    sink.write(chunk)
            manifest.update(f"{digest.hexdigest()}  {path.as_posix()}\n".encode())
            files.append(path.as_posix())
        sha = manifest.hexdigest()
        return Materialized(
            files=files, sha256=sha, bytes=total, detail=f"{len(files)} object(s) under the prefix, manifest {sha[:12]}"
        )


class _Digest:
    """sha256 and length of the compressed bytes as the parent reads them: the digest that gets
    registered is computed outside the child, which runs the artifact's code."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.complete = False

    def chunks(self, stream: BinaryIO) -> Iterator[bytes]:
        while True:
            try:
                chunk = stream.read(READ_SIZE)
            except Exception as exc:
                raise environment_error(exc, "reading the artifact") from exc
            if not chunk:
                self.complete = True
                return
            self.sha256.update(chunk)
            self.bytes += len(chunk)
            yield chunk


def environment_error(exc: BaseException, doing: str) -> InspectorEnvironmentError:
    """A failure of the gate's access to its inputs, named for operations."""
    if isinstance(exc, InspectorEnvironmentError):
        return exc
    if isinstance(exc, StoreAccessDenied):  # its message names the configuration keys that fix it
        return ArtifactAccessDenied(str(exc))
    code = _client_error_code(exc)
    if code in _ACCESS_CODES or (code or "").startswith("KMS") or isinstance(exc, PermissionError):
        return ArtifactAccessDenied(f"access denied {doing}: {code or exc}")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InspectorEnvironmentError(f"ENOSPC: no space left {doing}: {exc}. {WORK_SPACE_ADVICE}")
    if isinstance(exc, WorkSpaceExhausted):
        return InspectorEnvironmentError(f"{exc} {WORK_SPACE_ADVICE}")
    return InspectorEnvironmentError(f"{doing} failed: {type(exc).__name__}: {exc}")


def _client_error_code(exc: BaseException) -> str | None:
    for candidate in (exc, exc.__cause__):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", "")) or None
    return None


def _open_source(source: TarballSource, uri: str) -> BinaryIO:
    try:
        return source.open()
    except ArtifactNotFound as exc:
        if _client_error_code(exc) in _ACCESS_CODES:  # the store reports a denial as not found
            raise ArtifactAccessDenied(f"access denied reading {uri}: {exc}") from exc
        raise
    except (FileNotFoundError, IsADirectoryError):
        raise ArtifactNotFound(f"artifact not found at {uri}") from None
    except Exception as exc:
        raise environment_error(exc, f"opening {uri}") from exc


def child_limits(config: InspectConfig, remaining_time_s: float | None = None) -> ChildLimits:
    """The child's limits: the configured ones, the wall clock clamped inside the function's timeout."""
    time_s, time_key = config.resolved_time_s(), "time_limit_s"
    if remaining_time_s is not None and remaining_time_s - FUNCTION_TIMEOUT_MARGIN_S < time_s:
        time_s, time_key = max(1.0, remaining_time_s - FUNCTION_TIMEOUT_MARGIN_S), "the function's timeout"
    watch = config.memory_watch
    if watch == "auto":  # macOS accepts RLIMIT_AS and does not enforce it
        watch = "rss" if sys.platform == "darwin" else "rlimit"
    return ChildLimits(
        memory_mib=config.resolved_memory_mib(),
        time_s=time_s,
        file_bytes=config.max_member_bytes + (1 << 20),
        memory_watch=watch,
        time_key=time_key,
    )


def inspect_artifact(
    uri: str,
    source: TarballSource | PrefixSource | Callable[[], BinaryIO],
    config: InspectConfig,
    read_holdout: Callable[[str], BinaryIO] | None = None,
    *,
    sandbox: Sandbox | None = None,
    remaining_time_s: float | None = None,
    work_root: Path | None = None,
    on_child: Callable[[ChildOutcome, ChildLimits], None] | None = None,
    training_image: str | None = None,
) -> InspectionResult:
    """Run every check on the artifact at `uri`. A plain callable is a tarball opener.
    `training_image` (the job's AlgorithmSpecification.TrainingImage) tells a built-in algorithm's
    format and which framework a container trains.

    Raises InspectorEnvironmentError (ArtifactAccessDenied for denials) when the gate itself
    cannot inspect; every problem of the artifact is a check in the result. `on_child` sees how
    the child ended (its peak RSS, its limits): the benchmark reads it."""
    if not isinstance(source, (TarballSource, PrefixSource)):
        source = TarballSource(source)
    limits = child_limits(config, remaining_time_s)
    checks = _Checks()
    artifact = ArtifactInfo(uri=uri)
    model_info = ModelInfo()
    metrics: list[MetricValue] = []
    outcome: ChildOutcome | None = None

    def result() -> InspectionResult:
        recognition = (
            next((m["recognition"] for m in outcome.messages if "recognition" in m), None) if outcome else None
        )
        messages = outcome.messages if outcome else []
        findings = [Finding.model_validate(f) for m in messages for f in m.get("findings", [])]
        return InspectionResult(
            verdict=InspectionResult.verdict_of(checks.results, findings),
            checks=checks.results,
            artifact=artifact,
            model=model_info,
            metrics=metrics,
            recognition=Recognition.model_validate(recognition) if recognition else None,
            protections=[Protection.model_validate(p) for p in outcome.protections] if outcome else [],
            findings=findings,
        )

    try:
        root = Path(tempfile.mkdtemp(prefix="training-gate-", dir=work_root))
    except OSError as exc:
        raise environment_error(exc, "creating the work directory") from exc
    stream: BinaryIO | None = None
    try:
        workdir, tmpdir = root / "artifact", root / "tmp"
        workdir.mkdir()
        tmpdir.mkdir()
        sent = config.model_copy(update={"memory_limit_mib": limits.memory_mib, "time_limit_s": limits.time_s})
        request: dict[str, Any] = {
            "uri": uri,
            "workdir": str(workdir),
            "tmpdir": str(tmpdir),
            "config": sent.model_dump(mode="json"),
            "limits": limits.as_dict(),
            "training_image": training_image,
            "max_written_bytes": max(0, shutil.disk_usage(root).free - DISK_RESERVE_BYTES),
        }
        digest = _Digest()
        data: Iterator[bytes] | None = None
        if isinstance(source, PrefixSource):
            try:
                materialized = source.materialize(workdir, config.limits().with_written(request["max_written_bytes"]))
            except ArtifactNotFound as exc:
                if _client_error_code(exc) in _ACCESS_CODES:
                    raise ArtifactAccessDenied(f"access denied listing or reading {uri}: {exc}") from exc
                checks.add("locate", CheckStatus.FAIL, str(exc))
                checks.skip_rest("locate")
                return result()
            except UnsafeArchive as exc:
                checks.add("locate", CheckStatus.PASS, f"found {uri}")
                checks.add("unpack", CheckStatus.FAIL, f"{exc.check}: {exc.detail}")
                checks.skip_rest("unpack")
                return result()
            except Exception as exc:
                raise environment_error(exc, f"copying {uri}") from exc
            checks.add("locate", CheckStatus.PASS, f"found {uri}")
            checks.add("unpack", CheckStatus.PASS, materialized.detail)
            artifact.sha256, artifact.bytes = materialized.sha256, materialized.bytes
            request["files"] = materialized.files
        else:
            try:
                stream = _open_source(source, uri)
            except ArtifactNotFound as exc:
                checks.add("locate", CheckStatus.FAIL, str(exc))
                checks.skip_rest("locate")
                return result()
            checks.add("locate", CheckStatus.PASS, f"found {uri}")
            data = digest.chunks(stream)
        request["holdout"] = _prepare_holdout(config, read_holdout, root)

        outcome = (sandbox or default_sandbox()).run(request, limits, data)
        if on_child is not None:
            on_child(outcome, limits)
        environment = outcome.environment_failure()
        if environment is not None:
            raise InspectorEnvironmentError(environment)
        if outcome.starved:
            budget = (outcome.last_phase or {}).get("budget_key") if outcome.budget_breached else None
            raise InspectorEnvironmentError(
                f"the artifact's bytes did not arrive within the {budget or f'{limits.time_s:g} s time limit'} "
                f"({digest.bytes} bytes read): the source is too slow, the model was not judged"
            )
        model_info, metrics = _collect(outcome, checks, limits, metrics)
        if data is not None and digest.complete and _passed(checks, "unpack"):
            artifact.sha256, artifact.bytes = digest.sha256.hexdigest(), digest.bytes
            unpack = next(c for c in checks.results if c.name == "unpack")
            unpack.detail += f", sha256 {artifact.sha256[:12]}"
        return result()
    finally:
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
        # The child is dead by now (the sandbox waits for its supervisor's report, which comes after
        # the child and its process group are gone), so nothing writes here any more.
        shutil.rmtree(root, ignore_errors=True)


def sweep_stale_workdirs(root: Path | None = None) -> int:
    """Remove work directories a killed function left behind (a timeout ends the parent too, so its
    `finally` never ran). Only for a function's own /tmp, before any inspection starts there: on a
    shared machine another process's inspection may own them."""
    removed = 0
    for path in Path(root or tempfile.gettempdir()).glob("training-gate-*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _passed(checks: _Checks, name: str) -> bool:
    return any(c.name == name and c.status == CheckStatus.PASS for c in checks.results)


def _prepare_holdout(
    config: InspectConfig, read: Callable[[str], BinaryIO] | None, root: Path
) -> dict[str, str] | None:
    """The holdout set is read here (with the parent's credentials) into the work directory; the
    child only opens the copy. A missing set is the model's verdict, a denied one the gate's error."""
    holdout = config.holdout
    if holdout is None:
        return None
    if read is None:
        return {"error": "a holdout set is configured but the gate cannot read it here"}
    path = root / "holdout.bin"
    try:
        with read(holdout.uri) as handle, open(path, "xb") as sink:
            copied = 0
            while chunk := handle.read(CHUNK):
                copied += len(chunk)
                if copied > holdout.max_bytes:
                    return {"error": f"holdout set {holdout.uri} is larger than max_bytes={holdout.max_bytes}"}
                sink.write(chunk)
    except ArtifactNotFound as exc:
        if _client_error_code(exc) in _ACCESS_CODES:
            raise ArtifactAccessDenied(f"access denied reading the holdout set {holdout.uri}") from exc
        return {"error": f"holdout set not found: {exc}"}
    except Exception as exc:
        raise environment_error(exc, f"reading the holdout set {holdout.uri}") from exc
    return {"path": str(path)}


def _collect(
    outcome: ChildOutcome, checks: _Checks, limits: ChildLimits, metrics: list[MetricValue]
) -> tuple[ModelInfo, list[MetricValue]]:
    """The child's messages as checks; its end, if it did not finish, as the failure of its step."""
    model_info = ModelInfo()
    for message in outcome.messages:
        if "check" in message:
            check = CheckResult.model_validate(message["check"])
            if check.name not in CHECK_ORDER:
                continue
            if check.name not in checks.names():
                checks.results.append(check)
            elif check.status == CheckStatus.FAIL:  # the child failed a step the parent had passed (unpack)
                checks.results = [check if c.name == check.name else c for c in checks.results]
        elif "metrics" in message:
            metrics = metrics + [MetricValue.model_validate(m) for m in message["metrics"]]
        elif "model" in message:
            model_info = ModelInfo.model_validate(message["model"])
    failure = outcome.failure(limits)
    if failure is not None:
        phase = outcome.phase or "unpack"
        if phase not in checks.names():
            checks.add(phase, CheckStatus.FAIL, f"{phase}: {failure}")
        else:  # the step had reported and the child died after it: the next step is where it died
            pending = [n for n in CHECK_ORDER if n not in checks.names()]
            phase = pending[0] if pending else phase
            if pending:
                checks.add(phase, CheckStatus.FAIL, f"{phase}: {failure}")
        checks.skip_rest(phase)
        for name in CHECK_ORDER[: CHECK_ORDER.index(phase)]:
            if name not in checks.names():  # the model loads while the tar is still being unpacked
                checks.add(name, CheckStatus.FAIL, f"{name}: not finished: the child {failure} during {phase}")
    missing = [n for n in CHECK_ORDER if n not in checks.names()]
    if missing:  # fail closed: a step the child never reported is not a pass
        checks.add(missing[0], CheckStatus.FAIL, f"{missing[0]}: the inspection child did not report it")
        checks.skip_rest(missing[0])
    checks.results.sort(key=lambda c: CHECK_ORDER.index(c.name))
    if limits.memory_watch == "rss":
        for check in checks.results:
            if check.name == "load" and check.status == CheckStatus.PASS:
                check.detail += " (memory limit watched as resident size: RLIMIT_AS is not enforced here)"
    return model_info, metrics
