"""Stream a model.tar.gz once: digest the compressed bytes, walk the tar, unpack only what is safe.

The archive is never buffered whole and never trusted: every member is checked (type, name, size)
and every cap is enforced while bytes flow, before they are written. The tar is walked by a small
reader of its own (headers parsed by `tarfile.TarInfo.frombuf`): tarfile's stream mode copies every
block through buffers of its own, and a loader reading a member here reads the inflated bytes
directly. A header that does not parse is refused wherever it is, not taken for the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tarfile
import zlib

try:  # ISA-L inflates the same gzip about 20% faster than zlib; the results are identical.
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - the deployed image and the dev requirements both have it
    _zlib = zlib  # type: ignore[misc]
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

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


@dataclass
class ArchiveResult:
    sha256: str
    compressed_bytes: int
    unpacked_bytes: int
    files: list[str] = field(default_factory=list)


class _DigestingReader:
    """Reads the compressed object once, hashing and counting every byte that passes."""

    def __init__(self, raw: BinaryIO, digest: bool = True):
        self._raw = raw
        self.digest = hashlib.sha256()
        self._hash = digest
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size is not None and size >= 0 else CHUNK)
        if self._hash:
            self.digest.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class _InflatingReader:
    """gzip inflation with a hard cap on the bytes it will ever produce (bomb defence).

    Inflated bytes are handed out by slicing the current output chunk: no growing buffer is shifted,
    and a read that fits in the chunk costs one copy."""

    def __init__(self, source: _DigestingReader, cap: int, max_ratio: int = ArchiveLimits.max_ratio):
        self._source = source
        self._max_ratio = max_ratio
        self._inflater = _zlib.decompressobj(_zlib.MAX_WBITS | 16)
        self._chunk = b""
        self._position = 0
        self._cap = cap
        self.produced = 0
        self.consumed = 0
        self._eof = False

    def _inflate(self) -> bytes:
        """The next inflated bytes, b"" at the end of the gzip member."""
        while not self._eof:
            pending = self._inflater.unconsumed_tail
            if not pending:
                pending = self._source.read(CHUNK)
                if not pending:
                    if not self._inflater.eof:
                        raise UnsafeArchive("gzip", "the artifact is truncated: the gzip stream ends early")
                    self._eof = True
                    return b""
            try:
                out = self._inflater.decompress(pending, CHUNK)
            except (zlib.error, _zlib.error) as exc:
                raise UnsafeArchive("gzip", f"the artifact is not valid gzip: {exc}") from exc
            self.produced += len(out)
            if self.produced > self._cap:
                raise UnsafeArchive(
                    "unpack_limits",
                    f"unpacked size exceeds the cap of {self._cap} bytes (possible bomb; max_total_bytes)",
                )
            if self.produced > RATIO_FLOOR and self.produced > self._max_ratio * max(self._source.count, 1):
                raise UnsafeArchive(
                    "unpack_limits",
                    f"the gzip stream inflates more than {self._max_ratio}:1 (possible bomb; max_ratio)",
                )
            if self._inflater.eof:
                self._eof = True
            if out:
                return out
        return b""

    def _available(self) -> int:
        if self._position >= len(self._chunk):
            self._chunk, self._position = self._inflate(), 0
        return len(self._chunk) - self._position

    def read_some(self, limit: int) -> bytes:
        """At most `limit` bytes, as many as the current chunk holds; b"" only at the end."""
        available = min(self._available(), limit)
        out = self._chunk[self._position : self._position + available]
        self._position += available
        self.consumed += available
        return out

    def read_exact(self, size: int) -> bytes:
        """`size` bytes, or fewer only at the end of the stream."""
        first = self.read_some(size)
        if len(first) == size or not first:
            return first
        parts, missing = [first], size - len(first)
        while missing and (part := self.read_some(missing)):
            parts.append(part)
            missing -= len(part)
        return b"".join(parts)

    def readline(self, limit: int) -> bytes:
        """Up to and including the next newline, at most `limit` bytes; fewer only at the end."""
        parts: list[bytes] = []
        while limit and (available := min(self._available(), limit)):
            newline = self._chunk.find(b"\n", self._position, self._position + available)
            part = self.read_some(available if newline < 0 else newline + 1 - self._position)
            parts.append(part)
            limit -= len(part)
            if newline >= 0:
                break
        return b"".join(parts)

    def readinto(self, target: memoryview) -> int:
        filled = 0
        while filled < len(target) and (available := min(self._available(), len(target) - filled)):
            target[filled : filled + available] = memoryview(self._chunk)[self._position : self._position + available]
            self._position += available
            filled += available
        self.consumed += filled
        return filled

    def peek(self, size: int) -> bytes:
        """Up to `size` bytes without consuming them (a file format's magic number)."""
        while self._available() and len(self._chunk) - self._position < size:
            more = self._inflate()
            if not more:
                break
            self._chunk, self._position = self._chunk[self._position :] + more, 0
        return self._chunk[self._position : self._position + size]

    def skip(self, size: int) -> int:
        skipped = 0
        while skipped < size and (part := self.read_some(min(size - skipped, CHUNK))):
            skipped += len(part)
        return skipped

    def drain_zeros(self) -> None:
        """Inflate to the end of the gzip member, so a truncated or corrupt tail (after the tar's
        end-of-archive blocks) is detected and its CRC checked. What follows the end-of-archive
        blocks must be zeros (record padding): `tar -i` and other readers would read anything else."""
        while self._available():
            rest = self._chunk[self._position :]
            if rest.count(0) != len(rest):
                raise UnsafeArchive("tar", "non-zero bytes after the tar's end-of-archive blocks")
            self._position = len(self._chunk)

    def check_single_member(self) -> None:
        """tarfile and GNU tar both read on into a second gzip member; the gate reads one, so a
        second member (or any byte after the first) is refused rather than left unread."""
        trailing = self._inflater.unused_data or self._inflater.unconsumed_tail or self._source.read(CHUNK)
        if trailing:
            if trailing[:2] == b"\x1f\x8b":
                raise UnsafeArchive("gzip", "more than one gzip member: the gate inspects one, extractors read all")
            raise UnsafeArchive("gzip", "data after the end of the gzip stream")


class _MemberReader:
    """A read-only file over one tar member's bytes as they inflate: reads are sliced (or, with
    `readinto`, copied) straight from the inflated chunk, and never go past the member."""

    def __init__(self, source: _InflatingReader, name: str, size: int):
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


def is_archive_root(name: str) -> bool:
    """`.`, `./` (and `.//`): the directory `tar -C dir .` writes first."""
    return name.rstrip("/") == "."


def safe_relative_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if name.startswith("/") or path.is_absolute():
        raise UnsafeArchive("member_names", f"absolute member name refused: {name!r}")
    if any(part == ".." for part in path.parts):
        raise UnsafeArchive("member_names", f"member name escapes the directory: {name!r}")
    if "\x00" in name or not path.parts:
        raise UnsafeArchive("member_names", f"invalid member name: {name!r}")
    return path


Consumer = Callable[[BinaryIO], None]


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

    def __init__(self, source: _InflatingReader, limits: ArchiveLimits):
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
                raise UnsafeArchive("tar", "the artifact is an empty tar")
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


def _check_member(member: tarfile.TarInfo, limits: ArchiveLimits, dest: Path) -> PurePosixPath:
    relative = safe_relative_name(member.name)
    if not (member.type in _REGULAR or member.isdir()):
        kind = "link" if (member.issym() or member.islnk()) else "device or special file"
        raise UnsafeArchive("member_types", f"{kind} refused: {member.name!r}")
    if member.isdir() and member.size:
        raise UnsafeArchive("tar", f"directory {member.name!r} claims {member.size} bytes of data")
    if member.size > limits.max_member_bytes:
        raise UnsafeArchive(
            "unpack_limits",
            f"member {member.name!r} is {member.size} bytes, over the cap of {limits.max_member_bytes} "
            "(max_member_bytes)",
        )
    try:
        tarfile.data_filter(member, str(dest))
    except tarfile.FilterError as exc:
        raise UnsafeArchive("member_names", f"refused by the data filter: {exc}") from exc
    return relative


def _make_directory(path: Path, member: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a name component too long, a file where a directory should be
        raise UnsafeArchive("member_names", f"member {member!r} cannot be unpacked: {exc.strerror}") from exc


def unpack_stream(
    raw: BinaryIO,
    dest: Path,
    limits: ArchiveLimits = ArchiveLimits(),
    claim: Callable[[str, bytes, int], Consumer | None] | None = None,
    digest: bool = True,
    head_bytes: int = 0,
) -> ArchiveResult:
    """Walk and unpack a gzip'd tar from `raw` into `dest` (a fresh directory), enforcing limits.

    `claim(name, head, size)` sees each regular member's name, its first `head_bytes` bytes (not
    consumed) and its size, and may return a consumer: it reads the member as it inflates and the
    member is not written (a pickle is loaded this way, in the same single pass).
    `digest=False` skips the sha256 when the caller hashes the same bytes itself."""
    digesting = _DigestingReader(raw, digest)
    inflating = _InflatingReader(digesting, limits.max_total_bytes, limits.max_ratio)
    walker = _TarWalker(inflating, limits)
    result_files: list[str] = []
    seen: set[str] = set()
    members = 0
    written = 0
    while (member := walker.next()) is not None:
        members += 1
        if members > limits.max_members:
            raise UnsafeArchive("unpack_limits", f"more than {limits.max_members} members (possible bomb; max_members)")
        if member.isdir() and is_archive_root(member.name):
            name = "."
        else:
            relative = _check_member(member, limits, dest)
            name = relative.as_posix()
        # Any name twice, directories included: extractors differ on which copy (or mode) wins.
        if name in seen:
            raise UnsafeArchive("member_names", f"duplicate member refused: {member.name!r}")
        seen.add(name)
        if name == ".":
            continue
        target = dest.joinpath(*relative.parts)
        if member.isdir():
            _make_directory(target, member.name)
            continue
        source = walker.data(member)
        consumer = claim(name, source.peek(head_bytes) if head_bytes else b"", member.size) if claim else None
        if consumer is not None:
            consumer(source)  # type: ignore[arg-type]  # a read-only binary file, as loaders expect
            result_files.append(name)
            continue
        _make_directory(target.parent, member.name)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError as exc:
            raise UnsafeArchive("member_names", f"duplicate member refused: {member.name!r}") from exc
        except OSError as exc:
            raise UnsafeArchive("member_names", f"member {member.name!r} cannot be unpacked: {exc.strerror}") from exc
        if limits.max_written_bytes is not None and written + member.size > limits.max_written_bytes:
            os.close(fd)
            raise UnsafeArchive(
                "unpack_limits",
                f"member {member.name!r} would take the files written to {written + member.size} bytes, over the "
                f"{limits.max_written_bytes} bytes of free work space (raise the function's ephemeral storage)",
            )
        written += member.size
        with os.fdopen(fd, "wb") as sink:
            while chunk := source.read_some():
                sink.write(chunk)
        result_files.append(name)
    if members == 0 or seen == {"."}:
        raise UnsafeArchive("tar", "the artifact is an empty tar")
    inflating.drain_zeros()
    inflating.check_single_member()
    digesting.drain()
    return ArchiveResult(
        sha256=digesting.digest.hexdigest(),
        compressed_bytes=digesting.count,
        unpacked_bytes=inflating.produced,
        files=result_files,
    )
