"""A bounded reader over bytes: every read checks the bytes are there before it takes them, and every
length a file declares is compared with what is left (and with a cap) before anything is allocated."""

from __future__ import annotations

import struct

from training_gate.inspector.native.errors import Reason, refuse


class Reader:
    def __init__(self, data: bytes | bytearray | memoryview, where: str = "", endian: str = "<") -> None:
        self.data = memoryview(bytes(data)) if not isinstance(data, memoryview) else data
        self.pos = 0
        self.where = where
        self.endian = endian

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, size: int, what: str) -> memoryview:
        if size < 0:
            raise refuse(Reason.MALFORMED, f"{what} has a negative length {size}", self.where)
        if size > self.remaining:
            raise refuse(
                Reason.TRUNCATED,
                f"{what} needs {size} bytes at offset {self.pos}, {self.remaining} remain",
                self.where,
            )
        view = self.data[self.pos : self.pos + size]
        self.pos += size
        return view

    def unpack(self, fmt: str, what: str) -> tuple:
        layout = struct.Struct(self.endian + fmt)
        return layout.unpack(self.take(layout.size, what))

    def one(self, fmt: str, what: str) -> int | float:
        return self.unpack(fmt, what)[0]

    def length(self, what: str, item_size: int = 1, cap: int | None = None) -> int:
        """A uint64 count (dmlc's vector and string prefix), bounded by the bytes left and `cap`."""
        count = self.one("Q", f"{what} length")
        if cap is not None and count > cap:
            raise refuse(Reason.LENGTH_TOO_LARGE, f"{what} declares {count} items, more than {cap}", self.where)
        if count * item_size > self.remaining:
            raise refuse(
                Reason.LENGTH_TOO_LARGE,
                f"{what} declares {count} items ({count * item_size} bytes), {self.remaining} bytes remain",
                self.where,
            )
        return count

    def string(self, what: str, cap: int = 1 << 20) -> str:
        size = self.length(what, 1, cap)
        raw = bytes(self.take(size, what))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise refuse(Reason.MALFORMED, f"{what} is not UTF-8 text", self.where) from exc

    def array(self, fmt: str, count: int, what: str) -> tuple:
        layout = struct.Struct(f"{self.endian}{count}{fmt}")
        if layout.size > self.remaining:
            raise refuse(Reason.TRUNCATED, f"{what} needs {layout.size} bytes, {self.remaining} remain", self.where)
        return layout.unpack(self.take(layout.size, what))
