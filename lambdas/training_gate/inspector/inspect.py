"""The artifact inspection: locate, stream and unpack safely, find, load, check version, smoke test.

Each step reports a named check; the first failing step stops the ones that depend on it (they are
reported as skipped), so a reader sees exactly where the artifact fell short.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

import numpy as np
import sklearn
from pydantic import BaseModel, ConfigDict, Field

from training_gate.archive import CHUNK, ArchiveLimits, Consumer, UnsafeArchive, safe_relative_name, unpack_stream
from training_gate.dal.s3 import ArtifactNotFound
from training_gate.domain.models import (
    ArtifactInfo,
    CheckResult,
    CheckStatus,
    HoldoutConfig,
    InspectionResult,
    MetricValue,
    ModelInfo,
)
from training_gate.inspector.holdout import holdout_check
from training_gate.inspector.loader import LoadedModel, RefusedGlobal, UntrustedTypes, load_model, load_model_stream
from training_gate.logic.evaluation_files import read_evaluation_files

MODEL_SUFFIXES = ("*.joblib", "*.pkl", "*.pickle", "*.skops")
CHECK_ORDER = (
    "locate",
    "unpack",
    "find_model",
    "load",
    "version_skew",
    "smoke_prediction",
    "reference_predictions",
    "holdout",
)
# A training script may ship what its model predicted on a few rows: {"inputs": [[...]],
# "predictions": [...], "probabilities": [[...]] (optional)}. The gate compares.
REFERENCE_FILE = "reference_predictions.json"
PROBA_SUM_TOLERANCE = 1e-6


class InspectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_input: Annotated[list[list[float]] | None, Field(min_length=1)] = None
    model_file: str | None = Field(default=None, description="file name or glob of the model file")
    version_skew: Literal["fail", "warn"] = "fail"
    reference_tolerance: Annotated[float, Field(ge=0)] = 1e-6
    holdout: HoldoutConfig | None = None
    extra_allowed_globals: list[str] = []
    max_members: int = ArchiveLimits.max_members
    max_member_bytes: int = ArchiveLimits.max_member_bytes
    max_total_bytes: int = ArchiveLimits.max_total_bytes

    def limits(self) -> ArchiveLimits:
        return ArchiveLimits(
            max_members=self.max_members,
            max_member_bytes=self.max_member_bytes,
            max_total_bytes=self.max_total_bytes,
        )


class _Checks:
    def __init__(self) -> None:
        self.results: list[CheckResult] = []

    def add(self, name: str, status: CheckStatus, detail: str) -> None:
        self.results.append(CheckResult(name=name, status=status, detail=detail))

    def skip_rest(self, after: str) -> None:
        for name in CHECK_ORDER[CHECK_ORDER.index(after) + 1 :]:
            self.add(name, CheckStatus.SKIPPED, f"not run: {after} failed")


def is_model_candidate(name: str, pattern: str | None) -> bool:
    patterns = (pattern,) if pattern else MODEL_SUFFIXES
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(Path(name).name, p) for p in patterns)


def find_model_file(files: list[str], pattern: str | None) -> tuple[str | None, str]:
    """The one model file, or None with a sentence listing what was found."""
    candidates = sorted(f for f in files if is_model_candidate(f, pattern))
    if len(candidates) == 1:
        return candidates[0], f"model file {candidates[0]}"
    wanted = pattern or " / ".join(MODEL_SUFFIXES)
    if not candidates:
        return None, f"no model file matching {wanted}; the artifact holds: {', '.join(files) or 'nothing'}"
    return None, f"ambiguous: {len(candidates)} files match {wanted}: {', '.join(candidates)}; set model_file"


def _sample_rows(model: Any, config: InspectConfig) -> tuple[np.ndarray, str]:
    if config.sample_input is not None:
        return np.asarray(config.sample_input, dtype=float), "configured sample input"
    n_features = getattr(model, "n_features_in_", None)
    if not isinstance(n_features, int) or n_features <= 0:
        raise ValueError("no sample input is configured and the model does not declare n_features_in_")
    return np.zeros((1, n_features)), f"derived sample: one row of {n_features} zeros (no sample configured)"


def smoke_prediction(model: Any, config: InspectConfig) -> tuple[CheckStatus, str]:
    if not callable(getattr(model, "predict", None)):
        return CheckStatus.FAIL, f"{type(model).__name__} has no predict method: not an estimator"
    try:
        rows, origin = _sample_rows(model, config)
    except ValueError as exc:
        return CheckStatus.FAIL, f"no usable sample input: {exc}"
    if config.sample_input is not None and not np.all(np.isfinite(rows)):
        return CheckStatus.FAIL, "the sample input holds NaN or infinity: give finite rows"
    # The rows are finite (checked above, or zeros made here); scikit-learn would check them again on
    # each of the three calls, a full pass over a wide sample each time.
    with sklearn.config_context(assume_finite=True):
        return _smoke_calls(model, rows, origin)


def _smoke_calls(model: Any, rows: np.ndarray, origin: str) -> tuple[CheckStatus, str]:
    try:
        first = np.asarray(model.predict(rows))
        second = np.asarray(model.predict(rows))
    except Exception as exc:  # noqa: BLE001 - any failure of foreign predict code is a verdict
        return CheckStatus.FAIL, f"predict raised {type(exc).__name__}: {exc}"
    if len(first) != len(rows):
        return CheckStatus.FAIL, f"predict returned {len(first)} outputs for {len(rows)} rows"
    if not np.array_equal(first, second):
        return CheckStatus.FAIL, "predict is not deterministic: two calls on the same rows differ"
    detail = f"predict on {len(rows)} row(s) ({origin}) -> {first.tolist()[:5]}"
    if callable(getattr(model, "predict_proba", None)):
        try:
            proba = np.asarray(model.predict_proba(rows), dtype=float)
        except Exception as exc:  # noqa: BLE001
            return CheckStatus.FAIL, f"predict_proba raised {type(exc).__name__}: {exc}"
        if proba.shape[0] != len(rows) or not np.all(np.isfinite(proba)):
            return CheckStatus.FAIL, "predict_proba returned non-finite values or the wrong number of rows"
        if proba.min() < 0 or proba.max() > 1:
            return CheckStatus.FAIL, f"predict_proba outside [0, 1]: min {proba.min():g}, max {proba.max():g}"
        sums = proba.sum(axis=1)
        if not np.allclose(sums, 1.0, atol=PROBA_SUM_TOLERANCE):
            return CheckStatus.FAIL, f"predict_proba rows do not sum to 1: {sums.tolist()[:5]}"
        detail += f"; predict_proba rows sum to 1 (max {proba.max():.3f})"
    return CheckStatus.PASS, detail


def reference_check(model: Any, files_root: Path, files: list[str], tolerance: float) -> tuple[CheckStatus, str]:
    if REFERENCE_FILE not in files:
        return CheckStatus.SKIPPED, f"no {REFERENCE_FILE} in the artifact"
    try:
        reference = json.loads((files_root / REFERENCE_FILE).read_text(encoding="utf-8"))
        rows = np.asarray(reference["inputs"], dtype=float)
        expected = np.asarray(reference["predictions"])
    except (ValueError, KeyError, TypeError) as exc:
        return CheckStatus.FAIL, f"{REFERENCE_FILE} is unreadable: {type(exc).__name__}: {exc}"
    try:
        predicted = np.asarray(model.predict(rows))
    except Exception as exc:  # noqa: BLE001
        return CheckStatus.FAIL, f"predict on the reference inputs raised {type(exc).__name__}: {exc}"
    if predicted.shape != expected.shape:
        return CheckStatus.FAIL, f"predict gave shape {predicted.shape}, the reference has {expected.shape}"
    numeric = np.issubdtype(predicted.dtype, np.number) and np.issubdtype(expected.dtype, np.number)
    same = np.allclose(predicted, expected, atol=tolerance) if numeric else np.array_equal(predicted, expected)
    if not same:
        differing = (
            int(np.sum(predicted != expected))
            if not numeric
            else int(np.sum(~np.isclose(predicted, expected, atol=tolerance)))
        )
        return CheckStatus.FAIL, (
            f"{differing} of {len(expected)} reference predictions differ: the model does not predict what "
            "training saw (often a scikit-learn version skew)"
        )
    if "probabilities" in reference and callable(getattr(model, "predict_proba", None)):
        proba = np.asarray(model.predict_proba(rows), dtype=float)
        wanted = np.asarray(reference["probabilities"], dtype=float)
        if proba.shape != wanted.shape or not np.allclose(proba, wanted, atol=tolerance):
            return CheckStatus.FAIL, f"predict_proba differs from the reference beyond {tolerance:g}"
    return CheckStatus.PASS, f"{len(expected)} reference predictions reproduced (tolerance {tolerance:g})"


# -- artifact sources ------------------------------------------------------------------------------


Claim = Callable[[str], Consumer | None]


@dataclass
class Materialized:
    files: list[str]
    sha256: str
    bytes: int
    detail: str


class TarballSource:
    """model.tar.gz (CompressionType GZIP): one stream, digested and unpacked in a single pass."""

    def __init__(self, open_stream: Callable[[], BinaryIO]):
        self._open = open_stream

    def materialize(self, workdir: Path, limits: ArchiveLimits, claim: Claim | None = None) -> Materialized:
        stream = self._open()
        with stream:
            unpacked = unpack_stream(stream, workdir, limits, claim)
        return Materialized(
            files=unpacked.files,
            sha256=unpacked.sha256,
            bytes=unpacked.compressed_bytes,
            detail=(
                f"{len(unpacked.files)} file(s), {unpacked.unpacked_bytes} bytes unpacked, "
                f"sha256 {unpacked.sha256[:12]}"
            ),
        )


class PrefixSource:
    """CompressionType NONE: the model is a set of objects under an S3 prefix, copied with the same caps."""

    def __init__(self, list_objects: Callable[[], list[tuple[str, int]]], open_object: Callable[[str], BinaryIO]):
        self._list = list_objects
        self._open = open_object

    def materialize(self, workdir: Path, limits: ArchiveLimits, claim: Claim | None = None) -> Materialized:
        """Objects are copied to `workdir`; `claim` is not used (the model is loaded from its copy)."""
        objects = self._list()
        if not objects:
            raise ArtifactNotFound("no objects under the artifact prefix")
        if len(objects) > limits.max_members:
            raise UnsafeArchive("unpack_limits", f"more than {limits.max_members} objects under the prefix")
        total = sum(size for _, size in objects)
        if total > limits.max_total_bytes:
            raise UnsafeArchive("unpack_limits", f"{total} bytes under the prefix, over the cap")
        manifest = hashlib.sha256()
        files = []
        for relative, size in sorted(objects):
            if size > limits.max_member_bytes:
                raise UnsafeArchive("unpack_limits", f"object {relative!r} is {size} bytes, over the cap")
            path = safe_relative_name(relative)
            target = workdir.joinpath(*path.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            written = 0
            with self._open(relative) as source, open(target, "xb") as sink:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    if written > limits.max_member_bytes:
                        raise UnsafeArchive("unpack_limits", f"object {relative!r} grew past the cap while read")
                    digest.update(chunk)
                    sink.write(chunk)
            manifest.update(f"{digest.hexdigest()}  {path.as_posix()}\n".encode())
            files.append(path.as_posix())
        sha = manifest.hexdigest()
        return Materialized(
            files=files, sha256=sha, bytes=total, detail=f"{len(files)} object(s) under the prefix, manifest {sha[:12]}"
        )


def inspect_artifact(
    uri: str,
    source: TarballSource | PrefixSource | Callable[[], BinaryIO],
    config: InspectConfig,
    read_holdout: Callable[[str], BinaryIO] | None = None,
) -> InspectionResult:
    """Run every check on the artifact at `uri`. A plain callable is a tarball opener."""
    if not isinstance(source, (TarballSource, PrefixSource)):
        source = TarballSource(source)
    checks = _Checks()
    artifact = ArtifactInfo(uri=uri)
    model_info = ModelInfo()
    metrics: list[MetricValue] = []

    def result() -> InspectionResult:
        failed = any(c.status == CheckStatus.FAIL for c in checks.results)
        return InspectionResult(
            verdict="reject" if failed else "pass",
            checks=checks.results,
            artifact=artifact,
            model=model_info,
            metrics=metrics,
        )

    # Model candidates in a tarball are loaded while they inflate: one pass, never written to disk.
    streamed: dict[str, LoadedModel | Exception] = {}

    def claim(name: str) -> Consumer | None:
        if not is_model_candidate(name, config.model_file):
            return None

        def consume(stream: BinaryIO) -> None:
            try:
                streamed[name] = load_model_stream(stream, name, config.extra_allowed_globals)
            except UnsafeArchive:
                raise  # the archive itself broke (truncated, bomb): that is the unpack check's verdict
            except Exception as exc:  # noqa: BLE001 - a refused or corrupt model is a verdict
                streamed[name] = exc

        return consume

    with tempfile.TemporaryDirectory(prefix="training-gate-") as name:
        workdir = Path(name)
        try:
            materialized = source.materialize(workdir, config.limits(), claim)
        except ArtifactNotFound as exc:
            checks.add("locate", CheckStatus.FAIL, str(exc))
            checks.skip_rest("locate")
            return result()
        except UnsafeArchive as exc:
            checks.add("locate", CheckStatus.PASS, f"found {uri}")
            checks.add("unpack", CheckStatus.FAIL, f"{exc.check}: {exc.detail}")
            checks.skip_rest("unpack")
            return result()
        checks.add("locate", CheckStatus.PASS, f"found {uri}")
        artifact.sha256 = materialized.sha256
        artifact.bytes = materialized.bytes
        checks.add("unpack", CheckStatus.PASS, materialized.detail)

        metrics += read_evaluation_files(workdir, materialized.files, "model artifact")
        model_file, detail = find_model_file(materialized.files, config.model_file)
        if model_file is None:
            checks.add("find_model", CheckStatus.FAIL, detail)
            checks.skip_rest("find_model")
            return result()
        checks.add("find_model", CheckStatus.PASS, detail)

        try:
            outcome = streamed.get(model_file)
            if isinstance(outcome, Exception):
                raise outcome
            loaded = outcome or load_model(workdir / model_file, config.extra_allowed_globals)
        except (RefusedGlobal, UntrustedTypes) as exc:
            checks.add("load", CheckStatus.FAIL, str(exc))
            checks.skip_rest("load")
            return result()
        except Exception as exc:  # noqa: BLE001 - a corrupt file is a verdict, not a crash
            checks.add("load", CheckStatus.FAIL, f"could not load {model_file}: {type(exc).__name__}: {exc}")
            checks.skip_rest("load")
            return result()

        model_info = ModelInfo(class_name=type(loaded.model).__name__, sklearn_version=loaded.sklearn_version)
        checks.add("load", CheckStatus.PASS, f"loaded {type(loaded.model).__name__} through the allowlist")

        if loaded.version_skew:
            status = CheckStatus.FAIL if config.version_skew == "fail" else CheckStatus.WARN
            checks.add(
                "version_skew",
                status,
                f"model pickled with scikit-learn {loaded.sklearn_version}, gate runs "
                f"{loaded.runtime_sklearn_version}: set sklearn_version in the gate config to "
                f"{loaded.sklearn_version} or retrain with {loaded.runtime_sklearn_version}",
            )
        else:
            checks.add("version_skew", CheckStatus.PASS, f"scikit-learn {loaded.sklearn_version} on both sides")

        status, detail = smoke_prediction(loaded.model, config)
        checks.add("smoke_prediction", status, detail)
        status, detail = reference_check(loaded.model, workdir, materialized.files, config.reference_tolerance)
        checks.add("reference_predictions", status, detail)

    if config.holdout is None:
        checks.add("holdout", CheckStatus.SKIPPED, "no holdout set configured")
    else:
        status, detail, scored = holdout_check(loaded.model, config.holdout, read_holdout)
        checks.add("holdout", status, detail)
        metrics += scored
    return result()
