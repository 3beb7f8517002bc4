"""safetensors files and sharded indexes, validated as the reference implementation reads them.

`safetensors/src/tensor.rs` (`SafeTensors::read_metadata`, `Metadata::validate`): an 8-byte little-endian
header length (the library refuses more than 100 MB; the gate refuses more than `MAX_HEADER`, which
keeps the inspector's memory small and is far above any real header), a UTF-8 JSON header starting
with `{`, each tensor `{dtype, shape, data_offsets: [begin, end]}` and an optional `__metadata__` of
strings; sorted by offset the tensors cover the data from 0 with no hole and no overlap, each one's
dtype x shape is exactly its byte range, and the data ends where the file does. The gate also refuses
duplicate keys (JSON readers keep different ones) and fields the format does not define.

A sharded checkpoint's index (`model.safetensors.index.json`, `pytorch_model.bin.index.json`) maps each
tensor to a shard file: every shard named must exist beside it, and every tensor must be in exactly the
shard the index names, once.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from training_gate.inspector.checkpoints.dtypes import SAFETENSORS
from training_gate.inspector.checkpoints.errors import Reason, refuse
from training_gate.inspector.checkpoints.numeric import TensorPlace

MAX_HEADER = 16 << 20
MAX_INDEX = 16 << 20
_FIELDS = {"dtype", "shape", "data_offsets"}


@dataclass
class SafetensorsFile:
    places: list[TensorPlace]
    metadata: dict[str, str]


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _finite_json(text: str, where: str) -> Any:
    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=constant)
    except RecursionError as exc:
        raise refuse(Reason.SAFETENSORS_HEADER, "the JSON nests too deeply", where) from exc
    except ValueError as exc:
        raise refuse(Reason.SAFETENSORS_HEADER, f"not valid JSON: {exc}", where) from exc


def read_safetensors(path: Path, where: str, display: str = "") -> SafetensorsFile:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise refuse(Reason.SAFETENSORS_HEADER, "shorter than the 8-byte header length", where)
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER:
            raise refuse(
                Reason.SAFETENSORS_HEADER, f"a header of {length} bytes (the gate reads up to {MAX_HEADER})", where
            )
        if 8 + length > size:
            raise refuse(Reason.SAFETENSORS_HEADER, f"a header of {length} bytes in a file of {size}", where)
        raw = handle.read(length)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(Reason.SAFETENSORS_HEADER, "the header is not UTF-8", where) from exc
    if not text.startswith("{"):
        raise refuse(Reason.SAFETENSORS_HEADER, "the header does not start with '{'", where)
    header = _finite_json(text, where)
    if not isinstance(header, dict):
        raise refuse(Reason.SAFETENSORS_HEADER, "the header is not a JSON object", where)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise refuse(Reason.SAFETENSORS_HEADER, "__metadata__ is not a map of strings", where)
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != _FIELDS:
            raise refuse(
                Reason.SAFETENSORS_HEADER, f"tensor {name!r} is not exactly {{dtype, shape, data_offsets}}", where
            )
        dtype = SAFETENSORS.get(info["dtype"]) if isinstance(info["dtype"], str) else None
        shape, offsets = info["shape"], info["data_offsets"]
        if dtype is None:
            raise refuse(Reason.SAFETENSORS_HEADER, f"tensor {name!r} has dtype {info['dtype']!r}", where)
        if not (isinstance(shape, list) and len(shape) <= 64 and all(_index(v) for v in shape)):
            raise refuse(Reason.SAFETENSORS_HEADER, f"tensor {name!r} has shape {shape!r}", where)
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_index(v) for v in offsets)):
            raise refuse(Reason.SAFETENSORS_HEADER, f"tensor {name!r} has data_offsets {offsets!r}", where)
        entries.append((offsets[0], offsets[1], name, dtype, tuple(shape)))
    cursor = 0
    places = []
    data_start = 8 + length
    for begin, end, name, dtype, shape in sorted(entries, key=lambda e: (e[0], e[1])):
        if begin != cursor or end < begin:
            what = (
                "overlaps another" if begin < cursor else "leaves a hole before it" if begin > cursor else "ends first"
            )
            raise refuse(Reason.SAFETENSORS_HEADER, f"tensor {name!r} at [{begin}, {end}) {what}", where)
        if math.prod(shape) * dtype.itemsize != end - begin:
            raise refuse(
                Reason.SAFETENSORS_HEADER,
                f"tensor {name!r} is {dtype.name} {list(shape)} ({math.prod(shape) * dtype.itemsize} bytes) in "
                f"[{begin}, {end})",
                where,
            )
        cursor = end
        label = f"{display}{name}" if display else name
        places.append(TensorPlace.dense(label, path, data_start + begin, end - begin, dtype, shape))
    if data_start + cursor != size:
        raise refuse(
            Reason.SAFETENSORS_HEADER, f"the tensors end at byte {data_start + cursor}, the file at {size}", where
        )
    return SafetensorsFile(places, metadata)


def _index(value: Any) -> bool:
    return type(value) is int and 0 <= value < 1 << 62


@dataclass
class ShardIndex:
    shards: list[str]
    weight_map: dict[str, str]
    total_size: int | None


def read_index(path: Path, where: str) -> ShardIndex:
    if path.stat().st_size > MAX_INDEX:
        raise refuse(Reason.SHARDS_INCONSISTENT, f"the index is over {MAX_INDEX} bytes", where)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(Reason.SHARDS_INCONSISTENT, "the index is not UTF-8", where) from exc
    document = _finite_json(text, where)
    if not isinstance(document, dict) or not isinstance(document.get("weight_map"), dict):
        raise refuse(Reason.SHARDS_INCONSISTENT, "the index has no weight_map object", where)
    weight_map = document["weight_map"]
    shards = []
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or PurePosixPath(shard).name != shard or shard in ("", ".", ".."):
            raise refuse(
                Reason.SHARDS_INCONSISTENT, f"tensor {tensor!r} maps to {shard!r}, not a file beside it", where
            )
        if shard not in shards:
            shards.append(shard)
    metadata = document.get("metadata")
    total = metadata.get("total_size") if isinstance(metadata, dict) else None
    return ShardIndex(shards, weight_map, total if type(total) is int else None)


def check_shards(index: ShardIndex, held: dict[str, list[str]], where: str) -> None:
    """`held`: shard file -> the tensor names it holds. The index and the shards must agree exactly."""
    seen: dict[str, str] = {}
    for shard, names in held.items():
        for name in names:
            if name in seen:
                raise refuse(Reason.SHARDS_INCONSISTENT, f"tensor {name!r} is in {seen[name]} and in {shard}", where)
            seen[name] = shard
    for name, shard in index.weight_map.items():
        if seen.get(name) != shard:
            found = f"it is in {seen[name]}" if name in seen else "no shard holds it"
            raise refuse(Reason.SHARDS_INCONSISTENT, f"the index puts {name!r} in {shard}; {found}", where)
    extra = sorted(set(seen) - set(index.weight_map))
    if extra:
        raise refuse(
            Reason.SHARDS_INCONSISTENT, f"{len(extra)} tensor(s) the index does not name, e.g. {extra[0]!r}", where
        )
