"""Every pickle an artifact holds is found by its bytes and read through the loader, whatever the file's name:
raw pickles of any protocol, joblib's compressed files, .npy object arrays, zip entries (torch.save's data.pkl),
a tar's members (torch's oldest format), and every pickle of a file that holds several. A file that may hold a
pickle and cannot be read is refused by name; benign auxiliary files still pass."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from training_gate.domain.models import CheckStatus
from training_gate.inspector import pickles
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate.inspector.recognise import classify
from training_gate_cli.artifacts import pack_model_tar_gz

X, Y = load_iris(return_X_y=True)
CAPS = (1 << 30, 1000, 1 << 20)  # max_member_bytes, max_ratio, the ratio's floor


class Touches:
    """A payload: unpickling it creates the file `path`."""

    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def payload(path: Path, protocol: int = 4) -> bytes:
    Touches.path = str(path)
    return pickle.dumps(Touches(), protocol=protocol)


def joblib_file(tmp_path: Path, obj: object, name: str) -> bytes:
    """What `joblib.dump(obj, name)` writes: joblib picks the compressor from the file's name."""
    path = tmp_path / "dumped" / name
    path.parent.mkdir(exist_ok=True)
    joblib.dump(obj, path)
    return path.read_bytes()


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def plain_tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def model_bytes() -> bytes:
    buffer = io.BytesIO()
    joblib.dump(LogisticRegression(max_iter=500).fit(X, Y), buffer)
    return buffer.getvalue()


CLASSIFIER = model_bytes()


def inspect(files: dict[str, bytes], tmp_path: Path):
    artifact = pack_model_tar_gz(files)
    result = inspect_artifact(
        "s3://b/model.tar.gz",
        lambda: io.BytesIO(artifact),
        InspectConfig(sample_input=[[5.1, 3.5, 1.4, 0.2]]),
        work_root=tmp_path,
    )
    return result, {c.name: c for c in result.checks}


def served_by_joblib_runs_it(data: bytes, tmp_path: Path, name: str, marker: Path) -> bool:
    """What a serving container does with the file: joblib.load it (in a process of its own)."""
    served = tmp_path / f"served-{name}"
    served.write_bytes(data)
    subprocess.run([sys.executable, "-c", f"import joblib; joblib.load({str(served)!r})"], capture_output=True)
    ran = marker.exists()
    marker.unlink(missing_ok=True)
    return ran


# -- the reading of bytes: no sandbox needed ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(6))
def test_a_pickle_of_every_protocol_is_a_pickle_by_its_bytes(tmp_path: Path, protocol: int):
    data = payload(tmp_path / "x", protocol)
    assert classify("notes.txt", data[:4096], len(data)).kind == "pickle"


@pytest.mark.parametrize(
    "text",
    [b"cat\ndog\nbird\n", b"x,y\n1,2\n", b'{"accuracy": 0.9}', b"# my model\n", b"Please read me\n", b""],
    ids=["vocabulary", "csv-starting-with-x", "json", "markdown", "text-starting-with-P", "empty"],
)
def test_ordinary_files_are_proven_to_hold_no_pickle(text: bytes):
    content = classify("file", text, len(text))
    if content.kind == "compressed":  # "x" is zlib's magic number: what joblib.load would read is decided
        assert pickles.read_compressed(io.BytesIO(text), content.compressor, *CAPS).verdict == pickles.NOT_PICKLE
    else:
        assert content.kind == "other", content


def test_a_string_longer_than_the_kept_line_does_not_hide_what_follows(tmp_path: Path):
    # STRING's quotes are checked on the whole line, however long: a cut line must not look unquoted.
    data = b"S'" + b"a" * 5000 + b"'\n0" + payload(tmp_path / "x", 0)
    assert pickles.read_pickle(io.BytesIO(data)).verdict == pickles.PICKLE


def test_unicode_escapes_name_modules_as_the_unpickler_decodes_them():
    # UNICODE is raw-unicode-escape: "o\u0073" is "os" to every unpickler.
    data = b"Vo\\u0073\nVsystem\n\x93(Vtrue\ntR."
    assert pickles.read_head(data, len(data)).verdict == pickles.PICKLE


def test_hashing_a_tuple_that_holds_a_global_counts_as_running_its_code():
    data = b"}cos\nsystem\n\x85Ns."  # SETITEM with the key (os.system,): the key is hashed
    assert pickles.read_head(data, len(data)).verdict == pickles.PICKLE


def test_a_persistent_id_ends_pickle_load_but_not_torch_loads_reading_of_a_zip_entry(tmp_path: Path):
    data = b"(P0\n0" + payload(tmp_path / "x", 0)
    assert pickles.read_head(data, len(data)).verdict == pickles.NOT_PICKLE
    assert pickles.read_head(data, len(data), persistent=True).verdict == pickles.PICKLE
    assert classify("archive/data.pkl", data, len(data), contained=True).kind == "pickle"


def test_a_zip_whose_first_line_runs_past_the_head_is_a_zip_not_ambiguous():
    # A zip starts with `P` (PERSID): pickle.load fails there whatever the line holds, so a first entry with
    # no newline in the head (Keras 3 writes such .keras files) leaves nothing undecided.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", b'{"keras_version": "3.15.1"}' + b" " * 8000)
    data = buffer.getvalue()
    assert b"\n" not in data[:4096]
    assert classify("model.keras", data[:4096], len(data)).kind == "zip"


@pytest.mark.parametrize(
    "compress", [gzip.compress, zlib.compress, bz2.compress, lzma.compress], ids=["gzip", "zlib", "bz2", "xz"]
)
def test_a_compressed_stream_that_breaks_after_giving_bytes_is_never_proven_harmless(tmp_path: Path, compress):
    # A pickle that is still undecided where the stream breaks: what came before may be what joblib ran.
    corrupt = bytearray(compress(b"\x80\x04" + b"N0" * 200_000 + b"N."))
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 16] = b"\xff" * 16
    content = classify("data.bin", bytes(corrupt[:4096]), len(corrupt))
    try:
        reading = pickles.read_compressed(io.BytesIO(bytes(corrupt)), content.compressor, *CAPS)
    except pickles.CannotRead:
        return
    assert reading.verdict != pickles.NOT_PICKLE or "does not decompress" in reading.reason


def test_bytes_after_a_zlib_stream_end_the_reading_instead_of_spinning():
    # joblib's own zlib reader spins on trailing bytes, doubling its memory; the gate's reading stops.
    data = zlib.compress(b"\x80\x04" + b"N0" * 100_000) + b"trailing"
    with pytest.raises(pickles.CannotRead, match="after the end of the compressed stream"):
        pickles.read_compressed(io.BytesIO(data), "zlib", *CAPS)


def test_a_file_that_is_a_tar_and_a_pickle_is_ambiguous():
    hostile = payload(Path("x"), 0)  # short enough for the tar header's 100-byte name field
    assert len(hostile) < 100
    block = bytearray(plain_tar({"pickle": b"\0"})[:512])
    block[: len(hostile)] = hostile  # the pickle sits in the tar's name field; the checksum is redone
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    assert pickles.is_tar(bytes(block))
    assert classify("weights", bytes(block), 512).kind == "ambiguous"


# -- through the inspection: what serving code would load, the gate loads first ----------------------------------


@pytest.mark.parametrize("name", ["scaler.pkl.gz", "scaler.joblib.z", "scaler.pkl.xz", "scaler.pkl.bz2", "scaler.lzma"])
def test_a_hostile_compressed_joblib_file_beside_the_model_rejects_naming_it(tmp_path: Path, name: str):
    marker = tmp_path / "pwned"
    hostile = joblib_file(tmp_path, _touching(marker), name)
    assert served_by_joblib_runs_it(hostile, tmp_path, name, marker)  # it is hostile to serving code
    result, checks = inspect({"model.joblib": CLASSIFIER, name: hostile}, tmp_path)
    assert result.verdict == "reject"
    assert checks["load"].detail.startswith(f"could not load {name}: RefusedGlobal")
    assert not marker.exists()


def _touching(marker: Path) -> Touches:
    Touches.path = str(marker)
    return Touches()


@pytest.mark.parametrize("protocol", [0, 1])
def test_a_hostile_old_protocol_pickle_with_any_name_rejects(tmp_path: Path, protocol: int):
    marker = tmp_path / "pwned"
    hostile = payload(marker, protocol)
    assert served_by_joblib_runs_it(hostile, tmp_path, "encoder.bin", marker)
    result, checks = inspect({"model.joblib": CLASSIFIER, "encoder.bin": hostile}, tmp_path)
    assert result.verdict == "reject"
    assert "could not load encoder.bin" in checks["load"].detail
    assert not marker.exists()


@pytest.mark.parametrize("name", ["scaler.pkl.gz", "scaler.joblib.z", "scaler.pkl.xz", "scaler.pkl.bz2", "scaler.pkl"])
def test_a_benign_auxiliary_scaler_in_any_compression_passes_loaded_through_the_allowlist(tmp_path: Path, name: str):
    scaler = joblib_file(tmp_path, StandardScaler().fit(X), name)
    result, checks = inspect({"model.joblib": CLASSIFIER, name: scaler}, tmp_path)
    assert result.verdict == "pass", result.checks
    assert "(and 1 auxiliary pickle(s))" in checks["load"].detail


def test_a_hostile_data_pkl_in_a_torch_zip_beside_the_model_rejects_naming_the_entry(tmp_path: Path):
    marker = tmp_path / "pwned"
    aux = zipped({"aux/data.pkl": payload(marker, 2), "aux/version": b"3\n"})
    result, checks = inspect({"model.joblib": CLASSIFIER, "aux.pt": aux}, tmp_path)
    assert result.verdict == "reject"
    assert checks["load"].detail.startswith("could not load aux.pt (its aux/data.pkl): RefusedGlobal")
    assert not marker.exists()


def test_a_persistent_id_before_the_payload_does_not_hide_a_zip_entry(tmp_path: Path):
    # Protocol 0, no PROTO header: pickle.load fails at the persistent id, torch.load's unpickler reads on.
    marker = tmp_path / "pwned"
    aux = zipped({"aux/data.pkl": b"(P0\n0" + payload(marker, 0)})
    result, checks = inspect({"model.joblib": CLASSIFIER, "aux.pt": aux}, tmp_path)
    assert result.verdict == "reject"
    assert "could not load aux.pt (its aux/data.pkl)" in checks["load"].detail
    assert not marker.exists()


def test_a_benign_torch_zip_beside_the_judged_model_is_named_as_unread(tmp_path: Path):
    state = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00(X\x01\x00\x00\x000q\x01tQ."
    aux = zipped({"aux/data.pkl": state, "aux/data/0": b"\0" * 16, "aux/version": b"3\n"})
    result, checks = inspect({"model.joblib": CLASSIFIER, "aux.pt": aux}, tmp_path)
    assert result.verdict == "reject"
    assert "could not load aux.pt (its aux/data.pkl)" in checks["load"].detail
    assert "a PyTorch file beside the judged model; the gate reads PyTorch files by their bytes only beside a " in (
        checks["load"].detail
    )


def test_every_pickle_of_a_file_that_holds_several_is_read(tmp_path: Path):
    # torch.load's legacy reader, or code calling pickle.load twice, reads the second pickle too.
    marker = tmp_path / "pwned"
    two = pickle.dumps({"version": 1}, protocol=4) + payload(marker, 4)
    result, checks = inspect({"model.joblib": CLASSIFIER, "extra.bin": two}, tmp_path)
    assert result.verdict == "reject"
    assert "could not load extra.bin: FollowingPickle: its pickle #2" in checks["load"].detail
    assert not marker.exists()


def test_a_file_of_two_benign_pickles_passes(tmp_path: Path):
    two = pickle.dumps(StandardScaler().fit(X), protocol=4) + pickle.dumps({"classes": [0, 1, 2]}, protocol=4)
    result, _checks = inspect({"model.joblib": CLASSIFIER, "preprocess.pkl": two}, tmp_path)
    assert result.verdict == "pass", result.checks


def test_a_pickle_hidden_in_the_last_frame_after_stop_is_refused(tmp_path: Path):
    # The C unpickler resumes right after STOP when it can peek into the file; a frame read whole would not.
    marker = tmp_path / "pwned"
    inner = b"K\x01." + payload(marker, 0)
    hidden = b"\x80\x04\x95" + struct.pack("<Q", len(inner)) + inner
    result, checks = inspect({"model.joblib": CLASSIFIER, "hidden.pkl": hidden}, tmp_path)
    assert result.verdict == "reject"
    assert "STOP leaves" in checks["load"].detail and "in its frame" in checks["load"].detail
    assert not marker.exists()


def test_a_tar_in_torchs_oldest_format_is_read_member_by_member(tmp_path: Path):
    marker = tmp_path / "pwned"
    legacy = plain_tar({"storages": pickle.dumps(0, protocol=2), "pickle": b"(P0\n0" + payload(marker, 0)})
    result, checks = inspect({"model.joblib": CLASSIFIER, "weights": legacy}, tmp_path)
    assert result.verdict == "reject"
    assert "could not load weights (its pickle)" in checks["load"].detail
    assert not marker.exists()


def test_an_npy_of_objects_is_read_as_the_pickle_numpy_load_would_unpickle(tmp_path: Path):
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    np.save(buffer, np.array([_touching(marker)], dtype=object), allow_pickle=True)
    result, checks = inspect({"model.joblib": CLASSIFIER, "features.npy": buffer.getvalue()}, tmp_path)
    assert result.verdict == "reject"
    assert "could not load features.npy" in checks["load"].detail
    assert not marker.exists()


def test_benign_data_files_beside_the_model_pass(tmp_path: Path):
    numbers, labels = io.BytesIO(), io.BytesIO()
    np.save(numbers, np.arange(10.0))
    np.save(labels, np.array(["setosa", "versicolor", None], dtype=object), allow_pickle=True)
    files = {
        "model.joblib": CLASSIFIER,
        "vocabulary.txt": b"cat\ndog\nbird\n",
        "columns.csv": b"x,y\n1,2\n",
        "data.csv.gz": gzip.compress(b"a,b\n1,2\n" * 100),
        "weights.npy": numbers.getvalue(),
        "labels.npy": labels.getvalue(),
        "arrays.npz": zipped({"w.npy": numbers.getvalue()}),
    }
    result, checks = inspect(files, tmp_path)
    assert result.verdict == "pass", result.checks
    assert checks["load"].status == CheckStatus.PASS
    assert checks["load"].detail == "loaded LogisticRegression through the allowlist (and 1 auxiliary pickle(s))"


def test_a_skops_file_is_loaded_as_one_and_its_other_entries_are_read_too(tmp_path: Path):
    skops_io = pytest.importorskip("skops.io")
    marker = tmp_path / "pwned"
    buffer = io.BytesIO(skops_io.dumps(LogisticRegression(max_iter=500).fit(X, Y)))
    with zipfile.ZipFile(buffer, "a") as archive:  # torch.load of this file would read data.pkl
        archive.writestr("extra/data.pkl", payload(marker, 2))
    result, checks = inspect({"model.skops": buffer.getvalue()}, tmp_path)
    assert result.verdict == "reject"
    assert checks["load"].detail.startswith("could not load model.skops (its extra/data.pkl): RefusedGlobal")
    assert not marker.exists()


def test_another_frameworks_file_beside_an_unjudged_model_is_named_beside_that_model(tmp_path: Path):
    torch_state = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00(X\x01\x00\x00\x000q\x01tQ."
    header = b'{"__metadata__":{}}'
    files = {
        "model.safetensors": len(header).to_bytes(8, "little") + header,
        "config.json": b'{"architectures": ["BertModel"]}',
        "optimizer.pt": zipped({"opt/data.pkl": torch_state}),
    }
    result, checks = inspect(files, tmp_path)
    assert result.verdict == "reject"
    # Hugging Face is judged by the checkpoint readers, which read a torch file beside it themselves.
    assert "auxiliary optimizer.pt refused by the restricted reader" in checks["load"].detail
    # a second file of a judged checkpoint's own framework is its reader's to read (here: zips without the
    # version record torch.save writes)
    files = {"model.pth": zipped({"m/data.pkl": torch_state}), "optimizer.pt": zipped({"o/data.pkl": torch_state})}
    result, checks = inspect(files, tmp_path)
    assert result.verdict == "reject", result.checks
    assert "model.pth refused" in checks["load"].detail and "optimizer.pt refused" in checks["load"].detail
