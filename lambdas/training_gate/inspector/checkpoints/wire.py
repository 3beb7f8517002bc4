"""Protocol buffers read at the wire level: (field, wire type, value) with every length checked.

No generated code and no protobuf runtime: a message is a run of keys (varints), each followed by a
varint, a fixed 32 or 64-bit value, or a length-delimited slice that must lie inside the message.
Groups (wire types 3 and 4) are refused; nesting is bounded by the callers' depth caps.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from training_gate.inspector.checkpoints.errors import Reason, refuse

Field = tuple[int, int, "int | memoryview"]


def varint(data: memoryview, pos: int, where: str) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        if pos >= len(data):
            raise refuse(Reason.TRUNCATED, "a varint runs past the end", where)
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & ((1 << 64) - 1), pos
        shift += 7
    raise refuse(Reason.MALFORMED, "a varint longer than 10 bytes", where)


def fields(data: memoryview, where: str) -> Iterator[Field]:
    pos = 0
    while pos < len(data):
        key, pos = varint(data, pos, where)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise refuse(Reason.MALFORMED, "field number 0", where)
        if wire == 0:
            value, pos = varint(data, pos, where)
            yield number, wire, value
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise refuse(Reason.TRUNCATED, "a fixed-width field runs past the end", where)
            yield number, wire, struct.unpack_from("<Q" if wire == 1 else "<I", data, pos)[0]
            pos += size
        elif wire == 2:
            size, pos = varint(data, pos, where)
            if size > len(data) - pos:
                raise refuse(Reason.TRUNCATED, f"a field of {size} bytes with {len(data) - pos} left", where)
            yield number, wire, data[pos : pos + size]
            pos += size
        else:
            raise refuse(Reason.MALFORMED, f"wire type {wire} (groups are not used by these messages)", where)


def text(value: int | memoryview, where: str) -> str:
    if not isinstance(value, memoryview):
        raise refuse(Reason.MALFORMED, "a string field holds a number", where)
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(Reason.MALFORMED, "a string field is not UTF-8", where) from exc


def message(value: int | memoryview, where: str) -> memoryview:
    if not isinstance(value, memoryview):
        raise refuse(Reason.MALFORMED, "a message field holds a number", where)
    return value


def number(value: int | memoryview, where: str) -> int:
    if isinstance(value, memoryview):
        raise refuse(Reason.MALFORMED, "a number field holds bytes", where)
    return value


def packed(value: int | memoryview, where: str) -> list[int]:
    """A repeated varint field, packed (one slice) or not (one value)."""
    if not isinstance(value, memoryview):
        return [value]
    out, pos = [], 0
    while pos < len(value):
        item, pos = varint(value, pos, where)
        out.append(item)
    return out


def signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value
