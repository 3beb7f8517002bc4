"""Stream a model.tar.gz once: digest the compressed bytes, walk the tar, unpack only what is safe.

The archive is never buffered whole and never trusted: every member is checked (type, name, size)
and every cap is enforced while bytes flow, before they are written. The tar is walked by a small
reader of its own (headers parsed by `tarfile.TarInfo.frombuf`): tarfile's stream mode copies every
block through buffers of its own, and a loader reading a member here reads the inflated bytes
directly. A header that does not parse is refused wherever it is, not taken for the end.
"""

from __future__ import annotations

import hashlib
import os
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

from training_gate.tar_walk import (
    BLOCK,
    CHUNK,
    RATIO_FLOOR,
    ArchiveLimits,
    UnsafeArchive,
    _TarWalker,
    is_regular,
)

__all__ = [
    "BLOCK",
    "CHUNK",
    "RATIO_FLOOR",
    "ArchiveLimits",
    "ArchiveResult",
    "UnsafeArchive",
    "WorkSpaceExhausted",
    "unpack_stream",
]

_DEFAULT_LIMITS = ArchiveLimits()


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


class WorkSpaceExhausted(Exception):
    """The files to write do not fit the free space of the work directory: the limit of the environment the
    gate runs in, never a fault of the archive (the archive's own caps are `UnsafeArchive`)."""


def _check_member(member: tarfile.TarInfo, limits: ArchiveLimits, dest: Path) -> PurePosixPath:
    relative = safe_relative_name(member.name)
    if not (is_regular(member) or member.isdir()):
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
    limits: ArchiveLimits = _DEFAULT_LIMITS,
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
    # Set when the files no longer fit the work space. The rest is still read (nothing more is written or
    # claimed), so an artifact that also breaks its own caps is refused for that, as the model's fault.
    exhausted: str | None = None
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
        if exhausted is not None:
            continue  # the walker's next() reads past the member's data, through the caps
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
            target.unlink()
            exhausted = (
                f"member {member.name!r} would take the files written to {written + member.size} bytes, over the "
                f"{limits.max_written_bytes} bytes free in the gate's work directory."
            )
            continue
        written += member.size
        with os.fdopen(fd, "wb") as sink:
            while chunk := source.read_some():
                sink.write(chunk)
        result_files.append(name)
    # A tar with no member (or only its root directory) is what a job that saved nothing uploads: a valid
    # archive of no files, which recognition names (no model file of any kind), not a broken one.
    inflating.drain_zeros()
    inflating.check_single_member()
    digesting.drain()
    if exhausted is not None:
        raise WorkSpaceExhausted(exhausted)
    return ArchiveResult(
        sha256=digesting.digest.hexdigest(),
        compressed_bytes=digesting.count,
        unpacked_bytes=inflating.produced,
        files=result_files,
    )
