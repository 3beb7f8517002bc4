"""Parity with the extractors that deploy the model: whatever Python's tarfile and GNU tar would write
differently, or either refuses, the gate refuses; what it passes, both write exactly as the gate saw it."""

from __future__ import annotations

import gzip
import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_archive import FORMATS, build_tar, unpack, unpacked_files
from training_gate.archive import BLOCK, UnsafeArchive, unpack_stream

# -- parity with the extractors that deploy the model -----------------------------------------------------


def header(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def pax_record(key: str, value: str, length_text: str | None = None) -> bytes:
    body = f" {key}={value}\n"
    length = len(body) + len(str(len(body) + 2))
    return ((length_text or str(length)) + body).encode()


END = bytes(2 * BLOCK)
MEMBER = header("model.joblib", size=3) + padded(b"abc")


@pytest.mark.parametrize(
    ("raw_tar", "detail"),
    [
        (MEMBER, "no end-of-archive blocks"),
        (MEMBER + bytes(BLOCK), "a lone zero block"),
        (MEMBER + bytes(BLOCK) + padded(b"\x01"), "a lone zero block"),
        (MEMBER + END + b"\x00" * 100 + b"\x01", "non-zero bytes after the tar's end-of-archive blocks"),
        (
            header("x", tarfile.XHDTYPE, len(pax_record("comment", "hello", "+18")))
            + padded(pax_record("comment", "hello", "+18"))
            + MEMBER
            + END,
            "malformed pax header",
        ),
        (
            header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 8)
            + padded(b"long.txt")
            + header("x", tarfile.XHDTYPE, len(pax_record("path", "other.txt")))
            + padded(pax_record("path", "other.txt"))
            + MEMBER
            + END,
            "both a GNU long name and a pax path",
        ),
        (
            header("g", tarfile.XGLTYPE, len(pax_record("path", "renamed.txt")))
            + padded(pax_record("path", "renamed.txt"))
            + MEMBER
            + END,
            "a global pax header renames",
        ),
        (MEMBER + MEMBER + END, "duplicate member refused: 'model.joblib'"),
        (MEMBER + header("./model.joblib", size=3) + padded(b"abc") + END, "duplicate member refused"),
        (header("d/", tarfile.DIRTYPE) + header("d", tarfile.DIRTYPE) + MEMBER + END, "duplicate member refused: 'd'"),
        (header("./", tarfile.DIRTYPE) + header(".", tarfile.DIRTYPE) + MEMBER + END, "duplicate member refused"),
    ],
    ids=[
        "no-end",
        "lone-zero-block-then-eof",
        "lone-zero-block-then-data",
        "non-zero-after-end",
        "signed-pax-length",
        "gnu-long-name-and-pax-path",
        "global-pax-path",
        "duplicate-file",
        "duplicate-dot-slash",
        "duplicate-directory",
        "duplicate-root",
    ],
)
def test_where_extractors_could_differ_the_gate_refuses(tmp_path: Path, raw_tar: bytes, detail: str):
    with pytest.raises(UnsafeArchive, match=re.escape(detail)):
        unpack(raw_tar, tmp_path)


def test_zero_padding_to_the_record_size_is_normal(tmp_path: Path):
    raw = MEMBER + END + bytes(tarfile.RECORDSIZE)
    assert unpack(raw, tmp_path).files == ["model.joblib"]


@pytest.mark.parametrize(
    ("tail", "detail"),
    [(gzip.compress(END), "more than one gzip member"), (b"trailing", "data after the end of the gzip stream")],
    ids=["second-member", "garbage"],
)
def test_only_one_gzip_member_and_nothing_after_it(tmp_path: Path, tail: bytes, detail: str):
    artifact = gzip.compress(MEMBER + END) + tail
    with pytest.raises(UnsafeArchive, match=detail) as refused:
        unpack_stream(io.BytesIO(artifact), tmp_path)
    assert refused.value.check == "gzip"


def test_the_archive_root_written_by_tar_c_dot_is_accepted(tmp_path: Path):
    source = tmp_path / "model_dir"
    (source / "code").mkdir(parents=True)
    (source / "model.joblib").write_bytes(b"model")
    (source / "code" / "inference.py").write_bytes(b"print()")
    artifact = tmp_path / "model.tar.gz"
    if shutil.which("tar"):
        subprocess.run(["tar", "-czf", str(artifact), "-C", str(source), "."], check=True)
    else:  # pragma: no cover - every CI image here has GNU tar
        with tarfile.open(artifact, "w:gz") as archive:
            archive.add(source, arcname=".")
    with tarfile.open(artifact) as archive:
        assert "./" in [m.name for m in archive.getmembers()] or "." in [m.name for m in archive.getmembers()]
    dest = tmp_path / "out"
    dest.mkdir()
    with open(artifact, "rb") as raw:
        result = unpack_stream(raw, dest)
    assert sorted(result.files) == ["code/inference.py", "model.joblib"]
    assert unpacked_files(dest) == {"model.joblib": b"model", "code/inference.py": b"print()"}


PARITY_NAMES = st.lists(st.sampled_from(["a", "b", "dir", "é", "n" * 120]), min_size=1, max_size=3).map("/".join)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.dictionaries(PARITY_NAMES, st.binary(max_size=2 * BLOCK), min_size=1, max_size=4),
    dot_slash=st.booleans(),
    tar_format=st.sampled_from(list(FORMATS.values())),
    damage=st.one_of(
        st.none(),
        st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
        st.tuples(st.just("cut"), st.integers(min_value=0), st.just(0)),
        st.tuples(st.sampled_from(["zeros", "junk", "member"]), st.integers(min_value=1, max_value=3000), st.just(0)),
    ),
)
def test_the_gates_view_equals_tarfiles_or_the_gate_refuses(tmp_path_factory, files, dot_slash, tar_format, damage):
    names = sorted(files)
    if any(b.startswith(a + "/") for a in names for b in names):
        return
    if tar_format == tarfile.USTAR_FORMAT and any(len(n.encode()) > 100 for n in names):
        return
    raw = build_tar({("./" + k if dot_slash else k): v for k, v in files.items()}, tar_format)
    if damage is not None and damage[0] in ("zeros", "junk"):
        raw += bytes(damage[1]) if damage[0] == "zeros" else b"\x01" * damage[1]
    artifact = bytearray(gzip.compress(raw))
    if damage is not None and damage[0] == "flip":
        artifact[damage[1] % len(artifact)] = damage[2]
    elif damage is not None and damage[0] == "cut":
        artifact = artifact[: damage[1] % (len(artifact) + 1)]
    elif damage is not None and damage[0] == "member":
        artifact += gzip.compress(build_tar({"extra.txt": b"x" * damage[1]}))
    root = tmp_path_factory.mktemp("parity")
    gate, reference = root / "gate", root / "tarfile"
    gate.mkdir()
    reference.mkdir()
    try:
        unpack_stream(io.BytesIO(bytes(artifact)), gate)
    except UnsafeArchive as refused:
        assert refused.detail
        return
    # The gate passed: tarfile, the extractor that deploys the model, must write exactly the same.
    with tarfile.open(fileobj=io.BytesIO(bytes(artifact)), mode="r:gz") as archive:
        archive.extractall(reference, filter="data")
    assert unpacked_files(gate) == unpacked_files(reference)


# -- parity, round three: one extension header of each kind, names and times every reader writes alike ---


def long_header(kind: bytes, value: str) -> bytes:
    data = value.encode() + b"\0"
    return header("././@LongLink", kind, len(data)) + padded(data)


def pax_header(records: dict[str, str], kind: bytes = tarfile.XHDTYPE) -> bytes:
    data = b"".join(pax_record(k, v) for k, v in records.items())
    return header("pax", kind, len(data)) + padded(data)


def member_with(name: str = "model.joblib", **fields) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = 3
    for key, value in fields.items():
        setattr(info, key, value)
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + padded(b"abc")


@pytest.mark.parametrize(
    ("raw_tar", "detail"),
    [
        (
            long_header(tarfile.GNUTYPE_LONGNAME, "first.joblib")
            + long_header(tarfile.GNUTYPE_LONGNAME, "last.joblib")
            + MEMBER
            + END,
            "a second GNU long name header",
        ),
        (
            long_header(tarfile.GNUTYPE_LONGLINK, "a") + long_header(tarfile.GNUTYPE_LONGLINK, "b") + MEMBER + END,
            "a second GNU long link header",
        ),
        (pax_header({"path": "a.joblib"}) + pax_header({"path": "b.joblib"}) + MEMBER + END, "a second pax header"),
        (pax_header({"comment": "x"}) + pax_header({"mtime": "1"}) + MEMBER + END, "a second pax header"),
        (
            pax_header({"comment": "g"}, tarfile.XGLTYPE)
            + pax_header({"comment": "h"}, tarfile.XGLTYPE)
            + MEMBER
            + END,
            "a second global pax header",
        ),
        (header("model.joblib/", size=3) + padded(b"abc") + END, "named like a directory refused: 'model.joblib/'"),
        (pax_header({"path": "model.joblib/"}) + MEMBER + END, "named like a directory refused"),
        (member_with(mtime=8**11) + END, "has a mtime extractors cannot all set"),
        (member_with(mtime=-1) + END, "has a mtime extractors cannot all set"),
        (pax_header({"mtime": "1e5"}) + MEMBER + END, "pax mtime that is not a plain number"),
        (pax_header({"mtime": "99999999999999"}) + MEMBER + END, "pax mtime that is not a plain number"),
        (pax_header({"atime": "-5"}) + MEMBER + END, "pax atime that is not a plain number"),
        (member_with(uid=2**40) + END, "has a uid extractors cannot all set"),
        (member_with(gid=-2) + END, "has a gid extractors cannot all set"),
        (pax_header({"uid": "4294967295"}) + MEMBER + END, "has a uid extractors cannot all set"),
        (pax_header({"gid": "x1"}) + MEMBER + END, "pax gid that is not plain digits"),
    ],
    ids=[
        "two-long-names",
        "two-long-links",
        "two-pax-paths",
        "two-pax-headers",
        "two-global-pax",
        "regular-file-with-slash",
        "pax-path-with-slash",
        "mtime-past-octal",
        "negative-mtime",
        "pax-mtime-exponent",
        "pax-mtime-too-long",
        "pax-negative-atime",
        "huge-uid",
        "negative-gid",
        "pax-uid-minus-one",
        "pax-gid-not-digits",
    ],
)
def test_where_readers_disagree_on_headers_the_gate_refuses(tmp_path: Path, raw_tar: bytes, detail: str):
    with pytest.raises(UnsafeArchive, match=re.escape(detail)):
        unpack(raw_tar, tmp_path)


def test_one_extension_header_of_each_kind_is_still_read(tmp_path: Path):
    name = "n" * 150 + ".joblib"
    raw = long_header(tarfile.GNUTYPE_LONGNAME, name) + pax_header({"mtime": "12.5", "uid": "1000"}) + MEMBER + END
    assert unpack(raw, tmp_path).files == [name]


def gnu_tar_extract(artifact: bytes, dest: Path) -> bool:
    """GNU tar's own extraction (as the deploying container's tar would); False when it refuses."""
    done = subprocess.run(
        ["tar", "-xzf", "-", "-C", str(dest), "--no-same-owner", "--no-same-permissions"],
        input=artifact,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


HEADER_PIECES = st.sampled_from(
    [
        ("long-name", "first.joblib"),
        ("long-name", "second.joblib"),
        ("long-link", "target"),
        ("pax", "path=pax.joblib"),
        ("pax", "comment=x"),
        ("pax", "mtime=1700000000.25"),
        ("pax", "mtime=1e9"),
        ("pax", "uid=4294967296"),
        ("global", "comment=g"),
        ("mtime", str(8**11)),
        ("mtime", "1700000000"),
        ("uid", str(2**33)),
        ("name", "model.joblib/"),
        ("name", "dir/model.joblib"),
    ]
)


def build_member(pieces: list[tuple[str, str]]) -> bytes:
    raw, fields, name = b"", {}, "model.joblib"
    for kind, value in pieces:
        if kind == "long-name":
            raw += long_header(tarfile.GNUTYPE_LONGNAME, value)
        elif kind == "long-link":
            raw += long_header(tarfile.GNUTYPE_LONGLINK, value)
        elif kind in ("pax", "global"):
            key, _, text = value.partition("=")
            raw += pax_header({key: text}, tarfile.XGLTYPE if kind == "global" else tarfile.XHDTYPE)
        elif kind == "name":
            name = value
        else:
            fields[kind] = int(value)
    return raw + member_with(name, **fields)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.lists(st.lists(HEADER_PIECES, max_size=4), min_size=1, max_size=2))
def test_header_sequences_unpack_as_tarfile_and_gnu_tar_write_them_or_are_refused(tmp_path_factory, members):
    raw = b"".join(build_member(pieces) for pieces in members) + END
    artifact = gzip.compress(raw)
    root = tmp_path_factory.mktemp("headers")
    gate, reference, gnu = root / "gate", root / "tarfile", root / "gnu"
    for directory in (gate, reference, gnu):
        directory.mkdir()
    try:
        unpack_stream(io.BytesIO(artifact), gate)
    except UnsafeArchive as refused:
        assert refused.detail
        return
    # The gate passed: both extractors must accept the archive and write exactly what the gate saw.
    with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as archive:
        archive.extractall(reference, filter="data")
    assert unpacked_files(gate) == unpacked_files(reference)
    if shutil.which("tar"):
        assert gnu_tar_extract(artifact, gnu)
        assert unpacked_files(gate) == unpacked_files(gnu)
