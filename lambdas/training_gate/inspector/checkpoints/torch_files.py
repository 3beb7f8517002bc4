"""PyTorch checkpoints in the three layouts torch.save has written, read as data.

- The zip (torch >= 1.6): `<prefix>/data.pkl` (the object, protocol 2), `<prefix>/data/<key>` (each
  storage's raw bytes), `<prefix>/version` or `.data/version`, `byteorder`, `.format_version`,
  `.storage_alignment`, `.data/serialization_id`. The prefix is the first central entry's directory, as
  PyTorchStreamReader takes it; every record must live under it. A TorchScript archive adds `code/`,
  `constants.pkl` and `__torch__.*` classes in data.pkl: its weights are read the same way and the
  archive is reported as code that runs when loaded.
- The legacy file (torch 0.4-1.5): a pickled magic number, protocol version 1001 and system info, the
  object's pickle (storages as persistent ids with their element counts), the list of storage keys, then
  each storage as an 8-byte element count and its bytes, in that order.
- The oldest tar (before 0.4): members `storages`, `tensors` and `pickle` (and `sys_info`); torch >= 2.6
  refuses it under weights_only, so it passes with that said.

Every storage's byte count must equal its element count times its dtype's size, each key must keep one
dtype and size wherever it is named, and every tensor must read inside its storage.
"""

from __future__ import annotations

import io
import struct
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training_gate.inspector.checkpoints.dtypes import DType
from training_gate.inspector.checkpoints.errors import Reason, refuse
from training_gate.inspector.checkpoints.numeric import TensorPlace, check_bounds
from training_gate.inspector.checkpoints.pickle_weights import (
    _STORAGE_GLOBALS,
    Device,
    Instance,
    NdArray,
    Profile,
    StateDict,
    Storage,
    Tensor,
    _Global,
    read_pickle,
    read_pickle_by_key,
    read_pickle_prefix,
)
from training_gate.inspector.checkpoints.zipread import DEFLATED, STORED, ZipArchive

LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
LEGACY_PROTOCOL = 1001
MAX_PICKLE_BYTES = 256 << 20  # data.pkl of the largest models is tens of MB: the tensors' metadata
SUPPORTED_ZIP_VERSIONS = range(1, 11)  # caffe2/serialize/versions.h: kMin..kMaxSupportedFileFormatVersion
_ZIP_RECORDS = {"data.pkl", "version", ".data/version", "byteorder", ".format_version", ".storage_alignment"}
_ZIP_RECORDS |= {".data/serialization_id"}


@dataclass
class TorchFile:
    format: str
    root: Any
    tensors: list[tuple[str, Tensor]] = field(default_factory=list)
    places: list[TensorPlace] = field(default_factory=list)
    version: str | None = None
    torchscript: bool = False
    code_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    globals: set[str] = field(default_factory=set)


class _Storages:
    """Storages by key as the pickle names them: one dtype and one size per key, whatever names it again."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.by_key: dict[str, Storage] = {}

    def __call__(self, pid: tuple[Any, ...]) -> Storage:
        if len(pid) not in (5, 6):
            raise refuse(Reason.PICKLE_SHAPE, f"a storage id of {len(pid)} fields", self.where)
        _tag, storage_type, key, location, numel = pid[:5]
        view = pid[5] if len(pid) == 6 else None
        if not (isinstance(storage_type, _Global) and storage_type in _STORAGE_GLOBALS.values()):
            raise refuse(Reason.PICKLE_SHAPE, f"a storage of type {storage_type!r}", self.where)
        if type(key) is not str or type(location) is not str or type(numel) is not int or numel < 0:
            raise refuse(Reason.PICKLE_SHAPE, "a storage id with a malformed key, location or size", self.where)
        if view is not None:
            raise refuse(Reason.UNSUPPORTED, "a storage view (legacy view metadata)", self.where)
        if not key or len(key) > 64 or not key.isprintable() or "/" in key or key in (".", ".."):
            raise refuse(Reason.PICKLE_SHAPE, f"storage key {key[:80]!r} is not a record name", self.where)
        storage = Storage(key, storage_type.value, location, numel)
        known = self.by_key.setdefault(key, storage)
        if known != storage:
            raise refuse(
                Reason.STORAGE_MISMATCH,
                f"storage {key} is named as {known.numel} {known.dtype.name} and as {numel} {storage.dtype.name}",
                self.where,
            )
        return storage


def tensors_of(root: Any, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """Every tensor in the object, named by its path (`state_dict['fc.weight']`), bounded in depth."""
    stack: list[tuple[str, Any, int]] = [(prefix, root, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > 64:
            raise refuse(Reason.LIMIT, "the object nests deeper than 64 levels", path)
        if type(value) is Tensor:
            yield path or "tensor", value
        elif isinstance(value, dict):
            items = list(value.items())
            if type(value) is StateDict:
                items += [(f"<{k}>", v) for k, v in value.attributes.items()]
            stack.extend((f"{path}[{k!r}]" if path else str(k), v, depth + 1) for k, v in reversed(items))
        elif type(value) in (list, tuple):
            stack.extend((f"{path}[{i}]", v, depth + 1) for i, v in reversed(list(enumerate(value))))
        elif type(value) is Instance:
            stack.append((f"{path}.{value.cls.rsplit('.', 1)[-1]}", value.state, depth + 1))


# -- the zip -----------------------------------------------------------------------------------------------


def read_zip(path: Path, where: str, profile: Profile = Profile.WEIGHTS) -> TorchFile:
    archive = ZipArchive(path, where, frozenset({STORED, DEFLATED}))
    if not archive.entries:
        raise refuse(Reason.MALFORMED, "the archive holds no records", where)
    first = archive.entries[0].name
    if "/" not in first:
        raise refuse(Reason.MALFORMED, f"the first record {first!r} is in no directory", where)
    prefix = first.split("/", 1)[0] + "/"
    records = {}
    for entry in archive.entries:
        if not entry.name.startswith(prefix):
            raise refuse(Reason.ZIP_AMBIGUOUS, f"record {entry.name!r} is outside the archive's {prefix!r}", where)
        records[entry.name[len(prefix) :]] = entry
    script = "constants.pkl" in records or any(r.startswith("code/") for r in records)
    if "data.pkl" not in records:
        raise refuse(Reason.MALFORMED, "no data.pkl record", where)
    version = _version(archive, records, where)
    torch = TorchFile("torch zip", None, version=version, torchscript=script)
    if script:
        torch.format = "TorchScript zip"
        torch.code_files = sorted(r for r in records if r.startswith("code/"))
        profile = Profile.TORCHSCRIPT
    byteorder = records.get("byteorder")
    if byteorder is not None and archive.read(byteorder, 16) != b"little":
        raise refuse(Reason.UNSUPPORTED, "a big-endian checkpoint", where)
    located: dict[str, tuple[Path, int]] = {}
    for pickle_name, directory in (("data.pkl", "data/"), ("constants.pkl", "constants/")):
        if pickle_name not in records:
            continue
        storages = _Storages(f"{where}:{pickle_name}")
        result = read_pickle(archive.read(records[pickle_name], MAX_PICKLE_BYTES), storages, profile, storages.where)
        torch.globals |= result.globals
        for key, storage in storages.by_key.items():
            entry = records.get(directory + key)
            if entry is None:
                raise refuse(Reason.STORAGE_MISMATCH, f"storage {key} has no record {directory}{key}", where)
            if entry.size != storage.nbytes:
                raise refuse(
                    Reason.STORAGE_MISMATCH,
                    f"storage {key} is named as {storage.numel} {storage.dtype.name} elements ({storage.nbytes} "
                    f"bytes), its record {directory}{key} holds {entry.size} bytes",
                    where,
                )
            if entry.method != STORED:
                raise refuse(Reason.UNSUPPORTED, f"record {directory}{key} is compressed; torch.save stores", where)
            located[f"{pickle_name}:{key}"] = (path, entry.data_offset)
            for _ in archive.chunks(entry):  # its CRC, as Python's zipfile would check it
                pass
        named = list(tensors_of(result.root, "" if pickle_name == "data.pkl" else "constants"))
        for name, tensor in named:
            torch.tensors.append((name, tensor))
        if pickle_name == "data.pkl":
            torch.root = result.root
        _places_of(torch, named, located, pickle_name, where)
    unknown = sorted(r for r in records if r not in _ZIP_RECORDS and not r.startswith(("data/", "constants/")))
    if unknown and not script:
        torch.notes.append(f"records the gate does not read: {', '.join(unknown[:5])}")
    return torch


def _places_of(
    torch: TorchFile, named: list[tuple[str, Tensor]], located: dict[str, tuple[Path, int]], pickle: str, where: str
) -> None:
    for name, tensor in named:
        path, base = located[f"{pickle}:{tensor.storage.key}"]
        place = TensorPlace(
            name, path, base, tensor.storage.nbytes, tensor.dtype, tensor.size, tensor.stride, tensor.offset
        )
        check_bounds(place, where)
        torch.places.append(place)


def _version(archive: ZipArchive, records: dict[str, Any], where: str) -> str:
    entry = records.get(".data/version") or records.get("version")
    if entry is None:
        raise refuse(Reason.MALFORMED, "no version record", where)
    text = archive.read(entry, 32).decode("ascii", "replace").strip()
    if not text.isdigit() or int(text) not in SUPPORTED_ZIP_VERSIONS:
        raise refuse(Reason.UNSUPPORTED, f"file format version {text[:20]!r} is none torch reads", where)
    return text


# -- the legacy magic-number file -------------------------------------------------------------------------------


def read_legacy(path: Path, where: str) -> TorchFile:
    data = path.read_bytes() if path.stat().st_size <= MAX_PICKLE_BYTES else _head(path)
    header = []
    position = 0
    for what in ("magic number", "protocol version", "system information"):
        result, position = read_pickle_prefix(data, position, _no_storages(where), Profile.WEIGHTS, f"{where}: {what}")
        header.append(result.root)
    if data[: len(LEGACY_MAGIC)] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
        raise refuse(Reason.MALFORMED, "not the legacy magic number and protocol version 1001", where)
    info = header[2]
    if type(info) is not dict or info.get("little_endian") is not True:
        raise refuse(Reason.UNSUPPORTED, "system information missing or big-endian", where)
    storages = _Storages(where)
    result, position = read_pickle_prefix(data, position, storages, Profile.WEIGHTS, where)
    keys_result, position = read_pickle_prefix(data, position, _no_storages(where), Profile.WEIGHTS, where)
    keys = keys_result.root
    if type(keys) is not list or set(keys) != set(storages.by_key) or len(keys) != len(set(keys)):
        raise refuse(Reason.STORAGE_MISMATCH, "the storage key list differs from the storages the pickle names", where)
    torch = TorchFile("torch legacy", result.root, version=str(LEGACY_PROTOCOL), globals=result.globals)
    located: dict[str, tuple[Path, int]] = {}
    size = path.stat().st_size
    for key in keys:
        storage = storages.by_key[key]
        if position + 8 > size:
            raise refuse(Reason.TRUNCATED, f"storage {key}'s size is past the end", where)
        with open(path, "rb") as handle:
            handle.seek(position)
            (numel,) = struct.unpack("<q", handle.read(8))
        if numel != storage.numel:
            raise refuse(
                Reason.STORAGE_MISMATCH, f"storage {key} holds {numel} elements, the pickle says {storage.numel}", where
            )
        located[f"data.pkl:{key}"] = (path, position + 8)
        position += 8 + storage.nbytes
        if position > size:
            raise refuse(Reason.TRUNCATED, f"storage {key} runs past the end of the file", where)
    if position != size:
        raise refuse(Reason.MALFORMED, f"{size - position} bytes after the last storage", where)
    torch.tensors = list(tensors_of(result.root))
    _places_of(torch, torch.tensors, located, "data.pkl", where)
    return torch


def _head(path: Path) -> bytes:
    # The pickles come first and are small; storages follow. Read enough for them, not the weights.
    with open(path, "rb") as handle:
        return handle.read(MAX_PICKLE_BYTES)


def _no_storages(where: str) -> Any:
    def refuse_storage(_pid: Any) -> Any:
        raise refuse(Reason.PICKLE_SHAPE, "a storage where none belongs", where)

    return refuse_storage


# -- the oldest tar ----------------------------------------------------------------------------------------------


def read_tar(path: Path, where: str, workdir: Path) -> TorchFile:
    members: dict[str, tarfile.TarInfo] = {}
    try:
        with tarfile.open(path, mode="r:", format=tarfile.PAX_FORMAT) as tar:
            for member in tar:
                if member.name in members or member.name not in ("storages", "tensors", "pickle", "sys_info"):
                    raise refuse(Reason.MALFORMED, f"tar member {member.name!r} is not one torch writes once", where)
                if not member.isreg():
                    raise refuse(Reason.MALFORMED, f"tar member {member.name!r} is not a regular file", where)
                members[member.name] = member
            missing = {"storages", "tensors", "pickle"} - set(members)
            if missing:
                raise refuse(Reason.MALFORMED, f"tar without {', '.join(sorted(missing))}", where)
            blobs = {}
            for name in ("storages", "tensors", "pickle"):
                if members[name].size > MAX_PICKLE_BYTES:
                    raise refuse(Reason.LIMIT, f"tar member {name} is over {MAX_PICKLE_BYTES} bytes", where)
                handle = tar.extractfile(members[name])
                blobs[name] = handle.read() if handle is not None else b""
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise refuse(Reason.MALFORMED, f"not a readable tar: {exc}", where) from exc
    storage_file = workdir / "storages.bin"
    storage_file.write_bytes(blobs["storages"])
    by_key, located = _tar_storages(blobs["storages"], storage_file, where)
    tensors = _tar_tensors(blobs["tensors"], by_key, where)

    root = read_pickle_by_key(blobs["pickle"], dict(tensors), f"{where}: pickle").root
    torch = TorchFile("torch tar", root)
    torch.notes.append("the pre-0.4 tar format: torch >= 2.6 loads it only with weights_only=False")
    torch.tensors = list(tensors_of(root))
    _places_of(torch, torch.tensors, located, "data.pkl", where)
    return torch


def _tar_storages(data: bytes, stored: Path, where: str) -> tuple[dict[str, Storage], dict[str, tuple[Path, int]]]:
    count, position = read_pickle_prefix(data, 0, _no_storages(where), Profile.WEIGHTS, f"{where}: storages")
    if type(count.root) is not int or not 0 <= count.root <= 1_000_000:
        raise refuse(Reason.MALFORMED, "the storage count is not a small int", where)
    by_key: dict[str, Storage] = {}
    located: dict[str, tuple[Path, int]] = {}
    for _ in range(count.root):
        args, position = read_pickle_prefix(data, position, _no_storages(where), Profile.WEIGHTS, where)
        if type(args.root) is not tuple or len(args.root) != 3:
            raise refuse(Reason.MALFORMED, "a storage header is not (key, location, type)", where)
        key, location, storage_type = args.root
        if not (isinstance(storage_type, _Global) and storage_type in _STORAGE_GLOBALS.values()):
            raise refuse(Reason.PICKLE_SHAPE, f"a storage of type {storage_type!r}", where)
        if type(key) not in (str, int) or str(key) in by_key or type(location) is not str:
            raise refuse(Reason.MALFORMED, "a storage key repeated or malformed", where)
        if position + 8 > len(data):
            raise refuse(Reason.TRUNCATED, "a storage's size is past the end", where)
        (numel,) = struct.unpack_from("<q", data, position)
        dtype: DType = storage_type.value
        if numel < 0 or position + 8 + numel * dtype.itemsize > len(data):
            raise refuse(Reason.STORAGE_MISMATCH, f"storage {key} claims {numel} elements past the end", where)
        by_key[str(key)] = Storage(str(key), dtype, location, numel)
        located[f"data.pkl:{key}"] = (stored, position + 8)
        position += 8 + numel * dtype.itemsize
    views, position = read_pickle_prefix(data, position, _no_storages(where), Profile.WEIGHTS, where)
    if views.root != [] or position != len(data):
        raise refuse(Reason.UNSUPPORTED, "storage views or trailing bytes in the tar's storages", where)
    return by_key, located


def _tar_tensors(data: bytes, storages: dict[str, Storage], where: str) -> dict[str, Tensor]:
    count, position = read_pickle_prefix(data, 0, _no_storages(where), Profile.WEIGHTS, f"{where}: tensors")
    if type(count.root) is not int or not 0 <= count.root <= 1_000_000:
        raise refuse(Reason.MALFORMED, "the tensor count is not a small int", where)
    tensors: dict[str, Tensor] = {}
    stream = io.BytesIO(data)
    for _ in range(count.root):
        args, position = read_pickle_prefix(data, position, _no_storages(where), Profile.WEIGHTS, where)
        if type(args.root) is not tuple or len(args.root) != 3:
            raise refuse(Reason.MALFORMED, "a tensor header is not (key, storage, type)", where)
        key, storage_id = str(args.root[0]), str(args.root[1])
        if storage_id not in storages or key in tensors:
            raise refuse(Reason.STORAGE_MISMATCH, f"tensor {key} names no storage or is repeated", where)
        stream.seek(position)
        head = stream.read(8)
        if len(head) != 8:
            raise refuse(Reason.TRUNCATED, "a tensor's dimensions are past the end", where)
        (ndim,) = struct.unpack("<i", head[:4])
        if not 0 <= ndim <= 64:
            raise refuse(Reason.MALFORMED, f"a tensor with {ndim} dimensions", where)
        body = stream.read(16 * ndim + 8)
        if len(body) != 16 * ndim + 8:
            raise refuse(Reason.TRUNCATED, "a tensor's shape is past the end", where)
        values = struct.unpack(f"<{2 * ndim + 1}q", body)
        storage = storages[storage_id]
        tensors[key] = Tensor(storage, values[-1], tuple(values[:ndim]), tuple(values[ndim : 2 * ndim]), storage.dtype)
        position += 8 + 16 * ndim + 8
    if position != len(data):
        raise refuse(Reason.MALFORMED, "trailing bytes in the tar's tensors", where)
    return tensors


__all__ = ["LEGACY_MAGIC", "Device", "NdArray", "TorchFile", "read_legacy", "read_tar", "read_zip", "tensors_of"]
