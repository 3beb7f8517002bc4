"""A zip read the way both of its consumers read it, or refused.

A PyTorch checkpoint is read by `PyTorchStreamReader` (miniz): it finds the end record by scanning
back from the end, takes the zip64 record from the locator's offset, sorts the central directory and
finds records by a case-insensitive binary search, locates data from the local header's name and
extra lengths but takes sizes from the central directory, and checks no CRC. Python's `zipfile`
(Keras, and anyone's tooling) takes the zip64 record from just before the locator, shifts every
offset by bytes prepended to the archive, decodes names without the UTF-8 flag as cp437, compares the
local name with the central one and checks every CRC.

Where those two could read different bytes, this reader refuses. So an archive passes only when:
the end record is the file's last 22 bytes (no comment); a zip64 locator, if present, points at the
zip64 record right before it, whose counts agree with the end record's; the central directory ends
where those records begin (nothing prepended); every entry's local header repeats the central name,
flags and method; sizes agree between the central directory, the zip64 extra field and the data
descriptor (which must follow the data when flag 3 is set, as miniz writes it); entries tile the file
from offset 0 to the central directory with no gap and no overlap; no two names are equal, not even
ignoring case; no encryption, no method other than stored (and deflate where the consumer inflates);
and each entry's CRC matches its bytes as they stream past. Sources: miniz 3.0.2 `miniz_zip.c`
(`mz_zip_reader_read_central_dir`, `mz_zip_reader_locate_file_v2`,
`mz_zip_reader_extract_to_mem_no_alloc1`, `mz_zip_writer_add_mem_ex_v2`) and CPython's `zipfile`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from training_gate.inspector.checkpoints.errors import Reason, refuse

EOCD = b"PK\x05\x06"
ZIP64_EOCD = b"PK\x06\x06"
ZIP64_LOCATOR = b"PK\x06\x07"
CENTRAL = b"PK\x01\x02"
LOCAL = b"PK\x03\x04"
DESCRIPTOR = b"PK\x07\x08"
STORED, DEFLATED = 0, 8
MAX_ENTRIES = 100_000
CHUNK = 1 << 20
# General-purpose flag bits a writer we accept may set: deflate options (1, 2), data descriptor (3),
# UTF-8 names (11). Encryption (0, 6, 13), patches (5) and the rest are refused.
_ALLOWED_FLAGS = 0x0002 | 0x0004 | 0x0008 | 0x0800
_U32, _U16 = 0xFFFFFFFF, 0xFFFF


@dataclass(frozen=True)
class ZipEntry:
    name: str
    method: int
    flags: int
    crc32: int
    compressed_size: int
    size: int
    header_offset: int
    data_offset: int
    end: int  # the first byte after its data and descriptor

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


class ZipArchive:
    """The entries of a zip whose structure both readers agree on; their bytes are read by `chunks`."""

    def __init__(self, path: Path, where: str, methods: frozenset[int] = frozenset({STORED})) -> None:
        self.path = path
        self.where = where
        self.methods = methods
        self.size = path.stat().st_size
        with open(path, "rb") as handle:
            self.entries = self._read(handle)
        self.by_name = {entry.name: entry for entry in self.entries}

    # -- structure ----------------------------------------------------------------------------------------

    def _fail(self, detail: str, reason: Reason = Reason.ZIP_AMBIGUOUS) -> Exception:
        return refuse(reason, detail, self.where)

    def _at(self, handle: BinaryIO, offset: int, size: int, what: str) -> bytes:
        if offset < 0 or offset + size > self.size:
            raise self._fail(f"{what} at offset {offset} runs past the end ({self.size} bytes)", Reason.TRUNCATED)
        handle.seek(offset)
        data = handle.read(size)
        if len(data) != size:
            raise self._fail(f"{what} at offset {offset} is cut short", Reason.TRUNCATED)
        return data

    def _read(self, handle: BinaryIO) -> list[ZipEntry]:
        if self.size < 22:
            raise self._fail("shorter than an end-of-central-directory record", Reason.TRUNCATED)
        eocd_at = self.size - 22
        end = self._at(handle, eocd_at, 22, "the end record")
        sig, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment = struct.unpack("<4s4H2LH", end)
        if sig != EOCD or comment != 0:
            raise self._fail("the end record is not the last 22 bytes (a comment or trailing bytes follow it)")
        if disk or cd_disk or on_disk != total:
            raise self._fail("a multi-disk archive")
        records_at = eocd_at
        locator = self._at(handle, eocd_at - 20, 20, "zip64 locator") if eocd_at >= 20 else b""
        if locator[:4] == ZIP64_LOCATOR:
            if eocd_at < 76:
                raise self._fail("a zip64 locator with no room for its record")
            loc_disk, record_at, disks = struct.unpack("<LQL", locator[4:])
            record = self._at(handle, eocd_at - 20 - 56, 56, "the zip64 end record")
            fields = struct.unpack("<4sQ2H2L4Q", record)
            (r_sig, r_size, _made, _needed, r_disk, r_cd_disk, r_on_disk, r_total, r_cd_size, r_cd_offset) = fields
            if loc_disk or disks != 1 or record_at != eocd_at - 76 or r_sig != ZIP64_EOCD or r_size != 44:
                raise self._fail("the zip64 locator does not point at a zip64 record right before it")
            if r_disk or r_cd_disk or r_on_disk != r_total:
                raise self._fail("a multi-disk zip64 archive")
            if (total, cd_size, cd_offset) != (min(r_total, _U16), min(r_cd_size, _U32), min(r_cd_offset, _U32)):
                raise self._fail("the zip64 record and the end record disagree on the central directory")
            total, cd_size, cd_offset, records_at = r_total, r_cd_size, r_cd_offset, eocd_at - 76
        elif _U16 in (total,) or _U32 in (cd_size, cd_offset):
            raise self._fail("the end record says zip64 but no zip64 locator precedes it")
        if total > MAX_ENTRIES:
            raise self._fail(f"{total} entries, more than {MAX_ENTRIES}", Reason.LIMIT)
        if cd_offset + cd_size != records_at:
            raise self._fail("the central directory does not end where the end records begin (bytes prepended?)")
        directory = self._at(handle, cd_offset, cd_size, "the central directory")
        entries = self._central(directory, total)
        located = [self._local(handle, entry) for entry in entries]
        self._tiling(located, cd_offset)
        return located

    def _central(self, directory: bytes, total: int) -> list[tuple[str, bytes, tuple[int, ...]]]:
        pos, found, seen = 0, [], {}
        for _ in range(total):
            if pos + 46 > len(directory) or directory[pos : pos + 4] != CENTRAL:
                raise self._fail("a central directory header is missing or cut short")
            fields = struct.unpack("<4s6H3L5H2L", directory[pos : pos + 46])
            (_sig, _made, _needed, flags, method, _time, _date, crc, csize, usize) = fields[:10]
            nlen, xlen, clen, disk, _iattr, _eattr, offset = fields[10:]
            raw = directory[pos + 46 : pos + 46 + nlen]
            extra = directory[pos + 46 + nlen : pos + 46 + nlen + xlen]
            if pos + 46 + nlen + xlen + clen > len(directory) or len(raw) != nlen:
                raise self._fail("a central directory header runs past the directory")
            pos += 46 + nlen + xlen + clen
            name = self._name(raw, flags)
            if clen:
                raise self._fail(f"entry {name!r} carries a comment")
            if disk:
                raise self._fail(f"entry {name!r} starts on another disk")
            self._flags(name, flags, method)
            usize, csize, offset = self._zip64(name, _extra_fields(extra, name, self.where), usize, csize, offset)
            if method == STORED and csize != usize:
                raise self._fail(f"stored entry {name!r} has different compressed and real sizes")
            folded = name.lower()
            if folded in seen:
                raise self._fail(f"two entries named {seen[folded]!r} and {name!r} (torch finds names ignoring case)")
            seen[folded] = name
            found.append((name, raw, (flags, method, crc, csize, usize, offset)))
        if pos != len(directory):
            raise self._fail("bytes after the last central directory header")
        return found

    def _name(self, raw: bytes, flags: int) -> str:
        if not raw or b"\x00" in raw or b"\\" in raw:
            raise self._fail(f"an entry name is empty or holds NUL or backslash: {raw[:80]!r}")
        try:
            name = raw.decode("utf-8" if flags & 0x0800 else "ascii")
        except UnicodeDecodeError as exc:
            raise self._fail("a name neither ASCII nor flagged UTF-8 (readers decode it apart)") from exc
        parts = name.rstrip("/").split("/")
        if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise self._fail(f"entry name {name!r} is absolute or has empty, '.' or '..' parts")
        return name

    def _flags(self, name: str, flags: int, method: int) -> None:
        if flags & ~_ALLOWED_FLAGS:
            raise self._fail(f"entry {name!r} has flags {flags:#06x} (encryption, patches or unknown bits)")
        if method not in self.methods:
            allowed = " or ".join({STORED: "stored", DEFLATED: "deflate"}[m] for m in sorted(self.methods))
            raise self._fail(f"entry {name!r} uses compression method {method}; this format is {allowed}")

    def _zip64(self, name: str, extra: dict[int, bytes], usize: int, csize: int, offset: int) -> tuple[int, int, int]:
        wide = extra.get(0x0001)
        needed = [value == _U32 for value in (usize, csize, offset)]
        if wide is None:
            if any(needed):
                raise self._fail(f"entry {name!r} has 0xFFFFFFFF sizes but no zip64 extra field")
            return usize, csize, offset
        if len(wide) != 8 * sum(needed):
            raise self._fail(f"entry {name!r} has a zip64 extra field of {len(wide)} bytes for {sum(needed)} value(s)")
        values = list(struct.unpack(f"<{sum(needed)}Q", wide))
        usize = values.pop(0) if needed[0] else usize
        csize = values.pop(0) if needed[1] else csize
        offset = values.pop(0) if needed[2] else offset
        return usize, csize, offset

    def _local(self, handle: BinaryIO, central: tuple[str, bytes, tuple[int, ...]]) -> ZipEntry:
        name, raw, (flags, method, crc, csize, usize, offset) = central
        header = self._at(handle, offset, 30, f"the local header of {name!r}")
        fields = struct.unpack("<4s5H3L2H", header)
        sig, _needed, l_flags, l_method, _time, _date, l_crc, l_csize, l_usize, nlen, xlen = fields
        if sig != LOCAL:
            raise self._fail(f"no local header where the central directory places {name!r}")
        if l_flags != flags or l_method != method:
            raise self._fail(f"the local header of {name!r} has other flags or method than its central header")
        body = self._at(handle, offset + 30, nlen + xlen, f"the local name of {name!r}")
        if body[:nlen] != raw:
            raise self._fail(f"the local header names {body[:nlen][:80]!r} where the central directory says {name!r}")
        extra = _extra_fields(body[nlen:], name, self.where)
        data_offset = offset + 30 + nlen + xlen
        end = data_offset + csize
        if end > self.size:
            raise self._fail(f"the data of {name!r} runs past the end", Reason.TRUNCATED)
        wide_local = 0x0001 in extra
        if flags & 0x0008:
            if (l_crc, l_csize, l_usize) not in ((0, 0, 0), (crc, min(csize, _U32), min(usize, _U32))):
                raise self._fail(f"the local header of {name!r} states other sizes or CRC than its central header")
            size = 24 if wide_local else 16
            descriptor = self._at(handle, end, size, f"the data descriptor of {name!r}")
            layout = "<4sLQQ" if wide_local else "<4sLLL"
            if struct.unpack(layout, descriptor) != (DESCRIPTOR, crc, csize, usize):
                raise self._fail(f"the data descriptor of {name!r} disagrees with its central header")
            end += size
        else:
            local_sizes = (l_usize, l_csize)
            if wide_local:
                local_sizes = self._zip64(name, extra, l_usize, l_csize, 0)[:2]
            if l_crc != crc or local_sizes != (usize, csize):
                raise self._fail(f"the local header of {name!r} states other sizes or CRC than its central header")
        entry = ZipEntry(name, method, flags, crc, csize, usize, offset, data_offset, end)
        if entry.is_dir and usize:
            raise self._fail(f"directory entry {name!r} holds data")
        return entry

    def _tiling(self, entries: list[ZipEntry], cd_offset: int) -> None:
        cursor = 0
        for entry in sorted(entries, key=lambda e: e.header_offset):
            if entry.header_offset != cursor:
                what = "overlaps the previous one" if entry.header_offset < cursor else "follows a gap"
                raise self._fail(f"entry {entry.name!r} at offset {entry.header_offset} {what} (expected {cursor})")
            cursor = entry.end
        if cursor != cd_offset:
            raise self._fail(f"{cd_offset - cursor} bytes between the last entry and the central directory")

    # -- data -------------------------------------------------------------------------------------------------

    def chunks(self, entry: ZipEntry, chunk: int = CHUNK) -> Iterator[bytes]:
        """The entry's bytes (inflated), checked against its size and CRC as they pass."""
        crc, produced = 0, 0
        for data in self._stored(entry, chunk) if entry.method == STORED else self._inflated(entry, chunk):
            produced += len(data)
            if produced > entry.size:
                raise self._fail(f"{entry.name!r} inflates past its stated size", Reason.MALFORMED)
            crc = zlib.crc32(data, crc)
            yield data
        if produced != entry.size:
            raise self._fail(f"{entry.name!r} holds {produced} bytes, its header says {entry.size}", Reason.MALFORMED)
        if crc != entry.crc32:
            raise self._fail(f"{entry.name!r} fails its CRC (the bytes were changed)", Reason.MALFORMED)

    def _stored(self, entry: ZipEntry, chunk: int) -> Iterator[bytes]:
        with open(self.path, "rb") as handle:
            handle.seek(entry.data_offset)
            left = entry.compressed_size
            while left:
                data = handle.read(min(chunk, left))
                if not data:
                    raise self._fail(f"{entry.name!r} is cut short", Reason.TRUNCATED)
                left -= len(data)
                yield data

    def _inflated(self, entry: ZipEntry, chunk: int) -> Iterator[bytes]:
        inflater = zlib.decompressobj(-15)
        produced = 0
        try:
            for raw in self._stored(entry, chunk):
                pending = raw
                while pending:
                    # Never more than one byte past the stated size: a bomb stops here.
                    data = inflater.decompress(pending, max(1, min(chunk, entry.size - produced + 1)))
                    pending = inflater.unconsumed_tail
                    produced += len(data)
                    yield data
                    if produced > entry.size or (inflater.eof and pending):
                        break
            rest = inflater.flush()
        except zlib.error as exc:
            raise self._fail(f"{entry.name!r} does not inflate: {exc}", Reason.MALFORMED) from exc
        if rest:
            yield rest
        if not inflater.eof or inflater.unused_data:
            raise self._fail(f"{entry.name!r}'s deflate stream does not end where its data does", Reason.MALFORMED)

    def read(self, entry: ZipEntry, cap: int) -> bytes:
        if entry.size > cap:
            raise self._fail(f"{entry.name!r} is {entry.size} bytes, over the {cap} this record may hold", Reason.LIMIT)
        return b"".join(self.chunks(entry))

    def extract(self, entry: ZipEntry, target: Path) -> None:
        with open(target, "xb") as sink:
            for data in self.chunks(entry):
                sink.write(data)


def _extra_fields(extra: bytes, name: str, where: str) -> dict[int, bytes]:
    """Extra fields must tile the extra area exactly; a second zip64 field would be read apart."""
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(extra):
        if pos + 4 > len(extra):
            raise refuse(Reason.ZIP_AMBIGUOUS, f"a cut extra field in {name!r}", where)
        tag, size = struct.unpack_from("<2H", extra, pos)
        if pos + 4 + size > len(extra):
            raise refuse(Reason.ZIP_AMBIGUOUS, f"an extra field of {name!r} runs past its area", where)
        if tag in fields:
            raise refuse(Reason.ZIP_AMBIGUOUS, f"two extra fields {tag:#06x} in {name!r}", where)
        fields[tag] = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
    return fields
