"""The streaming tar reader against tarfile's own writer: every format, every header extension,
and the malformed shapes a hostile archive can take."""

from __future__ import annotations

import gzip
import hashlib
import io
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
