"""Which files are pickles, decided from their bytes as the loaders that serve them read them, never by name.

Serving code opens an artifact's files with `joblib.load`, `pickle.load`, `numpy.load(allow_pickle=True)`
and `torch.load`. A file is a pickle here when one of them could run or import something from it:

- its raw bytes, read by an unpickler (protocols 0 to 5: `pickle.load`, and `joblib.load` of an
  uncompressed file), see `read_pickle`;
- its bytes after a compressor's magic number, unwrapped as `joblib.load` unwraps them (joblib's own
  table of compressors: zlib, gzip, bz2, lzma, xz, lz4, and the old `ZF` format), see `unwrap`;
- the pickle after a `.npy` header whose dtype holds objects (`numpy.load(allow_pickle=True)`);
- any of these as an entry of a zip (torch.save's `data.pkl`, `.npz`), see `zip_entries`.

`read_pickle` proves a stream is no pickle by interpreting its opcodes abstractly, the way both of
CPython's unpicklers would, without building anything: it tracks which stack values could be objects
a global named (a class, a function, what a call returned) and which are plain data. The stream is a
pickle as soon as an unpickler could call such a value (REDUCE, BUILD, NEWOBJ, OBJ, INST, or a
container method on it) or reach STOP; it is proven not to be one when every unpickler must fail
first: an unknown opcode, a stack underflow, a missing mark, a length beyond the end, a call on plain
data, a persistent id with no `persistent_load`. Whenever the interpretation cannot tell (a memo
entry it did not track, a string it cannot read), it assumes the worse. One assumption is named: a
module whose name is not a dotted Python identifier cannot be imported by a serving environment (no
standard or installed module has such a name), so a "global" read from ordinary text ("import os")
ends the unpickler there.

A file proven to be no pickle is left to the framework recognisers; every other one goes through the
restricted loader, and one that cannot be read at all is refused: it might be a pickle.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

PICKLE = "pickle"
NOT_PICKLE = "not a pickle"
UNDECIDED = "undecided"
Verdict = Literal["pickle", "not a pickle", "undecided"]

# What the head of a file is, before anything is unwrapped.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip, or an empty one (what torch.load and numpy.load test)
NPY_MAGIC = b"\x93NUMPY"
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."  # torch.save < 1.6: a pickled magic number

# A line argument longer than this is not examined further (a module name is never this long).
_LINE_KEPT = 4096
# A stack deeper than this is not followed: the stream is treated as a pickle (the loader decides).
_STACK_MAX = 1 << 20
_SKIP_CHUNK = 1 << 20


class _Fails(Exception):
    """Every unpickler raises here: nothing after this point is read."""


class _Undecided(Exception):
    """The bytes seen so far do not decide (only the file's head was given)."""


@dataclass(frozen=True)
class Reading:
    """What an unpickler would make of a stream: `verdict`, the reason, and the first global it names."""

    verdict: Verdict
    reason: str
    module: str | None = None  # the module of the first global named (GLOBAL, INST, STACK_GLOBAL)

    @property
    def is_pickle(self) -> bool:
        return self.verdict == PICKLE


# -- sources: a head (with the file's true size) or a whole stream ------------------------------------------


class _Head:
    """The first bytes of a file whose full size is known: a read past the size fails every unpickler,
    a read past the head (within the size) cannot be decided here."""

    def __init__(self, head: bytes, size: int):
        self._data = head
        self._size = size
        self.position = 0

    def take(self, n: int) -> bytes:
        end = self.position + n
        if end > self._size:
            raise _Fails(f"a length runs past the end of the file at byte {self.position}")
        if end > len(self._data):
            raise _Undecided
        data = self._data[self.position : end]
        self.position = end
        return data

    def skip(self, n: int) -> None:
        self.take(n)

    def line(self) -> tuple[bytes, bool]:
        newline = self._data.find(b"\n", self.position)
        if newline < 0:
            if len(self._data) < self._size:
                raise _Undecided
            data, self.position = self._data[self.position :], len(self._data)
            return data[:_LINE_KEPT], False
        data, self.position = self._data[self.position : newline], newline + 1
        return data[:_LINE_KEPT], True


class _Stream:
    """A whole stream (a file, a decompressed file, a zip entry), read once from where it stands."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._buffer = b""
        self.position = 0

    def _fill(self, n: int) -> None:
        while len(self._buffer) < n:
            more = self._stream.read(max(n - len(self._buffer), 1 << 16))
            if not more:
                return
            self._buffer += more

    def take(self, n: int) -> bytes:
        if n > _SKIP_CHUNK:
            self.skip(n)
            return b""
        self._fill(n)
        if len(self._buffer) < n:
            raise _Fails(f"the stream ends inside an argument at byte {self.position}")
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        self.position += n
        return data

    def skip(self, n: int) -> None:
        while n:
            if not self._buffer:
                self._fill(min(n, _SKIP_CHUNK))
                if not self._buffer:
                    raise _Fails(f"a length runs past the end of the stream at byte {self.position}")
            step = min(n, len(self._buffer))
            self._buffer = self._buffer[step:]
            self.position += step
            n -= step

    def line(self) -> tuple[bytes, bool]:
        kept = b""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                part, self._buffer = self._buffer[:newline], self._buffer[newline + 1 :]
                self.position += newline + 1
                return (kept + part)[:_LINE_KEPT], True
            kept = (kept + self._buffer)[:_LINE_KEPT]
            self.position += len(self._buffer)
            self._buffer = b""
            self._fill(1)
            if not self._buffer:
                return kept, False


# -- the abstract unpickler -----------------------------------------------------------------------------------


class _Value:
    """A stack value as the interpretation knows it."""

    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str | None = None):
        self.kind = kind  # "object" (from a global, a call, or unknown), "str", "data", "mark"
        self.text = text


_OBJECT = _Value("object")
_DATA = _Value("data")
_SOME_STR = _Value("str")


def _identifier_path(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


class _Interpreter:
    def __init__(self, source: _Head | _Stream):
        self.source = source
        self.frames: list[list[_Value]] = [[]]
        self.memo: dict[int, _Value] = {}
        self.depth = 0
        self.first_module: str | None = None

    # -- the stack, with marks as CPython keeps them (items below a mark are out of reach) --------------

    def push(self, value: _Value) -> None:
        self.frames[-1].append(value)
        self.depth += 1
        if self.depth > _STACK_MAX:
            raise _Pickle(f"more than {_STACK_MAX} items on the stack: not followed further")

    def pop(self, opcode: str) -> _Value:
        if not self.frames[-1]:
            raise _Fails(f"{opcode} on an empty stack (underflow)")
        self.depth -= 1
        return self.frames[-1].pop()

    def top(self, opcode: str) -> _Value:
        if not self.frames[-1]:
            raise _Fails(f"{opcode} on an empty stack (underflow)")
        return self.frames[-1][-1]

    def pop_mark(self, opcode: str) -> list[_Value]:
        if len(self.frames) == 1:
            raise _Fails(f"{opcode} without a MARK")
        items = self.frames.pop()
        self.depth -= len(items)
        return items

    # -- reading ---------------------------------------------------------------------------------------

    def length(self, size: int, fmt: str, opcode: str) -> int:
        (value,) = struct.unpack(fmt, self.source.take(size))
        if value < 0:
            raise _Fails(f"{opcode} has a negative length")
        return value

    def global_named(self, module: str, name: str, opcode: str) -> _Value:
        if not (_identifier_path(module) and _identifier_path(name)):
            raise _Fails(f"{opcode} names {module[:40]!r}.{name[:40]!r}, which no environment can import")
        if self.first_module is None:
            self.first_module = module
        return _Value("object", f"{module}.{name}")

    def text_pair(self, opcode: str) -> tuple[str, str]:
        module, ended = self.source.line()
        name, ended_too = self.source.line() if ended else (b"", False)
        if not (ended and ended_too):
            raise _Fails(f"{opcode} ends at the end of the stream")
        try:
            return module.decode("utf-8"), name.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Fails(f"{opcode} names a module that is not UTF-8") from exc

    def call(self, target: _Value, opcode: str) -> None:
        """A call on `target`: code runs if it could be an object a global named."""
        if target.kind == "object":
            named = f" on {target.text}" if target.text else ""
            raise _Pickle(f"{opcode}{named} calls code")
        raise _Fails(f"{opcode} on plain data cannot call anything")

    def hashed(self, values: list[_Value], opcode: str) -> None:
        if any(v.kind == "object" for v in values):
            raise _Pickle(f"{opcode} hashes an object a global named")

    # -- one opcode ---------------------------------------------------------------------------------------

    def step(self) -> bool:
        """Interpret one opcode; False at STOP."""
        code = self.source.take(1)[0]
        handler = _HANDLERS.get(code)
        if handler is None:
            raise _Fails(f"byte 0x{code:02x} at {self.source.position - 1} is no pickle opcode")
        return handler(self) is not False


class _Pickle(Exception):
    """An unpickler could run something here."""


def _data(size: int | str) -> Callable[[_Interpreter], None]:
    """An opcode that pushes plain data after a fixed-size or length-prefixed argument."""

    def handler(self: _Interpreter) -> None:
        if isinstance(size, int):
            self.source.skip(size)
        else:
            fmt, width, opcode = _LENGTHS[size]
            self.source.skip(self.length(width, fmt, opcode))
        self.push(_DATA)

    return handler


_LENGTHS = {
    "u1": ("<B", 1, "a short length"),
    "i4": ("<i", 4, "a 4-byte length"),
    "u4": ("<I", 4, "a 4-byte length"),
    "u8": ("<Q", 8, "an 8-byte length"),
}


def _string(width: str) -> Callable[[_Interpreter], None]:
    """A length-prefixed string: the text when it is short enough to keep, for STACK_GLOBAL."""

    def handler(self: _Interpreter) -> None:
        fmt, size, opcode = _LENGTHS[width]
        n = self.length(size, fmt, opcode)
        if n > _LINE_KEPT:
            self.source.skip(n)
            self.push(_SOME_STR)
            return
        raw = self.source.take(n)
        try:
            self.push(_Value("str", raw.decode("utf-8")))
        except UnicodeDecodeError:
            self.push(_SOME_STR)

    return handler


def _line_data(self: _Interpreter) -> None:
    self.source.line()
    self.push(_DATA)


def _line_string(self: _Interpreter) -> None:
    raw, _ = self.source.line()
    self.push(_SOME_STR if len(raw) >= _LINE_KEPT else _Value("str", raw.decode("latin-1")))


def _quoted_string(self: _Interpreter) -> None:
    raw, _ = self.source.line()
    if not (len(raw) >= 2 and raw[:1] == raw[-1:] and raw[:1] in (b'"', b"'")):
        raise _Fails("STRING without quotes")
    self.push(_SOME_STR)


def _proto(self: _Interpreter) -> None:
    if self.source.take(1)[0] > 5:
        raise _Fails("PROTO names a protocol no unpickler knows")


def _frame(self: _Interpreter) -> None:
    if self.length(8, "<Q", "FRAME") > sys.maxsize:
        raise _Fails("FRAME larger than any unpickler accepts")


def _no_arg_push(value: _Value) -> Callable[[_Interpreter], None]:
    def handler(self: _Interpreter) -> None:
        self.push(value)

    return handler


def _mark(self: _Interpreter) -> None:
    self.frames.append([])


def _stop(self: _Interpreter) -> bool:
    self.pop("STOP")
    return False


def _pop(self: _Interpreter) -> None:
    if self.frames[-1]:
        self.pop("POP")
    elif len(self.frames) > 1:
        self.frames.pop()
    else:
        raise _Fails("POP on an empty stack (underflow)")


def _pop_mark(self: _Interpreter) -> None:
    self.pop_mark("POP_MARK")


def _dup(self: _Interpreter) -> None:
    self.push(self.top("DUP"))


def _tuple_n(n: int) -> Callable[[_Interpreter], None]:
    def handler(self: _Interpreter) -> None:
        for _ in range(n):
            self.pop(f"TUPLE{n}")
        self.push(_DATA)

    return handler


def _from_mark(name: str, hashes: bool) -> Callable[[_Interpreter], None]:
    def handler(self: _Interpreter) -> None:
        items = self.pop_mark(name)
        if hashes:
            self.hashed(items, name)
        self.push(_DATA)

    return handler


def _append(self: _Interpreter) -> None:
    self.pop("APPEND")
    target = self.top("APPEND")
    if target.kind == "object":
        self.call(target, "APPEND")


def _appends(self: _Interpreter) -> None:
    self.pop_mark("APPENDS")
    target = self.top("APPENDS")
    if target.kind == "object":
        self.call(target, "APPENDS")


def _setitem(self: _Interpreter) -> None:
    self.pop("SETITEM")
    key = self.pop("SETITEM")
    target = self.top("SETITEM")
    self.hashed([key], "SETITEM")
    if target.kind == "object":
        self.call(target, "SETITEM")


def _setitems(self: _Interpreter) -> None:
    items = self.pop_mark("SETITEMS")
    target = self.top("SETITEMS")
    self.hashed(items[0::2], "SETITEMS")
    if target.kind == "object":
        self.call(target, "SETITEMS")


def _additems(self: _Interpreter) -> None:
    items = self.pop_mark("ADDITEMS")
    target = self.top("ADDITEMS")
    self.hashed(items, "ADDITEMS")
    if target.kind == "object":
        self.call(target, "ADDITEMS")


def _memo_key_line(self: _Interpreter) -> int | None:
    raw, _ = self.source.line()
    try:
        return int(raw)
    except ValueError:
        return None


def _get(kind: str) -> Callable[[_Interpreter], None]:
    def handler(self: _Interpreter) -> None:
        key = (
            _memo_key_line(self) if kind == "line" else struct.unpack(kind, self.source.take(struct.calcsize(kind)))[0]
        )
        self.push(self.memo.get(key, _OBJECT) if key is not None else _OBJECT)

    return handler


def _put(kind: str) -> Callable[[_Interpreter], None]:
    def handler(self: _Interpreter) -> None:
        key = (
            _memo_key_line(self) if kind == "line" else struct.unpack(kind, self.source.take(struct.calcsize(kind)))[0]
        )
        top = self.top("PUT")
        if key is not None:
            self.memo[key] = top

    return handler


def _memoize(self: _Interpreter) -> None:
    self.memo[len(self.memo)] = self.top("MEMOIZE")


def _ext(size: int) -> Callable[[_Interpreter], None]:
    def handler(self: _Interpreter) -> None:
        self.source.skip(size)
        self.push(_Value("object", "an extension code (copyreg)"))

    return handler


def _global(self: _Interpreter) -> None:
    module, name = self.text_pair("GLOBAL")
    self.push(self.global_named(module, name, "GLOBAL"))


def _stack_global(self: _Interpreter) -> None:
    name = self.pop("STACK_GLOBAL")
    module = self.pop("STACK_GLOBAL")
    if "data" in (name.kind, module.kind):
        raise _Fails("STACK_GLOBAL on values that are not strings")
    if module.text is not None and name.text is not None and module.kind == name.kind == "str":
        self.push(self.global_named(module.text, name.text, "STACK_GLOBAL"))
    else:
        self.push(_OBJECT)


def _inst(self: _Interpreter) -> None:
    module, name = self.text_pair("INST")
    named = self.global_named(module, name, "INST")
    self.pop_mark("INST")
    self.call(named, "INST")


def _obj(self: _Interpreter) -> None:
    items = self.pop_mark("OBJ")
    if not items:
        raise _Fails("OBJ without a class")
    self.call(items[0], "OBJ")


def _reduce(self: _Interpreter) -> None:
    self.pop("REDUCE")
    self.call(self.top("REDUCE"), "REDUCE")


def _build(self: _Interpreter) -> None:
    self.pop("BUILD")
    target = self.top("BUILD")
    if target.kind == "object":
        self.call(target, "BUILD")


def _newobj(self: _Interpreter) -> None:
    self.pop("NEWOBJ")
    self.call(self.top("NEWOBJ"), "NEWOBJ")


def _newobj_ex(self: _Interpreter) -> None:
    self.pop("NEWOBJ_EX")
    self.pop("NEWOBJ_EX")
    self.call(self.top("NEWOBJ_EX"), "NEWOBJ_EX")


def _persistent(self: _Interpreter) -> None:
    raise _Fails("a persistent id: pickle.load and joblib.load have no persistent_load")


def _next_buffer(self: _Interpreter) -> None:
    raise _Fails("an out-of-band buffer: pickle.load and joblib.load are given none")


def _readonly_buffer(self: _Interpreter) -> None:
    self.top("READONLY_BUFFER")


_HANDLERS: dict[int, Callable[[_Interpreter], Any]] = {
    ord("("): _mark,
    ord("."): _stop,
    ord("0"): _pop,
    ord("1"): _pop_mark,
    ord("2"): _dup,
    ord("F"): _line_data,
    ord("I"): _line_data,
    ord("J"): _data(4),
    ord("K"): _data(1),
    ord("L"): _line_data,
    ord("M"): _data(2),
    ord("N"): _no_arg_push(_DATA),
    ord("P"): _persistent,
    ord("Q"): _persistent,
    ord("R"): _reduce,
    ord("S"): _quoted_string,
    ord("T"): _string("i4"),
    ord("U"): _string("u1"),
    ord("V"): _line_string,
    ord("X"): _string("u4"),
    ord("a"): _append,
    ord("b"): _build,
    ord("c"): _global,
    ord("d"): _from_mark("DICT", hashes=True),
    ord("}"): _no_arg_push(_DATA),
    ord("e"): _appends,
    ord("g"): _get("line"),
    ord("h"): _get("<B"),
    ord("i"): _inst,
    ord("j"): _get("<I"),
    ord("l"): _from_mark("LIST", hashes=False),
    ord("]"): _no_arg_push(_DATA),
    ord("o"): _obj,
    ord("p"): _put("line"),
    ord("q"): _put("<B"),
    ord("r"): _put("<I"),
    ord("s"): _setitem,
    ord("t"): _from_mark("TUPLE", hashes=False),
    ord(")"): _no_arg_push(_DATA),
    ord("u"): _setitems,
    ord("G"): _data(8),
    ord("B"): _data("u4"),
    ord("C"): _data("u1"),
    0x80: _proto,
    0x81: _newobj,
    0x82: _ext(1),
    0x83: _ext(2),
    0x84: _ext(4),
    0x85: _tuple_n(1),
    0x86: _tuple_n(2),
    0x87: _tuple_n(3),
    0x88: _no_arg_push(_DATA),
    0x89: _no_arg_push(_DATA),
    0x8A: _data("u1"),
    0x8B: _data("i4"),
    0x8C: _string("u1"),
    0x8D: _string("u8"),
    0x8E: _data("u8"),
    0x8F: _no_arg_push(_DATA),
    0x90: _additems,
    0x91: _from_mark("FROZENSET", hashes=True),
    0x92: _newobj_ex,
    0x93: _stack_global,
    0x94: _memoize,
    0x95: _frame,
    0x96: _data("u8"),
    0x97: _next_buffer,
    0x98: _readonly_buffer,
}


def _interpret(source: _Head | _Stream) -> Reading:
    """Pickles one after another (a STOP that leaves bytes behind may be followed by another load)."""
    interpreter = _Interpreter(source)
    try:
        while True:
            while interpreter.step():
                pass
            raise _Pickle("a complete pickle (STOP)")
    except _Pickle as found:
        return Reading(PICKLE, str(found), interpreter.first_module)
    except _Fails as failed:
        return Reading(NOT_PICKLE, f"every unpickler fails first: {failed}")
    except _Undecided:
        return Reading(UNDECIDED, "the head of the file does not decide")


def read_head(head: bytes, size: int) -> Reading:
    """What an unpickler would make of a file, from its first bytes and its size."""
    if not head and size == 0:
        return Reading(NOT_PICKLE, "an empty file")
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        # A protocol header: a pickle by intent, whatever follows (the loader reports a broken one).
        found = _interpret(_Head(head, size))
        return Reading(PICKLE, "a pickle protocol header (PROTO)", found.module)
    return _interpret(_Head(head, size))


def read_pickle(stream: BinaryIO) -> Reading:
    """What an unpickler would make of the whole stream, from where it stands."""
    head = stream.read(2)
    proto = len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    found = _interpret(_Stream(_Prefixed(head, stream)))
    if proto:
        return Reading(PICKLE, "a pickle protocol header (PROTO)", found.module)
    return found


class _Prefixed:
    """Bytes already read, then the rest of the stream."""

    def __init__(self, prefix: bytes, stream: BinaryIO):
        self._prefix = prefix
        self._stream = stream

    def read(self, n: int) -> bytes:
        if self._prefix:
            out, self._prefix = self._prefix[:n], self._prefix[n:]
            return out
        return self._stream.read(n)


# -- compressed files, unwrapped as joblib unwraps them ---------------------------------------------------------


class CannotRead(Exception):
    """A file that might hold a pickle and cannot be read to prove otherwise (the message says why)."""


def compressor_of(head: bytes) -> str | None:
    """The joblib compressor whose magic number starts `head` ('compat' for joblib < 0.10's ZF files),
    by joblib's own table, in the order `joblib.load` tries them."""
    from joblib import numpy_pickle_utils

    if head.startswith(numpy_pickle_utils._ZFILE_PREFIX):
        return "compat"
    for name, compressor in numpy_pickle_utils._COMPRESSORS.items():
        if head.startswith(compressor.prefix):
            return name
    return None


class _Broken(Exception):
    """The compressed stream stops decompressing (corrupt or cut short) after `produced` bytes."""

    def __init__(self, produced: int, message: str):
        super().__init__(message)
        self.produced = produced


class CappedStream(io.RawIOBase):
    """A decompressor's output with the artifact's caps: inflated bytes and inflated/compressed ratio."""

    def __init__(self, inner: Any, cap: int, max_ratio: int, ratio_floor: int, compressed: Callable[[], int]):
        self._inner = inner
        self._cap = cap
        self._max_ratio = max_ratio
        self._floor = ratio_floor
        self._compressed = compressed
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(min(len(view), self._cap - self.produced + 1))
        except CannotRead:
            raise
        except Exception as exc:
            raise _Broken(self.produced, f"{type(exc).__name__}: {exc}") from exc
        view[: len(data)] = data
        self.produced += len(data)
        if self.produced > self._cap:
            raise CannotRead(f"it inflates past {self._cap} bytes (max_member_bytes)")
        if self.produced > self._floor and self.produced > self._max_ratio * max(self._compressed(), 1):
            raise CannotRead(f"it inflates more than {self._max_ratio}:1 (max_ratio)")
        return len(data)


class _CompatFile(io.RawIOBase):
    """joblib < 0.10's ZF file: `ZF`, its length in hex, then a zlib stream (joblib's read_zfile)."""

    def __init__(self, handle: BinaryIO):
        from joblib import numpy_pickle_compat

        header = len(numpy_pickle_compat._ZFILE_PREFIX) + numpy_pickle_compat._MAX_LEN
        handle.read(header)
        self._handle = handle
        self._inflater = zlib.decompressobj(15)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending and not self._inflater.eof:
            chunk = self._inflater.unconsumed_tail or self._handle.read(1 << 16)
            if not chunk:
                break
            self._pending = self._inflater.decompress(chunk, len(view))
        out, self._pending = self._pending[: len(view)], self._pending[len(view) :]
        view[: len(out)] = out
        return len(out)


def read_compressed(handle: BinaryIO, compressor: str, cap: int, max_ratio: int, ratio_floor: int) -> Reading:
    """What `joblib.load` would unpickle from a compressed file. A stream that gives no byte at all (its
    header is corrupt: every decompressor checks it before producing anything) is no pickle; one that
    breaks after giving bytes, before they decide, cannot be proven to be none."""
    stream = unwrap(handle, compressor, cap, max_ratio, ratio_floor)
    try:
        return read_pickle(stream)
    except _Broken as broken:
        if broken.produced == 0:
            return Reading(NOT_PICKLE, f"it does not decompress ({broken}): joblib.load fails before unpickling")
        raise CannotRead(
            f"it stops decompressing after {broken.produced} bytes ({broken}), before they show it holds no pickle"
        ) from broken


def unwrap(handle: BinaryIO, compressor: str, cap: int, max_ratio: int, ratio_floor: int) -> BinaryIO:
    """The bytes `joblib.load` would unpickle from a compressed file, under the artifact's caps."""
    from joblib import numpy_pickle_utils

    start = handle.tell()
    if compressor == "compat":
        inner: Any = _CompatFile(handle)
    else:
        try:
            inner = numpy_pickle_utils._COMPRESSORS[compressor].decompressor_file(handle)
        except (ValueError, ImportError) as exc:  # lz4 not installed in the inspector
            raise CannotRead(f"it is {compressor}-compressed and the inspector cannot decompress it: {exc}") from exc
    capped = CappedStream(inner, cap, max_ratio, ratio_floor, lambda: handle.tell() - start)
    return io.BufferedReader(capped, buffer_size=1 << 16)  # type: ignore[arg-type]


# -- numpy's .npy: object arrays are pickles ------------------------------------------------------------------


def npy_pickle_offset(handle: BinaryIO) -> int | None:
    """Where the pickle of an object array starts in a .npy file (numpy.load(allow_pickle=True) reads it
    with pickle.load), or None: no object dtype, nothing pickled. A header numpy refuses is no array."""
    import numpy as np

    read = 0

    def counted(n: int) -> bytes:
        nonlocal read
        data = handle.read(n)
        read += len(data)
        return data

    class _Counting:
        def read(self, n: int) -> bytes:
            return counted(n)

    try:
        version = np.lib.format.read_magic(_Counting())
        try:
            header = np.lib.format._read_array_header(_Counting(), version, max_header_size=1 << 20)
        except TypeError:  # numpy < 1.24 has no max_header_size
            header = np.lib.format._read_array_header(_Counting(), version)
    except (ValueError, SyntaxError, EOFError, OSError) as exc:
        # A header this numpy refuses may be one another numpy reads, with objects after it.
        raise CannotRead(f"a .npy header numpy cannot read: {exc}") from exc
    return read if header[2].hasobject else None


# -- zips: torch.save's data.pkl, .npz ----------------------------------------------------------------------------


def zip_entries(archive: Any, max_entries: int, max_bytes: int, max_ratio: int, ratio_floor: int) -> Iterator[Any]:
    """The zip's file entries, each within the caps, or CannotRead naming the cap it breaks."""
    infos = archive.infolist()
    if len(infos) > max_entries:
        raise CannotRead(f"a zip of {len(infos)} entries, over max_zip_entries={max_entries}")
    for info in infos:
        if info.is_dir():
            continue
        if info.file_size > max_bytes:
            raise CannotRead(f"zip entry {info.filename!r} is {info.file_size} bytes, over max_member_bytes")
        if info.file_size > ratio_floor and info.file_size > max_ratio * max(info.compress_size, 1):
            raise CannotRead(f"zip entry {info.filename!r} inflates more than {max_ratio}:1 (max_ratio)")
        yield info


class EntryReader:
    """A zip entry as a read-only file with `remaining` and `peek`, as the loader reads a tar member."""

    def __init__(self, stream: BinaryIO, size: int):
        self._stream = stream
        self.remaining = size

    def __enter__(self) -> EntryReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(self.remaining if size is None or size < 0 else min(size, self.remaining))
        self.remaining -= len(data)
        return data

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")[: self.remaining]
        filled = self._stream.readinto(view)  # type: ignore[attr-defined]
        self.remaining -= filled
        return filled

    def readline(self, size: int | None = -1) -> bytes:
        limit = self.remaining if size is None or size < 0 else min(size, self.remaining)
        line = self._stream.readline(limit)
        self.remaining -= len(line)
        return line

    def peek(self, size: int = 1) -> bytes:
        return self._stream.peek(size)[: min(max(size, 1), self.remaining)]  # type: ignore[attr-defined]
