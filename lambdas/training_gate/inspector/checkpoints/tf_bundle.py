"""A TensorFlow checkpoint (`variables/variables.index` and its data shards) read without TensorFlow.

The index is a table in LevelDB's format as TensorFlow writes it (tensorflow/core/lib/io/table.cc,
format.cc, block.cc): a 48-byte footer (metaindex and index block handles, padding, magic
0xdb4775248b80fb57), blocks of prefix-compressed entries with their restart array, each block followed
by a type byte (0: uncompressed, the only kind the bundle writer produces) and a masked CRC32C. The key ""
holds a BundleHeaderProto (tensor_bundle.proto: 1 num_shards, 2 endianness); every other key a
BundleEntryProto (1 dtype, 2 shape, 3 shard_id, 4 offset, 5 size, 6 crc32c, 7 slices). Every entry must
name an existing shard and a byte range inside it, a numeric entry exactly dtype x shape bytes, and the
data's CRC32C must match (as TensorFlow checks it when it restores).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

from training_gate.inspector.checkpoints.dtypes import TENSORFLOW
from training_gate.inspector.checkpoints.errors import Reason, refuse
from training_gate.inspector.checkpoints.numeric import TensorPlace
from training_gate.inspector.checkpoints.wire import fields, message, number, packed, signed, varint

MAGIC = 0xDB4775248B80FB57
MAX_INDEX = 256 << 20
MAX_ENTRIES = 1_000_000
CRC_CHECK_BYTES = 16 << 20  # beyond this the data's CRC32C is left to TensorFlow's restore (pure Python: slow)


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes | memoryview, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    table = _TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def _block(data: memoryview, offset: int, size: int, where: str) -> memoryview:
    if offset + size + 5 > len(data):
        raise refuse(Reason.TRUNCATED, f"a block at {offset} of {size} bytes runs past the index", where)
    block = data[offset : offset + size]
    kind = data[offset + size]
    (stored,) = struct.unpack_from("<I", data, offset + size + 1)
    if kind != 0:
        raise refuse(Reason.UNSUPPORTED, f"a compressed index block (type {kind})", where)
    if unmask(stored) != crc32c(data[offset : offset + size + 1]):
        raise refuse(Reason.MALFORMED, f"the index block at {offset} fails its CRC32C", where)
    return block


def _entries(block: memoryview, where: str) -> list[tuple[bytes, memoryview]]:
    if len(block) < 4:
        raise refuse(Reason.MALFORMED, "a block shorter than its restart count", where)
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restarts
    if restarts == 0 or end < 0:
        raise refuse(Reason.MALFORMED, "a block's restart array does not fit", where)
    out, pos, key = [], 0, b""
    while pos < end:
        shared, pos = varint(block, pos, where)
        unshared, pos = varint(block, pos, where)
        length, pos = varint(block, pos, where)
        if shared > len(key) or pos + unshared + length > end:
            raise refuse(Reason.MALFORMED, "a block entry runs past its block", where)
        key = key[:shared] + bytes(block[pos : pos + unshared])
        pos += unshared
        out.append((key, block[pos : pos + length]))
        pos += length
        if len(out) > MAX_ENTRIES:
            raise refuse(Reason.LIMIT, f"more than {MAX_ENTRIES} entries", where)
    return out


def _handle(value: memoryview | bytes, where: str) -> tuple[int, int]:
    view = memoryview(bytes(value))
    offset, pos = varint(view, 0, where)
    size, pos = varint(view, pos, where)
    return offset, size


@dataclass
class BundleEntry:
    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc: int | None
    sliced: bool


def _entry(name: str, value: memoryview, where: str) -> BundleEntry:
    entry = BundleEntry(name, 0, (), 0, 0, 0, None, False)
    for num, _wire, item in fields(value, where):
        if num == 1:
            entry.dtype = number(item, where)
        elif num == 2:
            dims = []
            for shape_num, _w, dim in fields(message(item, where), where):
                if shape_num == 2:
                    # A Dim of size 0 has no size field (proto3 leaves zeros out): it is still a dimension.
                    extent = 0
                    for dim_num, _w2, size in fields(message(dim, where), where):
                        if dim_num == 1:
                            extent = signed(number(size, where))
                    dims.append(extent)
                elif shape_num == 3 and number(dim, where):
                    raise refuse(Reason.MALFORMED, f"variable {name!r} has an unknown rank", where)
            entry.shape = tuple(dims)
        elif num == 3:
            entry.shard = number(item, where)
        elif num == 4:
            entry.offset = signed(number(item, where))
        elif num == 5:
            entry.size = signed(number(item, where))
        elif num == 6:
            entry.crc = number(item, where)
        elif num == 7:
            entry.sliced = True
    if any(d < 0 for d in entry.shape) or entry.offset < 0 or entry.size < 0 or len(entry.shape) > 64:
        raise refuse(Reason.MALFORMED, f"variable {name!r} has a negative dimension, offset or size", where)
    return entry


@dataclass
class Bundle:
    places: list[TensorPlace]
    entries: list[BundleEntry]
    notes: list[str]


def read_bundle(index: Path, where: str) -> Bundle:
    """`index` is `<prefix>.index`; its shards are `<prefix>.data-NNNNN-of-MMMMM` beside it."""
    if index.stat().st_size > MAX_INDEX:
        raise refuse(Reason.LIMIT, f"the index is over {MAX_INDEX} bytes", where)
    data = memoryview(index.read_bytes())
    if len(data) < 48:
        raise refuse(Reason.TRUNCATED, "shorter than a table footer", where)
    footer = data[len(data) - 48 :]
    if struct.unpack_from("<Q", footer, 40)[0] != MAGIC:
        raise refuse(Reason.MALFORMED, "not a TensorFlow table (footer magic)", where)
    _meta_offset, pos = varint(footer, 0, where)
    _meta_size, pos = varint(footer, pos, where)
    index_offset, pos = varint(footer, pos, where)
    index_size, pos = varint(footer, pos, where)
    raw: list[tuple[bytes, memoryview]] = []
    for _key, handle in _entries(_block(data, index_offset, index_size, where), where):
        offset, size = _handle(handle, where)
        raw.extend(_entries(_block(data, offset, size, where), where))
    keys = [k for k, _ in raw]
    if keys != sorted(set(keys)):
        raise refuse(Reason.MALFORMED, "table keys are not strictly increasing (a duplicate or out of order)", where)
    if not raw or raw[0][0] != b"":
        raise refuse(Reason.MALFORMED, "no bundle header (the empty key)", where)
    shards, endianness = 1, 0
    for num, _wire, item in fields(raw[0][1], where):
        if num == 1:
            shards = number(item, where)
        elif num == 2:
            endianness = number(item, where)
    if endianness != 0 or not 1 <= shards <= 100_000:
        raise refuse(Reason.UNSUPPORTED, "a big-endian bundle or an impossible shard count", where)
    prefix = index.name[: -len(".index")]
    shard_paths = [index.with_name(f"{prefix}.data-{i:05d}-of-{shards:05d}") for i in range(shards)]
    sizes = []
    for path in shard_paths:
        if not path.is_file():
            raise refuse(Reason.SHARDS_INCONSISTENT, f"the index names shard {path.name}, which is missing", where)
        sizes.append(path.stat().st_size)
    entries, places, checked = [], [], 0
    for key, value in raw[1:]:
        name = key.decode("utf-8", "replace")
        entry = _entry(name, value, where)
        entries.append(entry)
        if entry.sliced:
            raise refuse(Reason.UNSUPPORTED, f"variable {name!r} is saved in slices (partitioned variables)", where)
        if entry.shard >= shards or entry.offset + entry.size > sizes[entry.shard]:
            raise refuse(Reason.TENSOR_OUT_OF_BOUNDS, f"variable {name!r} lies outside its shard", where)
        dtype = TENSORFLOW.get(entry.dtype)
        if dtype is None:
            raise refuse(Reason.UNSUPPORTED, f"variable {name!r} has data type {entry.dtype}", where)
        if dtype.kind != "string" and math.prod(entry.shape) * dtype.itemsize != entry.size:
            raise refuse(
                Reason.STORAGE_MISMATCH,
                f"variable {name!r} is {dtype.name} {list(entry.shape)} in {entry.size} bytes",
                where,
            )
        if dtype.kind != "string" and entry.crc is not None and checked + entry.size <= CRC_CHECK_BYTES:
            with open(shard_paths[entry.shard], "rb") as handle:
                handle.seek(entry.offset)
                if unmask(entry.crc) != crc32c(handle.read(entry.size)):
                    raise refuse(
                        Reason.MALFORMED, f"variable {name!r} fails its CRC32C (the bytes were changed)", where
                    )
            checked += entry.size
        if dtype.kind != "string":
            places.append(
                TensorPlace.dense(name, shard_paths[entry.shard], entry.offset, entry.size, dtype, entry.shape)
            )
    notes = []
    if checked < sum(e.size for e in entries):
        notes.append(f"CRC32C checked for the first {checked} bytes of variables")
    return Bundle(places, entries, notes)


__all__ = ["Bundle", "packed", "read_bundle"]
