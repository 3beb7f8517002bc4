"""Stream a model.tar.gz once: digest the compressed bytes, walk the tar, unpack only what is safe.

The archive is never buffered whole and never trusted: every member is checked (type, name, size)
and every cap is enforced while bytes flow, before they are written.
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

CHUNK = 1 << 20
# tarfile's stream buffer: joblib reads arrays 256 KiB at a time, and a matching buffer saves
# tarfile from re-copying a larger remainder on every read (measured: bench/bench_inspect.py).
TAR_BUFSIZE = 1 << 18


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 1_000
    max_member_bytes: int = 2 << 30  # 2 GiB
    max_total_bytes: int = 4 << 30  # 4 GiB unpacked, tar headers included
    max_header_bytes: int = 1 << 20  # a pax/GNU long-name header larger than this is an attack


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

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.digest = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size is not None and size >= 0 else CHUNK)
        self.digest.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class _InflatingReader:
    """gzip inflation with a hard cap on the bytes it will ever produce (bomb defence).

    Reads may return fewer bytes than asked (tarfile's stream reader loops until it has enough), so
    each inflated chunk is handed out by slicing, never by shifting a growing buffer."""

    def __init__(self, source: _DigestingReader, cap: int):
        self._source = source
        self._inflater = _zlib.decompressobj(_zlib.MAX_WBITS | 16)
        self._chunk = b""
        self._position = 0
        self._cap = cap
        self.produced = 0
        self._eof = False

    def _inflate_more(self) -> None:
        while not self._eof:
            pending = self._inflater.unconsumed_tail
            if not pending:
                pending = self._source.read(CHUNK)
                if not pending:
                    if not self._inflater.eof:
                        raise UnsafeArchive("gzip", "the artifact is truncated: the gzip stream ends early")
                    self._eof = True
                    return
            try:
                out = self._inflater.decompress(pending, CHUNK)
            except (zlib.error, _zlib.error) as exc:
                raise UnsafeArchive("gzip", f"the artifact is not valid gzip: {exc}") from exc
            self.produced += len(out)
            if self.produced > self._cap:
                raise UnsafeArchive(
                    "unpack_limits", f"unpacked size exceeds the cap of {self._cap} bytes (possible bomb)"
                )
            if self._inflater.eof:
                # Bytes after the first gzip member are still hashed (by the drain), not walked.
                self._eof = True
            if out:
                self._chunk, self._position = out, 0
                return

    def drain(self) -> None:
        """Inflate to the end of the gzip member, so a truncated or corrupt tail (after the tar's
        end-of-archive blocks, which tarfile never reads) is detected and its CRC checked."""
        while not self._eof:
            self._position = len(self._chunk)
            self._inflate_more()

    def read(self, size: int = -1) -> bytes:
        if self._position >= len(self._chunk):
            self._inflate_more()
            if self._position >= len(self._chunk):
                return b""
        want = size if size is not None and size >= 0 else len(self._chunk)
        out = self._chunk[self._position : self._position + want]
        self._position += len(out)
        return out


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


def unpack_stream(
    raw: BinaryIO,
    dest: Path,
    limits: ArchiveLimits = ArchiveLimits(),
    claim: Callable[[str], Consumer | None] | None = None,
) -> ArchiveResult:
    """Walk and unpack a gzip'd tar from `raw` into `dest` (a fresh directory), enforcing limits.

    `claim(name)` may return a consumer for a regular member: it reads the member as it inflates
    and the member is not written (the model file is loaded this way, in the same single pass)."""
    digesting = _DigestingReader(raw)
    inflating = _InflatingReader(digesting, limits.max_total_bytes)
    result_files: list[str] = []
    claimed: set[str] = set()
    members = 0
    try:
        with tarfile.open(fileobj=inflating, mode="r|", bufsize=1 << 20) as archive:  # type: ignore[call-overload]
            for member in archive:
                members += 1
                if members > limits.max_members:
                    raise UnsafeArchive("unpack_limits", f"more than {limits.max_members} members (possible bomb)")
                if len(member.name.encode()) > limits.max_header_bytes:
                    raise UnsafeArchive("unpack_limits", "a member header exceeds the header size cap")
                relative = safe_relative_name(member.name)
                if not (member.isreg() or member.isdir()):
                    kind = "link" if (member.issym() or member.islnk()) else "device or special file"
                    raise UnsafeArchive("member_types", f"{kind} refused: {member.name!r}")
                if member.size > limits.max_member_bytes:
                    raise UnsafeArchive(
                        "unpack_limits",
                        f"member {member.name!r} is {member.size} bytes, over the cap of {limits.max_member_bytes}",
                    )
                try:
                    tarfile.data_filter(member, str(dest))
                except tarfile.FilterError as exc:
                    raise UnsafeArchive("member_names", f"refused by the data filter: {exc}") from exc
                target = dest.joinpath(*relative.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                source = archive.extractfile(member)
                assert source is not None  # a regular file always has a reader
                if relative.as_posix() in claimed:
                    raise UnsafeArchive("member_names", f"duplicate member refused: {member.name!r}")
                consumer = claim(relative.as_posix()) if claim else None
                if consumer is not None:
                    claimed.add(relative.as_posix())
                    consumer(source)
                    result_files.append(relative.as_posix())
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as sink:
                    while chunk := source.read(CHUNK):
                        sink.write(chunk)
                result_files.append(relative.as_posix())
    except tarfile.ReadError as exc:
        raise UnsafeArchive("tar", f"the artifact is not a readable tar: {exc}") from exc
    except FileExistsError as exc:
        raise UnsafeArchive("member_names", f"duplicate member refused: {exc.filename}") from exc
    if members == 0:
        raise UnsafeArchive("tar", "the artifact is an empty tar")
    inflating.drain()
    digesting.drain()
    return ArchiveResult(
        sha256=digesting.digest.hexdigest(),
        compressed_bytes=digesting.count,
        unpacked_bytes=inflating.produced,
        files=result_files,
    )
