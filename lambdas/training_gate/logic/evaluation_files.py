"""Evaluation files (evaluation.json / metrics.json) that training scripts write next to the model
or into the job's output.tar.gz."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from training_gate.archive import ArchiveLimits, UnsafeArchive, unpack_stream
from training_gate.dal.s3 import ArtifactNotFound, ArtifactStore
from training_gate.domain.contract import TrainingJob
from training_gate.domain.metrics import EVALUATION_FILE_MAX_BYTES, EVALUATION_FILE_NAMES, evaluation_file_values
from training_gate.domain.models import MetricValue

# output.tar.gz holds what the script wrote to /opt/ml/output/data: small files, tight caps.
OUTPUT_LIMITS = ArchiveLimits(max_members=10_000, max_member_bytes=1 << 30, max_total_bytes=2 << 30)


def read_evaluation_files(root: Path, files: list[str], where: str) -> list[MetricValue]:
    """Parse every evaluation file among `files` (paths relative to `root`); unreadable ones are skipped."""
    values: list[MetricValue] = []
    for relative in files:
        if PurePosixPath(relative).name not in EVALUATION_FILE_NAMES:
            continue
        path = root / relative
        if path.stat().st_size > EVALUATION_FILE_MAX_BYTES:
            continue
        try:
            document: Any = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        values += evaluation_file_values(document, f"{where}:{relative}")
    return values


def output_archive_uri(job: TrainingJob) -> str | None:
    if not job.output_path:
        return None
    return f"{job.output_path.rstrip('/')}/{job.training_job_name}/output/output.tar.gz"


def evaluation_metrics_from_output(job: TrainingJob, store: ArtifactStore) -> tuple[list[MetricValue], str | None]:
    """Metrics from the evaluation files in the job's output.tar.gz, with a warning when it is unusable."""
    uri = output_archive_uri(job)
    if uri is None:
        return [], None
    try:
        stream = store.open(uri)
    except ArtifactNotFound:
        return [], None  # most jobs write no output data; that is not a problem
    with tempfile.TemporaryDirectory(prefix="training-gate-output-") as workdir:
        try:
            with stream:
                unpacked = unpack_stream(stream, Path(workdir), OUTPUT_LIMITS)
        except UnsafeArchive as exc:
            return [], f"output.tar.gz was not read: {exc.check}: {exc.detail}"
        return read_evaluation_files(Path(workdir), unpacked.files, "output.tar.gz"), None
