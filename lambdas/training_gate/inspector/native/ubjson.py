"""The UBJSON dialect XGBoost writes (`Booster.save_model("*.ubj")`, 3.0-5's `xgboost-model`), read in Python.

XGBoost's own reader (src/common/json.cc, `UBJReader`) trusts every length: a string length or a typed
array count past the end of the buffer is copied from beyond it. This reader checks each against the
bytes left before taking anything. It accepts what XGBoost's writer emits and its reader accepts:
big-endian values; strings and object keys with an `L` (int64) length; arrays plain, counted
(`#L<n>`) or typed (`$<type>#L<n>`, type one of d D i U I l L); values Z T F d D S i U I l L C.
"""

from __future__ import annotations

import struct
from typing import Any

from training_gate.inspector.native._bytes import Reader
from training_gate.inspector.native.errors import Reason, refuse

# Deeper than any model document (a tree is 4 levels below the root); a hostile file nests forever.
MAX_DEPTH = 64
_SCALARS = {"d": "f", "D": "d", "i": "b", "U": "B", "I": "h", "l": "i", "L": "q", "C": "b"}
_TYPED = {"d": "f", "D": "d", "i": "b", "U": "B", "I": "h", "l": "i", "L": "q"}


class TypedArray(list):
    """A typed UBJSON array (`$<type>#`), a list remembering its element type: XGBoost's reader picks
    the tree arrays' types from it, so the converter writes them back with the same type."""

    def __init__(self, values: Any, kind: str) -> None:
        super().__init__(values)
        self.kind = kind


def loads(data: bytes, where: str = "ubjson") -> Any:
    reader = Reader(data, where, endian=">")
    value = _value(reader, 0)
    if reader.remaining:
        raise refuse(Reason.TRAILING_BYTES, f"{reader.remaining} bytes after the document", where)
    return value


def _marker(reader: Reader) -> str:
    return chr(reader.one("B", "marker"))


def _count(reader: Reader, what: str) -> int:
    marker = _marker(reader)
    if marker != "L":
        raise refuse(Reason.MALFORMED, f"{what} length has type {marker!r}, XGBoost reads only 'L'", reader.where)
    count = reader.one("q", f"{what} length")
    if count < 0:
        raise refuse(Reason.MALFORMED, f"{what} length is negative ({count})", reader.where)
    if count > reader.remaining:
        raise refuse(
            Reason.LENGTH_TOO_LARGE, f"{what} declares {count} items, {reader.remaining} bytes remain", reader.where
        )
    return count


def _string(reader: Reader, what: str) -> str:
    size = _count(reader, what)
    try:
        return bytes(reader.take(size, what)).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(Reason.MALFORMED, f"{what} is not UTF-8", reader.where) from exc


def _value(reader: Reader, depth: int, marker: str | None = None) -> Any:
    if depth > MAX_DEPTH:
        raise refuse(Reason.MALFORMED, f"nested deeper than {MAX_DEPTH}", reader.where)
    marker = marker or _marker(reader)
    if marker == "{":
        result: dict[str, Any] = {}
        while True:
            if reader.remaining and chr(reader.data[reader.pos]) == "}":
                reader.pos += 1
                return result
            key = _string(reader, "object key")
            if key in result:
                raise refuse(Reason.MALFORMED, f"key {key!r} appears twice", reader.where)
            result[key] = _value(reader, depth + 1)
    if marker == "[":
        return _array(reader, depth)
    if marker == "Z":
        return None
    if marker == "T":
        return True
    if marker == "F":
        return False
    if marker == "S":
        return _string(reader, "string")
    if marker in _SCALARS:
        return reader.one(_SCALARS[marker], f"{marker!r} value")
    if marker == "H":
        raise refuse(Reason.UNSUPPORTED, "high-precision numbers are not read by XGBoost", reader.where)
    raise refuse(Reason.MALFORMED, f"unknown marker {marker!r} at offset {reader.pos - 1}", reader.where)


def _array(reader: Reader, depth: int) -> list[Any]:
    if reader.remaining and chr(reader.data[reader.pos]) == "$":
        reader.pos += 1
        kind = _marker(reader)
        if kind not in _TYPED:
            raise refuse(Reason.MALFORMED, f"typed array of {kind!r}, XGBoost reads none", reader.where)
        if _marker(reader) != "#":
            raise refuse(Reason.MALFORMED, "typed array without a count", reader.where)
        count = _count(reader, "typed array")
        size = struct.calcsize(_TYPED[kind])
        if count * size > reader.remaining:
            raise refuse(
                Reason.LENGTH_TOO_LARGE,
                f"typed array declares {count} items ({count * size} bytes), {reader.remaining} remain",
                reader.where,
            )
        return TypedArray(reader.array(_TYPED[kind], count, "typed array"), kind)
    if reader.remaining and chr(reader.data[reader.pos]) == "#":
        reader.pos += 1
        count = _count(reader, "array")
        return [_value(reader, depth + 1) for _ in range(count)]
    items: list[Any] = []
    while True:
        marker = _marker(reader)
        if marker == "]":
            return items
        items.append(_value(reader, depth + 1, marker))


def dumps(value: Any) -> bytes:
    """The inverse for the shapes above (tests build hostile documents with it)."""
    out = bytearray()
    _write(value, out)
    return bytes(out)


def _write_string(text: str, out: bytearray) -> None:
    raw = text.encode("utf-8")
    out += b"L" + struct.pack(">q", len(raw)) + raw


def _write(value: Any, out: bytearray) -> None:
    if isinstance(value, dict):
        out += b"{"
        for key, item in value.items():
            _write_string(key, out)
            _write(item, out)
        out += b"}"
    elif isinstance(value, TypedArray):
        out += b"[$" + value.kind.encode() + b"#L" + struct.pack(">q", len(value))
        out += struct.pack(f">{len(value)}{_TYPED[value.kind]}", *value)
    elif isinstance(value, list):
        out += b"["
        for item in value:
            _write(item, out)
        out += b"]"
    elif value is None:
        out += b"Z"
    elif value is True:
        out += b"T"
    elif value is False:
        out += b"F"
    elif isinstance(value, str):
        out += b"S"
        _write_string(value, out)
    elif isinstance(value, int):
        out += b"L" + struct.pack(">q", value)
    elif isinstance(value, float):
        out += b"d" + struct.pack(">f", value)
    else:
        raise TypeError(f"cannot write {type(value).__name__} as UBJSON")
