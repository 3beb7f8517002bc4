"""Evaluation files (evaluation.json / metrics.json) that training scripts write next to the model
or into the job's output.tar.gz."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from training_gate.archive import ArchiveLimits, UnsafeArchive, unpack_stream
from training_gate.dal.s3 import ArtifactNotFound, ArtifactStore
from training_gate.domain.contract import TrainingJob
from training_gate.domain.metrics import EVALUATION_FILE_MAX_BYTES, EVALUATION_FILE_NAMES, evaluation_file_values
from training_gate.domain.models import MetricValue

# output.tar.gz holds whatever the script wrote to /opt/ml/output/data: predictions, plots, checkpoints of any
# size. Only its evaluation files are read, into memory; nothing is written to the function's /tmp (512 MB),
# every other member is read past (max_written_bytes=0 refuses a write should one ever be attempted).
OUTPUT_LIMITS = ArchiveLimits(
    max_members=10_000, max_member_bytes=1 << 30, max_total_bytes=2 << 30, max_written_bytes=0
)
# At most this many evaluation files are read from one archive (each at most EVALUATION_FILE_MAX_BYTES).
EVALUATION_FILES_MAX = 64
# How long the collector may spend walking output.tar.gz, within its function's 60 s: a larger archive is not
# read (a warning), so the job is still judged on its other sources rather than timing out on every re-run.
OUTPUT_READ_SECONDS = 25.0


class _Stop(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def evaluation_values(data: bytes, where: str) -> list[MetricValue]:
    """The metrics of one evaluation file's bytes; a file too large, not UTF-8 or not JSON has none."""
    if len(data) > EVALUATION_FILE_MAX_BYTES:
        return []
    try:
        document: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return []
    return evaluation_file_values(document, where)


def read_evaluation_files(root: Path, files: list[str], where: str) -> list[MetricValue]:
    """Parse every evaluation file among `files` (paths relative to `root`); unreadable ones are skipped."""
    values: list[MetricValue] = []
    for relative in files:
        if PurePosixPath(relative).name not in EVALUATION_FILE_NAMES:
            continue
        path = root / relative
        if path.stat().st_size > EVALUATION_FILE_MAX_BYTES:
            continue
        values += evaluation_values(path.read_bytes(), f"{where}:{relative}")
    return values


def output_archive_uri(job: TrainingJob) -> str | None:
    if not job.output_path:
        return None
    return f"{job.output_path.rstrip('/')}/{job.training_job_name}/output/output.tar.gz"


def evaluation_metrics_from_output(
    job: TrainingJob, store: ArtifactStore, clock: Callable[[], float] = time.monotonic
) -> tuple[list[MetricValue], str | None]:
    """Metrics from the evaluation files in the job's output.tar.gz, with a warning when it is unusable.

    All or nothing: an archive that is unsafe, too large or too slow to read contributes no value (a value
    from half an archive could differ from the whole one's), and says why."""
    uri = output_archive_uri(job)
    if uri is None:
        return [], None
    try:
        stream = store.open(uri)
    except ArtifactNotFound:
        return [], None  # most jobs write no output data; that is not a problem
    found: list[tuple[str, bytes]] = []
    deadline = clock() + OUTPUT_READ_SECONDS

    def claim(name: str, _head: bytes, _size: int) -> Callable[[BinaryIO], None]:
        if clock() > deadline:
            raise _Stop(f"reading it took longer than {OUTPUT_READ_SECONDS:.0f} s; its evaluation files were not used")
        if PurePosixPath(name).name not in EVALUATION_FILE_NAMES:
            return _read_past
        if len(found) == EVALUATION_FILES_MAX:
            raise _Stop(f"it holds more than {EVALUATION_FILES_MAX} evaluation files")
        return lambda member: found.append((name, member.read(EVALUATION_FILE_MAX_BYTES + 1)))

    # Only directories are created here (the walk checks each name against it); no member is written.
    with tempfile.TemporaryDirectory(prefix="training-gate-output-") as workdir:
        try:
            with stream:
                unpack_stream(stream, Path(workdir), OUTPUT_LIMITS, claim=claim, digest=False)
        except UnsafeArchive as exc:
            return [], f"output.tar.gz was not read: {exc.check}: {exc.detail}"
        except _Stop as stop:
            return [], f"output.tar.gz was not read: {stop.reason}"
    values: list[MetricValue] = []
    for name, data in found:
        values += evaluation_values(data, f"output.tar.gz:{name}")
    return values, None


def _read_past(member: BinaryIO) -> None:
    """Not an evaluation file: the walk skips its bytes without keeping them."""
