"""Zip parity: an archive passes only when torch's reader (miniz) and Python's zipfile read the same bytes.

Each hostile case is a valid archive changed in one place where the two readers part ways (or one of
them refuses): a duplicate name, names equal but for case, local and central headers that disagree, a data
descriptor that lies, zip64 records out of place, a comment or bytes before or after the archive, gaps
and overlapping entries, encryption, foreign methods, a bad CRC, an inflation bomb.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.support import torch_writer as tw
from training_gate.inspector.checkpoints.errors import Reason, Refused
from training_gate.inspector.checkpoints.zipread import DEFLATED, STORED, ZipArchive

RECORDS = {"data.pkl": b"\x80\x02}q\x00.", "byteorder": b"little", "data/0": bytes(range(64)), "version": b"3\n"}


def miniz(records: dict[str, bytes] = RECORDS, prefix: str = "archive") -> bytearray:
    writer = tw.ZipWriter(prefix)
    for name, data in records.items():
        writer.record(name, data)
    return bytearray(writer.finish())


def read(tmp_path: Path, data: bytes | bytearray, methods: frozenset[int] = frozenset({STORED})) -> ZipArchive:
    path = tmp_path / "archive.zip"
    path.write_bytes(bytes(data))
    archive = ZipArchive(path, "archive.zip", methods)
    for entry in archive.entries:
        b"".join(archive.chunks(entry))
    return archive


def refused(tmp_path: Path, data: bytes | bytearray, methods: frozenset[int] = frozenset({STORED})) -> Refused:
    with pytest.raises(Refused) as caught:
        read(tmp_path, data, methods)
    return caught.value


def test_what_miniz_writes_for_torch_reads_the_same_as_pythons_zipfile(tmp_path: Path):
    data = miniz()
    archive = read(tmp_path, data)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as reference:
        assert [e.name for e in archive.entries] == reference.namelist()
        for entry in archive.entries:
            assert b"".join(archive.chunks(entry)) == reference.read(entry.name)
            assert entry.flags == 0x0808 and entry.data_offset % 64 == 0  # data descriptors, 64-byte alignment


def test_what_pythons_zipfile_writes_deflated_reads_the_same(tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as writer:
        for name, content in RECORDS.items():
            writer.writestr(f"archive/{name}", content * 50)
    archive = read(tmp_path, buffer.getvalue(), frozenset({STORED, DEFLATED}))
    assert {e.name: b"".join(archive.chunks(e)) for e in archive.entries} == {
        f"archive/{k}": v * 50 for k, v in RECORDS.items()
    }
    assert refused(tmp_path, buffer.getvalue()).reason is Reason.ZIP_AMBIGUOUS  # torch stores: deflate refused


def test_a_duplicate_name_is_refused(tmp_path: Path):
    writer = tw.ZipWriter()
    for name in ("data.pkl", "data/0", "data/0", "version"):
        writer.record(name, b"x")
    assert "two entries" in str(refused(tmp_path, writer.finish()))


def test_names_equal_but_for_case_are_refused_because_torch_finds_them_ignoring_case(tmp_path: Path):
    data = miniz({"data.pkl": b"a", "DATA.PKL": b"b", "version": b"3\n"})
    assert "ignoring case" in str(refused(tmp_path, data))


def test_a_local_name_that_differs_from_the_central_one_is_refused(tmp_path: Path):
    data = miniz()
    at = data.index(b"archive/byteorder")  # the first occurrence is the local header's
    data[at : at + 17] = b"archive/byteorDER"
    assert "the local header names" in str(refused(tmp_path, data))


def test_local_flags_that_differ_from_the_central_ones_are_refused(tmp_path: Path):
    data = miniz()
    data[6:8] = struct.pack("<H", 0x0800)  # the first local header loses its data-descriptor flag
    assert "other flags or method" in str(refused(tmp_path, data))


def test_a_data_descriptor_that_disagrees_with_the_central_directory_is_refused(tmp_path: Path):
    data = miniz()
    at = data.index(b"PK\x07\x08")
    data[at + 4 : at + 8] = b"\0\0\0\0"
    assert "data descriptor" in str(refused(tmp_path, data))


def test_a_comment_or_bytes_after_the_end_record_are_refused(tmp_path: Path):
    data = miniz()
    commented = data[:-2] + struct.pack("<H", 4) + b"note"
    assert "last 22 bytes" in str(refused(tmp_path, commented))
    assert refused(tmp_path, data + b"\0" * 7).reason in (Reason.ZIP_AMBIGUOUS, Reason.TRUNCATED)


def test_bytes_prepended_to_the_archive_are_refused(tmp_path: Path):
    # Python's zipfile shifts every offset by what precedes the archive; miniz does not.
    assert refused(tmp_path, b"#!/bin/sh\nexit 0\n" + miniz()).reason is Reason.ZIP_AMBIGUOUS
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as writer:
        writer.writestr("archive/version", b"3\n")
    assert "bytes prepended" in str(refused(tmp_path, b"#!/bin/sh\nexit 0\n" + buffer.getvalue()))


def test_a_gap_between_entries_is_refused(tmp_path: Path):
    writer = tw.ZipWriter()
    writer.record("data.pkl", b"\x80\x02}.")
    writer.out += b"hidden payload"
    writer.record("version", b"3\n")
    assert "follows a gap" in str(refused(tmp_path, writer.finish()))


def test_an_entry_hidden_inside_another_entrys_data_is_refused(tmp_path: Path):
    inner = tw.ZipWriter("archive")
    inner.record("evil", b"payload")
    smuggled = bytes(inner.out)
    writer = tw.ZipWriter()
    writer.record("data/0", smuggled)
    writer.record("version", b"3\n")
    start = writer.out.index(smuggled)
    evil = bytearray(inner.central[0])
    evil[42:46] = struct.pack("<L", start)  # the central entry points into data/0's bytes
    writer.central.append(bytes(evil))
    assert "overlaps" in str(refused(tmp_path, writer.finish()))


def test_zip64_records_out_of_place_are_refused(tmp_path: Path):
    data = miniz()
    locator = data.rindex(b"PK\x06\x07")
    moved = bytearray(data)
    moved[locator + 8 : locator + 16] = struct.pack("<Q", 0)
    assert "zip64 locator" in str(refused(tmp_path, moved))
    counts = bytearray(data)
    record = data.rindex(b"PK\x06\x06")
    counts[record + 24 : record + 40] = struct.pack("<2Q", 9, 9)
    assert refused(tmp_path, counts).reason is Reason.ZIP_AMBIGUOUS


def test_an_end_record_claiming_zip64_without_its_locator_is_refused(tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as writer:
        writer.writestr("archive/version", b"3\n")
    data = bytearray(buffer.getvalue())
    data[-22 + 8 : -22 + 12] = struct.pack("<2H", 0xFFFF, 0xFFFF)
    assert "zip64" in str(refused(tmp_path, data))


def test_a_zip64_extra_field_is_read_as_both_readers_read_it(tmp_path: Path):
    content = b"weights" * 10
    name = b"archive/data/0"
    crc = zlib.crc32(content)
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), 20)
    local += name + struct.pack("<2H2Q", 1, 16, len(content), len(content)) + content
    extra = struct.pack("<2H2Q", 1, 16, len(content), len(content))
    central = struct.pack(
        "<4s6H3L5H2L",
        b"PK\x01\x02",
        45,
        45,
        0,
        0,
        0,
        0x21,
        crc,
        0xFFFFFFFF,
        0xFFFFFFFF,
        len(name),
        len(extra),
        0,
        0,
        0,
        0,
        0,
    )
    central += name + extra
    record_at = len(local) + len(central)
    tail = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 1, 1, len(central), len(local))
    tail += struct.pack("<4sLQL", b"PK\x06\x07", 0, record_at, 1)
    tail += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local), 0)
    data = local + central + tail
    with zipfile.ZipFile(io.BytesIO(data)) as reference:
        assert reference.read("archive/data/0") == content
    archive = read(tmp_path, data)
    assert b"".join(archive.chunks(archive.entries[0])) == content
    wrong = bytearray(data)
    at = len(local) + 46 + len(name) + 4
    wrong[at : at + 8] = struct.pack("<Q", len(content) + 1)
    assert refused(tmp_path, wrong).reason in (Reason.ZIP_AMBIGUOUS, Reason.TRUNCATED, Reason.MALFORMED)


@pytest.mark.parametrize(("flags", "method"), [(0x0809, 0), (0x0848, 0), (0x2808, 0), (0x0808, 12), (0x0808, 99)])
def test_encryption_patches_and_foreign_methods_are_refused(tmp_path: Path, flags: int, method: int):
    data = miniz()
    for at in _headers(data):
        data[at + (6 if data[at + 2] == 3 else 8) : at + (8 if data[at + 2] == 3 else 10)] = struct.pack("<H", flags)
        offset = 8 if data[at + 2] == 3 else 10
        data[at + offset : at + offset + 2] = struct.pack("<H", method)
    assert refused(tmp_path, data).reason is Reason.ZIP_AMBIGUOUS


def _headers(data: bytearray) -> list[int]:
    found, at = [], 0
    while (at := data.find(b"PK\x03\x04", at)) >= 0:
        found.append(at)
        at += 4
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        found.append(at)
        at += 4
    return found


def test_a_changed_byte_fails_the_crc_that_pythons_zipfile_checks(tmp_path: Path):
    data = miniz()
    at = data.index(bytes(range(64)))
    data[at + 10] ^= 0xFF
    assert "fails its CRC" in str(refused(tmp_path, data))


@pytest.mark.parametrize(
    "name", ["archive/../etc/passwd", "/archive/data.pkl", "archive//x", "archive/./x", "archive\\x"]
)
def test_names_that_escape_or_are_read_apart_are_refused(tmp_path: Path, name: str):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as writer:
        writer.writestr(zipfile.ZipInfo(name), b"x")
    assert refused(tmp_path, buffer.getvalue()).reason is Reason.ZIP_AMBIGUOUS


def test_a_name_that_is_not_ascii_without_the_utf8_flag_is_refused(tmp_path: Path):
    data = miniz({"data.pkl": b"x", "version": b"3\n"})
    for at in [i for i in range(len(data)) if data.startswith(b"data.pkl", i)]:
        data[at : at + 1] = b"\xe9"
    for at in _headers(data):
        offset = 6 if data[at + 2] == 3 else 8
        data[at + offset : at + offset + 2] = struct.pack("<H", 0x0008)
    assert "neither ASCII nor flagged UTF-8" in str(refused(tmp_path, data))


def test_an_entry_inflating_past_its_stated_size_is_refused(tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as writer:
        writer.writestr("archive/config.json", b"0" * 100_000)
    data = bytearray(buffer.getvalue())
    for at in _headers(data):
        offset = 22 if data[at + 2] == 3 else 24
        data[at + offset : at + offset + 4] = struct.pack("<L", 1000)
    error = refused(tmp_path, data, frozenset({STORED, DEFLATED}))
    assert "inflates past its stated size" in str(error)
