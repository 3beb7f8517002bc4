"""The artifact inspection: locate, stream and unpack safely, find, load, check version, smoke test.

Each step reports a named check; the first failing step stops the ones that depend on it (they are
reported as skipped), so a reader sees exactly where the artifact fell short.
"""

from __future__ import annotations

import fnmatch
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from training_gate.archive import ArchiveLimits, UnsafeArchive, unpack_stream
from training_gate.dal.aws import ArtifactNotFound
from training_gate.domain.models import (
    ArtifactInfo,
    CheckResult,
    CheckStatus,
    InspectionResult,
    MetricValue,
    ModelInfo,
)
from training_gate.inspector.loader import RefusedGlobal, load_model
from training_gate.logic.evaluation_files import read_evaluation_files

MODEL_SUFFIXES = ("*.joblib", "*.pkl", "*.pickle")
CHECK_ORDER = ("locate", "unpack", "find_model", "load", "version_skew", "smoke_prediction")
PROBA_SUM_TOLERANCE = 1e-6


class InspectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_input: Annotated[list[list[float]] | None, Field(min_length=1)] = None
    model_file: str | None = Field(default=None, description="file name or glob of the model file")
    version_skew: Literal["fail", "warn"] = "fail"
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


def find_model_file(files: list[str], pattern: str | None) -> tuple[str | None, str]:
    """The one model file, or None with a sentence listing what was found."""
    patterns = (pattern,) if pattern else MODEL_SUFFIXES
    candidates = sorted(
        f for f in files if any(fnmatch.fnmatch(f, p) or fnmatch.fnmatch(Path(f).name, p) for p in patterns)
    )
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


def inspect_artifact(
    uri: str,
    open_artifact: Callable[[], BinaryIO],
    config: InspectConfig,
) -> InspectionResult:
    checks = _Checks()
    artifact = ArtifactInfo(uri=uri)
    model_info = ModelInfo()

    evaluation_metrics: list[MetricValue] = []

    def result() -> InspectionResult:
        failed = any(c.status == CheckStatus.FAIL for c in checks.results)
        return InspectionResult(
            verdict="reject" if failed else "pass",
            checks=checks.results,
            artifact=artifact,
            model=model_info,
            metrics=evaluation_metrics,
        )

    try:
        stream = open_artifact()
    except ArtifactNotFound as exc:
        checks.add("locate", CheckStatus.FAIL, str(exc))
        checks.skip_rest("locate")
        return result()
    checks.add("locate", CheckStatus.PASS, f"found {uri}")

    with tempfile.TemporaryDirectory(prefix="training-gate-") as workdir:
        try:
            with stream:
                unpacked = unpack_stream(stream, Path(workdir), config.limits())
        except UnsafeArchive as exc:
            checks.add("unpack", CheckStatus.FAIL, f"{exc.check}: {exc.detail}")
            checks.skip_rest("unpack")
            return result()
        artifact.sha256 = unpacked.sha256
        artifact.bytes = unpacked.compressed_bytes
        checks.add(
            "unpack",
            CheckStatus.PASS,
            f"{len(unpacked.files)} file(s), {unpacked.unpacked_bytes} bytes unpacked, sha256 {unpacked.sha256[:12]}",
        )

        evaluation_metrics = read_evaluation_files(Path(workdir), unpacked.files, "model artifact")
        model_file, detail = find_model_file(unpacked.files, config.model_file)
        if model_file is None:
            checks.add("find_model", CheckStatus.FAIL, detail)
            checks.skip_rest("find_model")
            return result()
        checks.add("find_model", CheckStatus.PASS, detail)

        try:
            loaded = load_model(Path(workdir, model_file), config.extra_allowed_globals)
        except RefusedGlobal as exc:
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
    return result()
