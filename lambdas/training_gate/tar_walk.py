"""The tar's headers, one member at a time, as a small reader of its own walks them over the inflating stream.

Each 512-byte header is parsed by `tarfile.TarInfo.frombuf`; the extension headers (GNU long names, pax) are
applied here, and whatever Python's tarfile and GNU tar would read differently is refused: a second
extension header of one kind, a global header that renames, a regular file named like a directory, a time or
an id that one of them cannot set.
"""

from __future__ import annotations

import dataclasses
import re
import tarfile
from dataclasses import dataclass
from typing import Any

# Read and inflate 256 KiB at a time: each inflated chunk is consumed while it is still in the CPU's
# cache, and no inflate call can produce more than this however compressible the input (bomb defence).
# Measured in bench/bench_inspect.py: 1 MiB chunks made the same walk about 20% slower.
CHUNK = 1 << 18
BLOCK = tarfile.BLOCKSIZE
_END_OF_ARCHIVE = bytes(BLOCK)
# Extension headers that describe the member after them; anything else that is not a regular file,
# a directory, a link or a special file is a type this reader does not walk, and is refused.
_LONG_NAME, _LONG_LINK = tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)
_PAX_GLOBAL = tarfile.XGLTYPE
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_RENAMING_KEYS = {"path", "linkpath", "size"}
_EXTENSION_NAMES = {
    _LONG_NAME: "GNU long name",
    _LONG_LINK: "GNU long link",
    tarfile.XHDTYPE: "pax",
    tarfile.SOLARIS_XHDTYPE: "pax",
    _PAX_GLOBAL: "global pax",
}
# Times and ids every extractor can write: the ustar octal range of a time (12 digits: up to year 2242), and
# ids a uid_t holds without the -1 that means "unchanged". Outside them tarfile raises (OverflowError from
# utime or chown) or GNU tar refuses, so the readers would not write the same files.
MAX_TIME = 8**11 - 1
MAX_ID = 2**32 - 2
_PAX_TIMES = ("mtime", "atime", "ctime")
_PAX_IDS = ("uid", "gid")


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 1_000
    max_member_bytes: int = 2 << 30  # 2 GiB
    max_total_bytes: int = 4 << 30  # 4 GiB unpacked, tar headers included
    max_header_bytes: int = 1 << 20  # a pax/GNU long-name header larger than this is an attack
    # Inflated/compressed ratio, judged once RATIO_FLOOR bytes are out: deflate alone tops out near
    # 1032:1, so a higher ratio is a nested or hand-made bomb.
    max_ratio: int = 1_100
    # Bytes written to disk (members not claimed by a loader). None: no cap beyond max_total_bytes.
    # The inspector sets it from the free space of its work directory, so the cap, not the disk, stops it.
    max_written_bytes: int | None = None

    def with_written(self, max_written_bytes: int) -> ArchiveLimits:
        return dataclasses.replace(self, max_written_bytes=max_written_bytes)


RATIO_FLOOR = 64 << 20


class UnsafeArchive(Exception):
    """The archive breaks a safety rule; `check` names the check that refused it."""

    def __init__(self, check: str, detail: str):
        super().__init__(detail)
        self.check = check
        self.detail = detail


class _MemberReader:
    """A read-only file over one tar member's bytes as they inflate: reads are sliced (or, with
    `readinto`, copied) straight from the inflated chunk, and never go past the member."""

    def __init__(self, source: Any, name: str, size: int):
        self._source = source
        self._name = name
        self.remaining = size

    def _short(self) -> UnsafeArchive:
        return UnsafeArchive("tar", f"the tar ends inside member {self._name!r}: {self.remaining} bytes missing")

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self._source.read_exact(want)
        self.remaining -= len(data)
        if len(data) < want:
            raise self._short()
        return data

    def readline(self, size: int | None = -1) -> bytes:
        want = self.remaining if size is None or size < 0 else min(size, self.remaining)
        line = self._source.readline(want)
        self.remaining -= len(line)
        if len(line) < want and not line.endswith(b"\n"):
            raise self._short()
        return line

    def readinto(self, target: bytearray | memoryview) -> int:
        view = memoryview(target).cast("B")[: self.remaining]
        filled = self._source.readinto(view)
        self.remaining -= filled
        if filled < len(view):
            raise self._short()
        return filled

    def read_some(self) -> bytes:
        data = self._source.read_some(min(self.remaining, CHUNK))
        if self.remaining and not data:
            raise self._short()
        self.remaining -= len(data)
        return data

    def peek(self, size: int = 1) -> bytes:
        return self._source.peek(min(max(size, 1), self.remaining))

    def skip_rest(self) -> None:
        skipped = self._source.skip(self.remaining)
        self.remaining -= skipped
        if self.remaining:
            raise self._short()


def _pax_records(data: bytes, where: str) -> dict[str, str]:
    """POSIX pax records, "<length> <key>=<value>\\n", the length counting the whole record."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data) and data[position] != 0:
        space = data.find(b" ", position)
        # Plain ASCII digits only: int() also takes "+12", " 12" and "1_2", where tar readers differ.
        digits = data[position:space] if space > position else b""
        length = int(digits) if digits.isdigit() else 0
        record = data[position : position + length]
        if length <= space - position + 1 or len(record) < length or not record.endswith(b"\n"):
            raise UnsafeArchive("tar", f"malformed pax header {where}")
        key, equals, value = record[space - position + 1 : -1].partition(b"=")
        if not equals:
            raise UnsafeArchive("tar", f"malformed pax record {where}: no '='")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


class _TarWalker:
    """The headers of a tar, one member at a time, over the inflating stream.

    Each 512-byte header is parsed by `tarfile.TarInfo.frombuf` (checksum, numeric fields, ustar
    prefix); the extension headers that rename or resize the next member (GNU long names, pax) are
    applied here, with their size counted against the header cap. Member data is not read here: the
    caller reads it through a `_MemberReader`, and `next()` skips what it left."""

    def __init__(self, source: Any, limits: ArchiveLimits):
        self._source = source
        self._limits = limits
        self._global: dict[str, str] = {}
        self._pending: _MemberReader | None = None
        self._padding = 0

    def _finish_previous(self) -> None:
        if self._pending is not None:
            self._pending.skip_rest()
            self._pending = None
        if self._source.skip(self._padding) != self._padding:
            raise UnsafeArchive("tar", "the tar ends inside a member's padding")
        self._padding = 0

    def _extension_data(self, info: tarfile.TarInfo, header_bytes: int, offset: int) -> bytes:
        if header_bytes + info.size > self._limits.max_header_bytes:
            raise UnsafeArchive(
                "unpack_limits", f"a member header exceeds the header size cap of {self._limits.max_header_bytes} bytes"
            )
        data = self._source.read_exact(info.size)
        padding = -info.size % BLOCK
        if len(data) < info.size or self._source.skip(padding) != padding:
            raise UnsafeArchive("tar", f"the tar ends inside an extension header at offset {offset}")
        return data

    def next(self) -> tarfile.TarInfo | None:
        self._finish_previous()
        long_name = long_link = None
        pax: dict[str, str] = {}
        header_bytes = 0
        extensions: set[str] = set()
        while True:
            offset = self._source.consumed
            block = self._source.read_exact(BLOCK)
            if not block and offset == 0:
                raise UnsafeArchive("tar", "the artifact is empty: its gzip stream holds no tar at all")
            if not block:
                # tarfile accepts a tar without its end blocks, GNU tar warns: a cut-off archive is refused.
                raise UnsafeArchive("tar", "the tar has no end-of-archive blocks: it may be cut short")
            if block == _END_OF_ARCHIVE:
                if long_name is not None or long_link is not None or pax:
                    raise UnsafeArchive("tar", "the tar ends after an extension header, before its member")
                if self._source.read_exact(BLOCK) != _END_OF_ARCHIVE:
                    raise UnsafeArchive("tar", f"a lone zero block at offset {offset}: the end of the tar is damaged")
                return None
            try:
                info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.HeaderError as exc:
                raise UnsafeArchive(
                    "tar", f"the artifact is not a readable tar: {exc} in the header at offset {offset}"
                ) from exc
            if info.size < 0:  # base-256 size fields can say so; nothing may be read backwards
                raise UnsafeArchive("tar", f"the header at offset {offset} has a negative size")
            header_bytes += BLOCK
            kind = _EXTENSION_NAMES.get(info.type)
            if kind is not None:
                # Readers disagree on a second one (tarfile keeps the first GNU long name, GNU tar the last;
                # the gate would merge two pax headers, GNU tar keeps the last): one of each kind, or none.
                if kind in extensions:
                    raise UnsafeArchive("tar", f"a second {kind} header for one member at offset {offset}")
                extensions.add(kind)
            if info.type in (_LONG_NAME, _LONG_LINK):
                value = tarfile.nts(self._extension_data(info, header_bytes, offset), "utf-8", "surrogateescape")
                header_bytes += info.size
                if info.type == _LONG_NAME:
                    long_name = value
                else:
                    long_link = value
                continue
            if info.type in _PAX_TYPES or info.type == _PAX_GLOBAL:
                records = _pax_records(self._extension_data(info, header_bytes, offset), f"at offset {offset}")
                header_bytes += info.size
                if any(key.startswith("GNU.sparse.") for key in records):
                    raise UnsafeArchive("member_types", f"sparse file refused (pax header at offset {offset})")
                if info.type == _PAX_GLOBAL and _RENAMING_KEYS & records.keys():
                    # tarfile applies a global path/size to the members after it; other readers do not.
                    raise UnsafeArchive("tar", f"a global pax header renames or resizes members (offset {offset})")
                (self._global if info.type == _PAX_GLOBAL else pax).update(records)
                continue
            return self._member(info, {**self._global, **pax}, long_name, long_link)

    def _member(
        self, info: tarfile.TarInfo, pax: dict[str, str], long_name: str | None, long_link: str | None
    ) -> tarfile.TarInfo:
        # Readers disagree on which wins when both a GNU long name and a pax path name one member.
        if (long_name is not None and "path" in pax) or (long_link is not None and "linkpath" in pax):
            raise UnsafeArchive("tar", f"member {info.name!r} has both a GNU long name and a pax path")
        if long_name is not None:
            info.name = long_name
        if long_link is not None:
            info.linkname = long_link
        info.name = pax.get("path", info.name)
        info.linkname = pax.get("linkpath", info.linkname)
        if "size" in pax:
            if not pax["size"].isascii() or not pax["size"].isdigit():
                raise UnsafeArchive("tar", f"member {info.name!r} has a pax size that is not plain digits")
            info.size = int(pax["size"])
        if info.isdir():
            info.name = info.name.rstrip("/") or "."
        if info.type == tarfile.GNUTYPE_SPARSE:
            raise UnsafeArchive("member_types", f"sparse file refused: {info.name!r}")
        if info.type not in tarfile.SUPPORTED_TYPES:
            raise UnsafeArchive("member_types", f"unsupported member type {info.type!r} refused: {info.name!r}")
        if info.size < 0:
            raise UnsafeArchive("tar", f"member {info.name!r} has a negative size")
        if not info.isdir() and info.name.endswith("/"):
            # tarfile writes a file at the name without its slash; GNU tar makes a directory, or refuses.
            raise UnsafeArchive("member_names", f"a {_kind(info)} named like a directory refused: {info.name!r}")
        _check_times_and_ids(info, pax)
        return info

    def data(self, info: tarfile.TarInfo) -> _MemberReader:
        """The reader of the member `next()` just returned; only regular files carry data."""
        self._pending = _MemberReader(self._source, info.name, info.size if info.type in _REGULAR else 0)
        self._padding = -self._pending.remaining % BLOCK
        return self._pending


def is_regular(info: tarfile.TarInfo) -> bool:
    return info.type in _REGULAR


def _kind(info: tarfile.TarInfo) -> str:
    return "regular file" if info.type in _REGULAR else "non-directory member"


def _check_times_and_ids(info: tarfile.TarInfo, pax: dict[str, str]) -> None:
    """Every time and id within what both tarfile and GNU tar extract (header fields and pax records alike)."""
    for key in _PAX_TIMES:
        text = pax.get(key)
        if text is not None and not _PAX_TIME.fullmatch(text):
            raise UnsafeArchive("tar", f"member {info.name!r} has a pax {key} that is not a plain number: {text!r}")
    for key in _PAX_IDS:
        text = pax.get(key)
        if text is not None and not (text.isascii() and text.isdigit()):
            raise UnsafeArchive("tar", f"member {info.name!r} has a pax {key} that is not plain digits: {text!r}")
    times = [("mtime", info.mtime)] + [(k, float(pax[k])) for k in _PAX_TIMES if k in pax]
    for key, value in times:
        if not 0 <= value <= MAX_TIME:
            raise UnsafeArchive("tar", f"member {info.name!r} has a {key} extractors cannot all set: {value!r}")
    ids = [("uid", info.uid), ("gid", info.gid)] + [(k, int(pax[k])) for k in _PAX_IDS if k in pax]
    for key, value in ids:
        if not 0 <= value <= MAX_ID:
            raise UnsafeArchive("tar", f"member {info.name!r} has a {key} extractors cannot all set: {value!r}")


_PAX_TIME = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
