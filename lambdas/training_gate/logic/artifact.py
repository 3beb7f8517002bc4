"""InspectArtifact's use case: find the job's model output, then inspect it (scikit-learn lives in
`inspector`, imported only by the function that runs this)."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from training_gate.dal.s3 import ArtifactNotFound, ArtifactStore
from training_gate.domain.contract import TrainingJob
from training_gate.domain.models import ArtifactInfo, CheckResult, CheckStatus, InspectionResult
from training_gate.inspector.inspect import InspectConfig, PrefixSource, TarballSource, inspect_artifact


def artifact_source(job: TrainingJob, store: ArtifactStore) -> TarballSource | PrefixSource:
    uri = job.model_artifact or ""
    if job.compression_type == "NONE":
        # Uncompressed output: S3ModelArtifacts is a prefix holding the files of /opt/ml/model.
        prefix = uri if uri.endswith("/") else uri + "/"
        return PrefixSource(lambda: store.list_prefix(prefix), lambda relative: store.open(prefix + relative))
    return TarballSource(lambda: store.open(uri))


def inspect_job(
    job: TrainingJob,
    store: ArtifactStore,
    config: InspectConfig,
    read_holdout: Callable[[str], BinaryIO] | None = None,
    remaining_time_s: float | None = None,
) -> InspectionResult:
    if not job.model_artifact:
        # A completed job with no ModelArtifacts wrote no model: the owners must look.
        return InspectionResult(
            verdict="reject",
            checks=[CheckResult(name="locate", status=CheckStatus.FAIL, detail="the job reports no model artifact")],
            artifact=ArtifactInfo(uri=""),
        )
    result = inspect_artifact(
        job.model_artifact,
        artifact_source(job, store),
        config,
        read_holdout=read_holdout,
        remaining_time_s=remaining_time_s,
        training_image=job.training_image,
    )
    return bounded(result)


# The inspection travels in the state: an evaluation file can hold a value per class or per slice,
# thousands of them, and a check's detail can quote the artifact. Both are bounded here.
INSPECTION_METRICS_MAX = 200
CHECK_DETAIL_MAX = 2000


def bounded(result: InspectionResult) -> InspectionResult:
    checks = [c.model_copy(update={"detail": c.detail[:CHECK_DETAIL_MAX]}) for c in result.checks]
    metrics = result.metrics
    if len(metrics) > INSPECTION_METRICS_MAX:
        checks.append(
            CheckResult(
                name="evaluation_files",
                status=CheckStatus.WARN,
                detail=f"the artifact's evaluation files hold {len(metrics)} values; the first "
                f"{INSPECTION_METRICS_MAX} are used (name the metrics the policy judges first, or fewer)",
            )
        )
        metrics = metrics[:INSPECTION_METRICS_MAX]
    return result.model_copy(update={"checks": checks, "metrics": metrics})


__all__ = ["ArtifactNotFound", "artifact_source", "inspect_job"]
