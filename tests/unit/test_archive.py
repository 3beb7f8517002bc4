"""The streaming tar reader against tarfile's own writer: every format, every header extension,
and the malformed shapes a hostile archive can take."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training_gate.archive import BLOCK, ArchiveLimits, UnsafeArchive, unpack_stream

FORMATS = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}


def build_tar(files: dict[str, bytes], tar_format: int = tarfile.PAX_FORMAT, dirs: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as archive:
        for name in dirs:
            member = tarfile.TarInfo(name)
            member.type = tarfile.DIRTYPE
            archive.addfile(member)
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


DEFAULT_LIMITS = ArchiveLimits()


def unpack(raw_tar: bytes, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS, claim=None):
    return unpack_stream(io.BytesIO(gzip.compress(raw_tar)), dest, limits, claim)


def unpacked_files(dest: Path) -> dict[str, bytes]:
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


NAMES = st.lists(st.text(alphabet="abcdéü_-0123456789", min_size=1, max_size=40), min_size=1, max_size=7).map("/".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.dictionaries(NAMES, st.binary(max_size=3 * BLOCK), min_size=1, max_size=6),
    tar_format=st.sampled_from(list(FORMATS.values())),
)
def test_every_format_unpacks_to_what_tarfile_wrote(tmp_path_factory, files, tar_format):
    # A name that is a prefix directory of another cannot be both a file and a directory.
    names = sorted(files)
    if any(b.startswith(a + "/") for a in names for b in names):
        return
    raw = build_tar(files, tar_format)
    if tar_format == tarfile.USTAR_FORMAT and any(len(n.encode()) > 100 for n in names):
        return  # ustar cannot name them; tarfile refused or split them: covered by the other formats
    dest = tmp_path_factory.mktemp("out")
    result = unpack(raw, dest)
    assert unpacked_files(dest) == files
    assert sorted(result.files) == names


@pytest.mark.parametrize("tar_format", FORMATS.values(), ids=FORMATS.keys())
def test_long_and_non_ascii_names_survive_every_extension_header(tmp_path: Path, tar_format: int):
    long_dir = "d" * 120 + "/" + "e" * 60 if tar_format == tarfile.USTAR_FORMAT else "d" * 200 + "/" + "e" * 150
    files = {f"{long_dir}/model.joblib": b"m" * 513, "données/évaluation.json": b"{}", "empty.txt": b""}
    raw = build_tar(files, tar_format, dirs=(long_dir, "données"))
    digest = hashlib.sha256(gzip.compress(raw, mtime=0)).hexdigest()
    result = unpack_stream(io.BytesIO(gzip.compress(raw, mtime=0)), tmp_path)
    assert unpacked_files(tmp_path) == files
    assert result.sha256 == digest


def test_a_consumer_reads_only_its_member_and_what_it_leaves_is_skipped(tmp_path: Path):
    files = {"model.joblib": bytes(range(256)) * 9, "after.txt": b"next member"}
    seen: dict[str, object] = {}

    def claim(name: str, head: bytes, size: int):
        seen.setdefault("heads", {})[name] = (head, size)
        if name != "model.joblib":
            return None

        def consume(stream) -> None:
            seen["magic"] = stream.peek(4)[:4]
            seen["head"] = stream.read(10)
            seen["line"] = stream.readline(5)
            buffer = bytearray(7)
            seen["into"] = (stream.readinto(buffer), bytes(buffer))
            # leaves the rest unread

        return consume

    unpack_stream(io.BytesIO(gzip.compress(build_tar(files))), tmp_path, DEFAULT_LIMITS, claim, head_bytes=8)
    data = files["model.joblib"]
    assert seen["heads"] == {"model.joblib": (data[:8], len(data)), "after.txt": (b"next mem", 11)}
    assert seen["magic"] == data[:4] and seen["head"] == data[:10]
    assert seen["line"] == data[10:11]  # byte 10 is the newline
    assert seen["into"] == (7, data[11:18])
    assert unpacked_files(tmp_path) == {"after.txt": b"next member"}


def test_a_consumer_cannot_read_past_its_member(tmp_path: Path):
    chunks: list[bytes] = []
    claim = lambda name, head, size: lambda stream: chunks.append(stream.read()) or chunks.append(stream.read(10))  # noqa: E731
    unpack(build_tar({"model.joblib": b"abc", "b.txt": b"other"}), tmp_path, claim=claim)
    assert chunks[:2] == [b"abc", b""]


def corrupt_second_header(raw: bytes) -> bytes:
    first = tarfile.open(fileobj=io.BytesIO(raw)).getmembers()[1].offset
    return raw[:first] + b"\xff" * 20 + raw[first + 20 :]


def test_a_bad_header_after_the_first_member_is_refused_not_taken_for_the_end(tmp_path: Path):
    raw = corrupt_second_header(build_tar({"a.txt": b"a", "b.txt": b"b"}, tarfile.USTAR_FORMAT))
    with pytest.raises(UnsafeArchive, match=r"not a readable tar: .* at offset 1024") as refused:
        unpack(raw, tmp_path)
    assert refused.value.check == "tar"


def test_a_tar_that_ends_inside_a_member_is_refused_even_in_a_sound_gzip(tmp_path: Path):
    raw = build_tar({"model.joblib": b"x" * 5000})
    with pytest.raises(UnsafeArchive, match=r"ends inside member 'model\.joblib'") as refused:
        unpack(raw[: BLOCK + 1000], tmp_path)
    assert refused.value.check == "tar"


def test_a_consumer_sees_the_same_refusal_when_its_member_is_cut(tmp_path: Path):
    raw = build_tar({"model.joblib": b"x" * 5000})
    with pytest.raises(UnsafeArchive, match=r"ends inside member 'model\.joblib': 4000 bytes missing"):
        unpack(raw[: BLOCK + 1000], tmp_path, claim=lambda name, head, size: lambda stream: stream.read())


def pax_archive(records: dict[str, str], name: str = "model.joblib", data: bytes = b"abc") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        member = tarfile.TarInfo(name)
        member.size = len(data)
        member.pax_headers = records
        archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def test_pax_path_and_global_headers_are_applied(tmp_path: Path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "g"}) as archive:
        member = tarfile.TarInfo("short")
        member.size = 3
        member.pax_headers = {"path": "renamed/by/pax.joblib"}
        archive.addfile(member, io.BytesIO(b"abc"))
    unpack(buffer.getvalue(), tmp_path)
    assert unpacked_files(tmp_path) == {"renamed/by/pax.joblib": b"abc"}


@pytest.mark.parametrize(
    ("records", "check", "detail"),
    [
        ({"path": "../../escape.joblib"}, "member_names", "escapes"),
        ({"path": "/abs.joblib"}, "member_names", "absolute"),
        ({"GNU.sparse.map": "0,3"}, "member_types", "sparse"),
        ({"size": "not-a-number"}, "tar", "not plain digits"),
        ({"size": "+3"}, "tar", "not plain digits"),
    ],
    ids=["pax-traversal", "pax-absolute", "pax-sparse", "pax-bad-size", "pax-signed-size"],
)
def test_pax_records_cannot_smuggle_a_member_past_the_checks(tmp_path: Path, records, check, detail):
    with pytest.raises(UnsafeArchive, match=detail) as refused:
        unpack(pax_archive(records), tmp_path / "out")
    assert refused.value.check == check
    assert not (tmp_path / "escape.joblib").exists()


def test_a_malformed_pax_record_is_refused(tmp_path: Path):
    raw = bytearray(pax_archive({"comment": "x" * 10}))
    record = raw.index(b"comment=")
    raw[record - 3 : record - 1] = b"99"  # a record length that runs past the header
    header = tarfile.TarInfo.frombuf(bytes(raw[:BLOCK]), "utf-8", "strict")
    raw[:BLOCK] = header.tobuf(tarfile.USTAR_FORMAT)[:BLOCK]  # keep the pax header's checksum valid
    raw[156:157] = tarfile.XHDTYPE
    chksum = tarfile.calc_chksums(bytes(raw[:BLOCK]))[0]
    raw[148:156] = b"%06o\0 " % chksum
    with pytest.raises(UnsafeArchive, match="malformed pax") as refused:
        unpack(bytes(raw), tmp_path)
    assert refused.value.check == "tar"


def test_extension_headers_count_against_the_header_cap(tmp_path: Path):
    raw = build_tar({"n" * 5000 + ".joblib": b"abc"}, tarfile.GNU_FORMAT)
    with pytest.raises(UnsafeArchive, match="header size cap") as refused:
        unpack(raw, tmp_path, ArchiveLimits(max_header_bytes=4096))
    assert refused.value.check == "unpack_limits"


def test_an_old_gnu_sparse_member_is_refused(tmp_path: Path):
    raw = bytearray(build_tar({"model.joblib": b"abc"}, tarfile.GNU_FORMAT))
    raw[156:157] = tarfile.GNUTYPE_SPARSE
    raw[148:156] = b"%06o\0 " % tarfile.calc_chksums(bytes(raw[:BLOCK]))[0]
    with pytest.raises(UnsafeArchive, match="sparse") as refused:
        unpack(bytes(raw), tmp_path)
    assert refused.value.check == "member_types"


def test_an_extension_header_with_no_member_after_it_is_refused(tmp_path: Path):
    raw = build_tar({"n" * 300: b"abc"}, tarfile.GNU_FORMAT)
    long_name_header = BLOCK + BLOCK  # the 'L' header and its one block of name
    with pytest.raises(UnsafeArchive, match="before its member"):
        unpack(raw[:long_name_header] + bytes(2 * BLOCK), tmp_path)


@pytest.mark.parametrize(
    "files",
    [{"n" * 300 + "/model.joblib": b"abc"}, {"a": b"file", "a/b.txt": b"under a file"}],
    ids=["component-too-long", "file-as-directory"],
)
def test_a_name_the_filesystem_cannot_hold_is_a_refusal_not_a_crash(tmp_path: Path, files):
    with pytest.raises(UnsafeArchive, match="cannot be unpacked") as refused:
        unpack(build_tar(files, tarfile.GNU_FORMAT), tmp_path)
    assert refused.value.check == "member_names"


SEED_ARCHIVES = [
    build_tar({"model.joblib": b"m" * 700, "n" * 150 + "/eval.json": b"{}"}, tarfile.GNU_FORMAT, dirs=("d",)),
    build_tar({"model.joblib": b"m" * 700, "é" * 120 + ".json": b"{}"}, tarfile.PAX_FORMAT),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(range(len(SEED_ARCHIVES))),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_a_damaged_archive_is_unpacked_or_refused_by_name_never_crashes(tmp_path_factory, seed, flips, cut):
    damaged = bytearray(SEED_ARCHIVES[seed])
    for position, value in flips:
        damaged[position % len(damaged)] = value
    if cut is not None:
        damaged = damaged[: cut % (len(damaged) + 1)]
    root = tmp_path_factory.mktemp("case")
    dest = root / "out"
    dest.mkdir()
    try:
        result = unpack(bytes(damaged), dest)
    except UnsafeArchive as refused:
        assert refused.check in {"tar", "gzip", "member_names", "member_types", "unpack_limits"}
        assert refused.detail
    else:
        assert result.files, "an archive that unpacks has members"
    assert list(root.iterdir()) == [dest], "nothing is written outside the destination"


@pytest.mark.parametrize("kind", [tarfile.REGTYPE, tarfile.GNUTYPE_LONGNAME], ids=["member", "long-name"])
def test_a_negative_base256_size_is_refused(tmp_path: Path, kind: bytes):
    raw = bytearray(build_tar({"model.joblib": b"abc", "after.txt": b"x"}, tarfile.GNU_FORMAT))
    raw[156:157] = kind
    raw[124:136] = b"\xff" * 12  # base-256: -1
    raw[148:156] = b"%06o\0 " % tarfile.calc_chksums(bytes(raw[:BLOCK]))[0]
    with pytest.raises(UnsafeArchive, match="negative size") as refused:
        unpack(bytes(raw), tmp_path)
    assert refused.value.check == "tar"


def header_offsets(raw: bytes) -> list[int]:
    """Where each 512-byte header starts, extension headers included."""
    offsets, position = [], 0
    while position + BLOCK <= len(raw) and raw[position : position + BLOCK] != bytes(BLOCK):
        offsets.append(position)
        size = tarfile.TarInfo.frombuf(raw[position : position + BLOCK], "utf-8", "surrogateescape").size
        position += BLOCK + -(-size // BLOCK) * BLOCK
    return offsets


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(range(len(SEED_ARCHIVES))),
    header=st.integers(min_value=0),
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=BLOCK - 1), st.sampled_from(b"\x00\x80\xff/.0 7xLKS")),
        min_size=1,
        max_size=4,
    ),
    fix_checksum=st.booleans(),
)
def test_edited_headers_are_unpacked_or_refused_by_name(tmp_path_factory, seed, header, edits, fix_checksum):
    raw = bytearray(SEED_ARCHIVES[seed])
    offsets = header_offsets(bytes(raw))
    start = offsets[header % len(offsets)]
    for position, value in edits:
        raw[start + position] = value
    if fix_checksum:  # an edit that keeps the checksum valid reaches the field checks
        block = bytes(raw[start : start + BLOCK])
        raw[start + 148 : start + 156] = b"%06o\0 " % tarfile.calc_chksums(block)[0]
    root = tmp_path_factory.mktemp("case")
    dest = root / "out"
    dest.mkdir()
    try:
        unpack(bytes(raw), dest)
    except UnsafeArchive as refused:
        assert refused.check in {"tar", "gzip", "member_names", "member_types", "unpack_limits"}
    assert list(root.iterdir()) == [dest]


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
