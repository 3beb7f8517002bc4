"""Which files hold pickles, decided from their bytes as the loaders that serve them read them, never by name.

Serving code opens an artifact's files with `joblib.load`, `pickle.load`, `numpy.load(allow_pickle=True)`
and `torch.load`. A file holds a pickle here when one of them could run something from it:

- its raw bytes, read by an unpickler (protocols 0 to 5: `pickle.load`, `joblib.load` of an uncompressed
  file, `torch.load` of a file that is neither zip nor tar), see `read_head` and `read_pickle`;
- its bytes after a compressor's magic number, unwrapped as `joblib.load` unwraps them (joblib's own
  table of compressors: zlib, gzip, bz2, lzma, xz, lz4, and the old `ZF` format), see `read_compressed`;
- the pickle after a `.npy` header whose dtype holds objects (`numpy.load(allow_pickle=True)`);
- any of these as an entry of a zip (torch.save's `data.pkl`, an `.npz`) or a member of a tar (torch's
  oldest format), read with a persistent_load as torch reads them, see `zip_entries` and `tar_members`.

The interpretation proves a stream is no pickle by running its opcodes abstractly, the way both of
CPython's unpicklers would, without building anything: it tracks which stack values could be objects a
global named (a class, a function, what persistent_load returned) or containers holding one, and which
are plain data. The stream is a pickle as soon as an unpickler could call such a value (REDUCE, BUILD,
NEWOBJ, OBJ, INST, a container method on it), hash it, or reach STOP; it is proven not to be one when
every unpickler must fail first: an unknown opcode, a stack underflow, a missing mark, a length beyond
the end, a call on plain data, a persistent id where the reader has no persistent_load. Whenever the
interpretation cannot tell (a memo entry it did not track, text whose decoding depends on the reader) it
assumes the worse. Two assumptions are named: importing an installed module is not counted as running
the file's code (only calling what it names is), and a module whose name is not a dotted Python
identifier cannot be imported by a serving environment, so a "global" read from ordinary text ("import
os") ends the unpickler there.

A file proven to hold no pickle is left to the framework recognisers; every pickle it may hold goes
through the gate's loader (`loader.load_model_stream`), all of them end to end when a file holds several
(see `child`); and a file that cannot be read at all is refused by name: it might hold one.
"""

from __future__ import annotations

import io
import lzma
import struct
import sys
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

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

    def line(self) -> tuple[bytes | None, bool]:
        """The next line without its newline (None when longer than _LINE_KEPT), and whether it ended."""
        newline = self._data.find(b"\n", self.position)
        if newline < 0:
            if len(self._data) < self._size:
                raise _Undecided
            data, self.position = self._data[self.position :], len(self._data)
            return _kept(data), False
        data, self.position = self._data[self.position : newline], newline + 1
        return _kept(data), True


def _kept(line: bytes) -> bytes | None:
    return line if len(line) <= _LINE_KEPT else None


class _Stream:
    """A whole stream (a file, a decompressed file, a zip entry), read once from where it stands."""

    def __init__(self, stream: Any):
        self._stream = stream
        self._buffer = b""
        self._at = 0  # the read position inside _buffer (slicing the buffer at each opcode would be quadratic)
        self.position = 0

    def _available(self) -> int:
        return len(self._buffer) - self._at

    def _fill(self, n: int) -> None:
        if self._available() >= n:
            return
        parts = [self._buffer[self._at :]]
        have = len(parts[0])
        while have < n:
            more = self._stream.read(max(n - have, 1 << 16))
            if not more:
                break
            parts.append(more)
            have += len(more)
        self._buffer, self._at = b"".join(parts), 0

    def take(self, n: int) -> bytes:
        if n > _SKIP_CHUNK:
            self.skip(n)
            return b""
        self._fill(n)
        if self._available() < n:
            raise _Fails(f"the stream ends inside an argument at byte {self.position}")
        data = self._buffer[self._at : self._at + n]
        self._at += n
        self.position += n
        return data

    def skip(self, n: int) -> None:
        while n:
            if not self._available():
                self._fill(min(n, _SKIP_CHUNK))
                if not self._available():
                    raise _Fails(f"a length runs past the end of the stream at byte {self.position}")
            step = min(n, self._available())
            self._at += step
            self.position += step
            n -= step

    def line(self) -> tuple[bytes | None, bool]:
        """The next line without its newline (None when longer than _LINE_KEPT), and whether it ended."""
        kept: list[bytes] = []
        length = 0
        while True:
            newline = self._buffer.find(b"\n", self._at)
            end = newline if newline >= 0 else len(self._buffer)
            if length <= _LINE_KEPT:
                kept.append(self._buffer[self._at : min(end, self._at + _LINE_KEPT + 1 - length)])
            length += end - self._at
            self.position += end - self._at
            self._at = end
            if newline >= 0:
                self._at += 1
                self.position += 1
                return _kept(b"".join(kept)), True
            self._fill(1)
            if not self._available():
                return _kept(b"".join(kept)), False


# -- the abstract unpickler -----------------------------------------------------------------------------------


class _Value:
    """A stack value as the interpretation knows it."""

    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str | None = None):
        # "object": what a global named, a call returned, persistent_load gave, or anything not tracked;
        # "holder": a tuple, list, dict or set that holds such an object (hashing it runs the object's code);
        # "str": text (`text` when it is known exactly); "data": plain data.
        self.kind = kind
        self.text = text


_OBJECT = _Value("object")
_HOLDER = _Value("holder")
_DATA = _Value("data")
_SOME_STR = _Value("str")


def _container(items: list[_Value]) -> _Value:
    return _HOLDER if any(v.kind in ("object", "holder") for v in items) else _DATA


def _identifier_path(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


class _Interpreter:
    def __init__(self, source: _Head | _Stream, persistent: bool, first_global_decides: bool):
        self.source = source
        # Whether the reader has a persistent_load (torch.load's unpickler of a zip's data.pkl does: what it
        # returns is an object); pickle.load and joblib.load have none and fail at a persistent id.
        self.persistent = persistent
        # A stream already known to be a pickle (a protocol header) is read only up to its first global.
        self.first_global_decides = first_global_decides
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
            if self.first_global_decides:
                raise _Pickle("a pickle protocol header (PROTO)")
        return _Value("object", f"{module}.{name}")

    def text_pair(self, opcode: str) -> tuple[str, str]:
        """GLOBAL's and INST's two lines, decoded as both unpicklers decode them (UTF-8, strict)."""
        module, ended = self.source.line()
        name, ended_too = self.source.line() if ended else (b"", False)
        if not (ended and ended_too):
            raise _Fails(f"{opcode} ends at the end of the stream")
        if module is None or name is None:
            raise _Fails(f"{opcode} names a module longer than any environment's")
        try:
            return module.decode("utf-8"), name.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Fails(f"{opcode} names a module that is not UTF-8") from exc

    def call(self, target: _Value, opcode: str) -> None:
        """A call on `target`: code runs if it could be an object a global named. Plain data and the
        builtin containers are not callable: every unpickler fails there."""
        if target.kind == "object":
            named = f" on {target.text}" if target.text else ""
            raise _Pickle(f"{opcode}{named} calls code")
        raise _Fails(f"{opcode} on plain data cannot call anything")

    def hashed(self, values: list[_Value], opcode: str) -> None:
        if any(v.kind in ("object", "holder") for v in values):
            raise _Pickle(f"{opcode} hashes an object a global named (its __hash__ runs)")

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


def _unicode(width: str) -> Callable[[_Interpreter], None]:
    """BINUNICODE and friends: the text exactly as the unpicklers decode it (UTF-8, surrogatepass), kept
    when short enough for STACK_GLOBAL to name a module with it."""

    def handler(self: _Interpreter) -> None:
        fmt, size, opcode = _LENGTHS[width]
        n = self.length(size, fmt, opcode)
        if n > _LINE_KEPT:
            self.source.skip(n)
            self.push(_SOME_STR)
            return
        raw = self.source.take(n)
        try:
            self.push(_Value("str", raw.decode("utf-8", "surrogatepass")))
        except UnicodeDecodeError:
            self.push(_SOME_STR)

    return handler


def _binstring(width: str) -> Callable[[_Interpreter], None]:
    """BINSTRING and SHORT_BINSTRING: text in the unpickler's own `encoding` (ASCII, latin-1, bytes...),
    which the file does not say: some text, never trusted to name or not name a module."""

    def handler(self: _Interpreter) -> None:
        fmt, size, opcode = _LENGTHS[width]
        self.source.skip(self.length(size, fmt, opcode))
        self.push(_SOME_STR)

    return handler


def _line_data(self: _Interpreter) -> None:
    self.source.line()
    self.push(_DATA)


def _line_unicode(self: _Interpreter) -> None:
    """UNICODE: a line in raw-unicode-escape, as both unpicklers decode it."""
    raw, _ = self.source.line()
    if raw is None:
        self.push(_SOME_STR)
        return
    try:
        self.push(_Value("str", raw.decode("raw-unicode-escape")))
    except UnicodeDecodeError:
        self.push(_SOME_STR)


def _quoted_string(self: _Interpreter) -> None:
    raw, _ = self.source.line()
    if raw is not None and not (len(raw) >= 2 and raw[:1] == raw[-1:] and raw[:1] in (b'"', b"'")):
        raise _Fails("STRING without quotes")
    self.push(_SOME_STR)  # escape-decoded in the unpickler's encoding: some text


def _proto(self: _Interpreter) -> None:
    if self.source.take(1)[0] > 5:
        raise _Fails("PROTO names a protocol no unpickler knows")


def _frame(self: _Interpreter) -> None:
    # Frames are read through: CPython's C unpickler interprets a frame's bytes in place, and a pickle may
    # end (STOP) anywhere inside one.
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
        items = [self.pop(f"TUPLE{n}") for _ in range(n)]
        self.push(_container(items))

    return handler


def _from_mark(name: str, hashes: bool) -> Callable[[_Interpreter], None]:
    def handler(self: _Interpreter) -> None:
        items = self.pop_mark(name)
        if hashes:
            self.hashed(items, name)
        self.push(_container(items))

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
        return int(raw) if raw is not None else None
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
    if "data" in (name.kind, module.kind) or "holder" in (name.kind, module.kind):
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


def _persid(self: _Interpreter) -> None:
    # Without a persistent_load the reader fails here whatever the line holds (pickle reads it, then
    # fails): a line longer than the head must not leave that undecided (a zip's `PK` starts so).
    if not self.persistent:
        raise _Fails("a persistent id: pickle.load and joblib.load have no persistent_load")
    raw, _ = self.source.line()
    self.push(_Value("object", f"persistent_load({(raw or b'')[:40]!r})"))


def _binpersid(self: _Interpreter) -> None:
    self.pop("BINPERSID")
    if not self.persistent:
        raise _Fails("a persistent id: pickle.load and joblib.load have no persistent_load")
    self.push(_Value("object", "persistent_load"))


def _next_buffer(self: _Interpreter) -> None:
    raise _Fails("an out-of-band buffer: pickle.load, joblib.load and torch.load are given none")


def _readonly_buffer(self: _Interpreter) -> None:
    # memoryview(obj): an object's own __buffer__ (Python 3.12) would run.
    if self.top("READONLY_BUFFER").kind == "object":
        raise _Pickle("READONLY_BUFFER on an object a global named")


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
    ord("P"): _persid,
    ord("Q"): _binpersid,
    ord("R"): _reduce,
    ord("S"): _quoted_string,
    ord("T"): _binstring("i4"),
    ord("U"): _binstring("u1"),
    ord("V"): _line_unicode,
    ord("X"): _unicode("u4"),
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
    0x8C: _unicode("u1"),
    0x8D: _unicode("u8"),
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


def _protocol_header(head: bytes) -> bool:
    return len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5


def _interpret(source: _Head | _Stream, persistent: bool, proto: bool) -> Reading:
    """The first pickle of the stream: it is one as soon as an unpickler could run something, or reaches
    STOP (the loader reads the pickles after it too, see `child`)."""
    interpreter = _Interpreter(source, persistent, proto)
    try:
        while interpreter.step():
            pass
        raise _Pickle("a complete pickle (STOP)")
    except _Pickle as found:
        if proto:
            return Reading(PICKLE, "a pickle protocol header (PROTO)", interpreter.first_module)
        return Reading(PICKLE, str(found), interpreter.first_module)
    except _Fails as failed:
        if proto:  # a pickle by intent, whatever follows: the loader says what is wrong with it
            return Reading(PICKLE, "a pickle protocol header (PROTO)", interpreter.first_module)
        return Reading(NOT_PICKLE, f"every unpickler fails first: {failed}")
    except _Undecided:
        if proto:
            return Reading(PICKLE, "a pickle protocol header (PROTO)", interpreter.first_module)
        return Reading(UNDECIDED, "the head of the file does not decide")


def read_head(head: bytes, size: int, persistent: bool = False) -> Reading:
    """What an unpickler would make of a file, from its first bytes and its size. `persistent`: the
    reader has a persistent_load (an entry of a zip or tar, as torch.load reads them)."""
    if not head and size == 0:
        return Reading(NOT_PICKLE, "an empty file")
    return _interpret(_Head(head, size), persistent, _protocol_header(head))


def read_pickle(stream: Any, persistent: bool = False) -> Reading:
    """What an unpickler would make of the whole stream, from where it stands."""
    head = b""
    while len(head) < 2 and (more := stream.read(2 - len(head))):
        head += more
    return _interpret(_Stream(_Prefixed(head, stream)), persistent, _protocol_header(head))


class _Prefixed:
    """Bytes already read, then the rest of the stream."""

    def __init__(self, prefix: bytes, stream: Any):
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


# Compressed bytes handed to the decompressor per read: joblib's own readers take at least 8 KiB at a time,
# so every byte joblib could decompress before an error is one this reading sees too.
_PIECE = 4096


class _Trickle:
    """The compressed file, given to the decompressor in small pieces."""

    def __init__(self, handle: Any):
        self._handle = handle

    def read(self, size: int = -1) -> bytes:
        return bytes(self._handle.read(_PIECE if size is None or size < 0 else min(size, _PIECE)))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


class _ZlibReader:
    """joblib's zlib and gzip reader (`BinaryZlibFile`, one stream of the given `wbits`) in small steps. Where
    joblib's own reader meets bytes after the end of the stream it spins, doubling its memory, and never
    gives another byte: here that is an error, after what the stream gave. A stream cut short ends, as
    joblib's does."""

    def __init__(self, handle: Any, wbits: int):
        self._handle = handle
        self._inflater = zlib.decompressobj(wbits)

    def read(self, n: int) -> bytes:
        while True:
            if self._inflater.eof:
                if self._inflater.unused_data or self._handle.read(1):
                    raise zlib.error("bytes after the end of the compressed stream, where joblib's reader spins")
                return b""
            piece = self._inflater.unconsumed_tail or self._handle.read(_PIECE)
            if not piece:
                return b""
            data = self._inflater.decompress(piece, n)
            if data:
                return data


class _Broken(Exception):
    """The compressed stream stops decompressing (corrupt or cut short) after `produced` bytes."""

    def __init__(self, produced: int, message: str):
        super().__init__(message)
        self.produced = produced


class _Inflated:
    """What joblib's decompressor gives, in the small steps it gives it, under the artifact's caps."""

    def __init__(self, inner: Any, cap: int, max_ratio: int, ratio_floor: int, compressed: Callable[[], int]):
        self._inner = inner
        self._cap = cap
        self._max_ratio = max_ratio
        self._floor = ratio_floor
        self._compressed = compressed
        self.produced = 0

    def read(self, n: int) -> bytes:
        try:
            data = self._inner.read(min(n, _PIECE))
        except io.UnsupportedOperation:
            raise  # the gate's own mistake, never the file's
        except (zlib.error, lzma.LZMAError, OSError, EOFError) as exc:  # gzip's and bz2's are OSErrors
            raise _Broken(self.produced, f"{type(exc).__name__}: {exc}") from exc
        self.produced += len(data)
        if self.produced > self._cap:
            raise CannotRead(f"it inflates past {self._cap} bytes (max_member_bytes)")
        if self.produced > self._floor and self.produced > self._max_ratio * max(self._compressed(), 1):
            raise CannotRead(f"it inflates more than {self._max_ratio}:1 (max_ratio)")
        return data


def read_compressed(handle: Any, compressor: str, cap: int, max_ratio: int, ratio_floor: int) -> Reading:
    """What `joblib.load` would unpickle from a file whose head is a compressor's magic number.

    A stream that gives no byte at all (its header is corrupt, or a text that happens to start with the
    zlib prefix `x`) is no pickle: joblib.load fails before unpickling. One that breaks after giving bytes,
    before they decide, cannot be proven to be none."""
    from joblib import numpy_pickle_utils

    if compressor == "compat":
        # joblib < 0.10: `ZF`, the inflated length in hex, then zlib. The loader refuses the format, so any
        # file joblib would open as one is refused; one whose length joblib cannot parse is no pickle.
        from joblib import numpy_pickle_compat

        header = handle.read(len(numpy_pickle_compat._ZFILE_PREFIX) + numpy_pickle_compat._MAX_LEN)
        try:
            int(header[len(numpy_pickle_compat._ZFILE_PREFIX) :], 16)
        except ValueError:
            return Reading(NOT_PICKLE, "a ZF header joblib cannot parse: joblib.load fails before unpickling")
        return Reading(PICKLE, "joblib < 0.10's compressed format (ZF)")
    start = handle.tell()
    wrapper = numpy_pickle_utils._COMPRESSORS[compressor]
    wbits = getattr(wrapper.fileobj_factory, "wbits", None)
    try:
        inner = _ZlibReader(handle, wbits) if wbits is not None else wrapper.decompressor_file(_Trickle(handle))
    except (ValueError, ImportError) as exc:  # lz4 is not installed in the inspector
        raise CannotRead(f"it is {compressor}-compressed and the inspector cannot decompress it: {exc}") from exc
    inflated = _Inflated(inner, cap, max_ratio, ratio_floor, lambda: handle.tell() - start)
    try:
        return read_pickle(inflated)
    except _Broken as broken:
        if broken.produced == 0:
            return Reading(NOT_PICKLE, f"it does not decompress ({broken}): joblib.load fails before unpickling")
        raise CannotRead(
            f"it stops decompressing after {broken.produced} bytes ({broken}), before they show it holds no pickle"
        ) from broken


# -- numpy's .npy: object arrays are pickles ------------------------------------------------------------------


def npy_pickle_offset(handle: Any) -> int | None:
    """Where the pickle of an object array starts in a .npy file (numpy.load(allow_pickle=True) reads it
    with pickle.load), or None: no object dtype, nothing pickled. Read with numpy's own public header
    readers; a header this numpy cannot read may be one another numpy reads, with objects after it."""
    from numpy.lib import format as npy

    read = 0

    class _Counting:
        def read(self, n: int) -> bytes:
            nonlocal read
            data = handle.read(n)
            read += len(data)
            return data

    counting = _Counting()
    try:
        version = npy.read_magic(counting)
        if version == (1, 0):
            header = npy.read_array_header_1_0(counting, max_header_size=_NPY_HEADER_MAX)
        elif version == (2, 0):
            header = npy.read_array_header_2_0(counting, max_header_size=_NPY_HEADER_MAX)
        else:  # 3.0 (UTF-8 field names) has no public reader
            raise ValueError(f"a .npy format version {version} the gate does not read")
    except (ValueError, SyntaxError, EOFError, OSError, TypeError) as exc:
        raise CannotRead(f"a .npy header the gate cannot read: {exc}") from exc
    return read if header[2].hasobject else None


# numpy's own limit on a .npy header it reads without allow_pickle (numpy.lib.format._MAX_HEADER_SIZE).
_NPY_HEADER_MAX = 10_000


# -- containers: torch.save's zip (data.pkl), .npz, torch's legacy tar -----------------------------------------


def zip_entries(archive: Any, max_entries: int, max_bytes: int, max_ratio: int, ratio_floor: int) -> Iterator[Any]:
    """The zip's file entries, each within the caps, or CannotRead naming the cap it breaks."""
    infos = archive.infolist()
    if len(infos) > max_entries:
        raise CannotRead(f"a zip of {len(infos)} entries, over max_container_entries={max_entries}")
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:  # readers differ on which of two same-named entries they read
            raise CannotRead(f"a zip with two entries named {info.filename!r}")
        seen.add(info.filename)
        if info.is_dir():
            continue
        if info.file_size > max_bytes:
            raise CannotRead(f"zip entry {info.filename!r} is {info.file_size} bytes, over max_member_bytes")
        if info.file_size > ratio_floor and info.file_size > max_ratio * max(info.compress_size, 1):
            raise CannotRead(f"zip entry {info.filename!r} inflates more than {max_ratio}:1 (max_ratio)")
        yield info


def is_tar(head: bytes) -> bool:
    """Whether the file starts with a tar header whose checksum holds, as `tarfile.open(mode="r:")` reads
    it: torch.load opens such a file as its oldest format and unpickles its members `storages`, `tensors`
    and `pickle` (the last with a persistent_load)."""
    if len(head) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(head[: tarfile.BLOCKSIZE], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def tar_members(handle: Any, max_entries: int, max_bytes: int) -> Iterator[tuple[Any, Callable[[], Window]]]:
    """(member, an opener of its bytes) for each regular member of a tar inside the artifact, within the caps. A
    link is refused: torch's legacy reader extracts members and opens what a link points to."""
    try:
        archive = tarfile.open(fileobj=handle, mode="r:")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CannotRead(f"a tar that cannot be read: {exc}") from exc
    with archive:
        count = 0
        while True:
            try:
                member = archive.next()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise CannotRead(f"a tar that cannot be read: {exc}") from exc
            if member is None:
                return
            count += 1
            if count > max_entries:
                raise CannotRead(f"a tar of more than {max_entries} members, over max_container_entries")
            if member.issym() or member.islnk():
                raise CannotRead(f"a tar whose member {member.name!r} is a link")
            if not member.isreg():
                continue
            if member.size > max_bytes:
                raise CannotRead(f"tar member {member.name!r} is {member.size} bytes, over max_member_bytes")

            def opener(member: Any = member) -> Window:
                reader = archive.extractfile(member)
                if reader is None:  # a regular member always has one
                    raise CannotRead(f"tar member {member.name!r} cannot be read")
                return Window(reader, member.size)

            yield member, opener


class Window:
    """At most `size` bytes of a stream as a read-only file with `remaining`, `peek` and `tell` (relative):
    what the loader and the readings here take, for a zip entry, a tar member or the pickle inside a .npy."""

    def __init__(self, stream: Any, size: int):
        self._stream = stream
        self._size = size
        self.remaining = size

    def __enter__(self) -> Window:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._size - self.remaining

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(self.remaining if size is None or size < 0 else min(size, self.remaining))
        self.remaining -= len(data)
        return data

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")[: self.remaining]
        data = self._stream.read(len(view))
        view[: len(data)] = data
        self.remaining -= len(data)
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        limit = self.remaining if size is None or size < 0 else min(size, self.remaining)
        line = self._stream.readline(limit)
        self.remaining -= len(line)
        return line

    def peek(self, size: int = 1) -> bytes:
        peek = getattr(self._stream, "peek", None)
        return peek(size)[: min(max(size, 1), self.remaining)] if peek is not None else b""
