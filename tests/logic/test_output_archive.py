"""CollectMetrics reads evaluation files from a job's output.tar.gz without writing to disk: a member larger
than the function's /tmp is read past, and an archive too large or too slow to read is a warning, not an
error that would fail every re-run."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tarfile
from itertools import count

import pytest

from tests.support.builders import training_job
from training_gate.dal.s3 import ArtifactNotFound
from training_gate.logic import evaluation_files
from training_gate.logic.evaluation_files import (
    EVALUATION_FILES_MAX,
    OUTPUT_LIMITS,
    evaluation_metrics_from_output,
    output_archive_uri,
)

JOB = training_job("job-1", output_path="s3://sagemaker-us-east-1-123456789012/")
URI = output_archive_uri(JOB)


class Zeros(io.RawIOBase):
    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def output_tar_gz(members: list[tuple[str, int | bytes]]) -> bytes:
    """A gzip'd tar; an int member is that many zero bytes, streamed (never held in memory)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1) as compressed:
        with tarfile.open(fileobj=compressed, mode="w|") as archive:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = data if isinstance(data, int) else len(data)
                archive.addfile(info, Zeros(data) if isinstance(data, int) else io.BytesIO(data))
    return buffer.getvalue()


class Store:
    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects

    def open(self, uri: str):
        if uri not in self.objects:
            raise ArtifactNotFound(uri)
        return io.BytesIO(self.objects[uri])


def evaluation(accuracy: float) -> bytes:
    return json.dumps({"accuracy": accuracy}).encode()


def test_a_member_larger_than_tmp_is_read_past_and_nothing_is_written(monkeypatch: pytest.MonkeyPatch, tmp_path):
    # 600 MB of predictions before the evaluation file: more than the function's 512 MB of /tmp.
    data = output_tar_gz([("data/predictions.csv", 600 << 20), ("data/evaluation.json", evaluation(0.93))])
    workdir = tmp_path / "work"
    workdir.mkdir()

    @contextlib.contextmanager
    def kept_directory(prefix: str = ""):
        yield str(workdir)

    monkeypatch.setattr(evaluation_files.tempfile, "TemporaryDirectory", kept_directory)
    values, warning = evaluation_metrics_from_output(JOB, Store({URI: data}))
    assert [p for p in workdir.rglob("*") if p.is_file()] == []  # the work directory holds no file at all
    assert OUTPUT_LIMITS.max_written_bytes == 0  # and a write would be refused by name
    assert warning is None
    assert [(v.name, v.value, v.location) for v in values] == [("accuracy", 0.93, "output.tar.gz:data/evaluation.json")]


def test_an_archive_too_slow_to_read_is_a_warning_and_contributes_nothing(monkeypatch: pytest.MonkeyPatch):
    ticks = count(step=10.0)  # each look at the clock: 10 s later
    data = output_tar_gz([("a/evaluation.json", evaluation(0.9)), *[(f"f{i}", b"x") for i in range(5)]])
    values, warning = evaluation_metrics_from_output(JOB, Store({URI: data}), clock=lambda: next(ticks))
    assert values == [] and warning and "longer than 25 s" in warning


def test_more_evaluation_files_than_the_cap_is_a_warning():
    members = [(f"run-{i}/metrics.json", evaluation(0.9)) for i in range(EVALUATION_FILES_MAX + 1)]
    values, warning = evaluation_metrics_from_output(JOB, Store({URI: output_tar_gz(members)}))
    assert values == [] and warning and f"more than {EVALUATION_FILES_MAX} evaluation files" in warning


def test_an_oversized_or_unreadable_evaluation_file_is_skipped_and_the_others_are_read():
    members = [
        ("big/evaluation.json", b'{"accuracy": 0.1, "pad": "' + b"x" * (1 << 20) + b'"}'),
        ("bad/metrics.json", b"\xff\xfe not json"),
        ("good/metrics.json", evaluation(0.8)),
    ]
    values, warning = evaluation_metrics_from_output(JOB, Store({URI: output_tar_gz(members)}))
    assert warning is None and [(v.value, v.location) for v in values] == [(0.8, "output.tar.gz:good/metrics.json")]


def test_an_unsafe_archive_is_a_warning_naming_the_check():
    data = output_tar_gz([("../evaluation.json", evaluation(0.99))])
    values, warning = evaluation_metrics_from_output(JOB, Store({URI: data}))
    assert values == [] and warning and warning.startswith("output.tar.gz was not read: member_names")


def test_a_job_without_output_data_is_not_a_problem():
    assert evaluation_metrics_from_output(JOB, Store({})) == ([], None)
    assert evaluation_files.OUTPUT_READ_SECONDS < 60  # inside the collector's timeout
