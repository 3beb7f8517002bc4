"""A pickle read as data: a small interpreter for the opcodes a pickled Booster uses, and nothing else.

The built-in XGBoost container's `xgboost-model` (0.90-1.2) and JumpStart's LightGBM model are pickles
of one object: `xgboost.core.Booster` / `lightgbm.basic.Booster` built with NEWOBJ and given a dict of
plain values with BUILD (the model's bytes under `handle` / `_handle`). This reader never imports a
module and never calls a function the file names: each global is looked up in a table of stand-ins
(the Booster classes become a `PickledObject` record, `bytearray` builds bytes, `OrderedDict` and
`defaultdict` build plain dicts), and any other global is refused by its name. So a payload in an
`xgboost-model` is refused before anything runs, and `Booster.__setstate__`, which hands the bytes to C,
is never called.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from training_gate.inspector.native._bytes import Reader
from training_gate.inspector.native.errors import Reason, refuse

MAX_STACK = 10_000
MAX_MEMO = 1_000_000


@dataclass
class PickledObject:
    """An instance the pickle asked for, as data: its class's full name and the state BUILD gave it."""

    cls: str
    state: dict[str, Any] = field(default_factory=dict)


class _Class:
    def __init__(self, name: str) -> None:
        self.name = name


def _bytearray(*args: Any) -> bytes:
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin-1", "latin1"):
        return args[0].encode("latin-1")  # protocol 2 writes bytearray(str, "latin-1")
    if not args:
        return b""
    raise refuse(Reason.PICKLE_SHAPE, "bytearray() with unexpected arguments", "pickle")


def _encode(*args: Any) -> bytes:
    if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin-1", "latin1"):
        return args[0].encode("latin-1")  # protocol 2 writes bytes as _codecs.encode(str, "latin1")
    raise refuse(Reason.PICKLE_SHAPE, "_codecs.encode with unexpected arguments", "pickle")


def _plain_dict(*args: Any) -> dict[str, Any]:
    # OrderedDict() and defaultdict(OrderedDict): LightGBM's empty `best_score`; kept as a plain dict.
    if args and not (len(args) == 1 and isinstance(args[0], (_Class, type(_plain_dict)))):
        raise refuse(Reason.PICKLE_SHAPE, "a dict type with unexpected arguments", "pickle")
    return {}


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "builtins.bytearray": _bytearray,
    "__builtin__.bytearray": _bytearray,
    "_codecs.encode": _encode,
    "collections.OrderedDict": _plain_dict,
    "collections.defaultdict": _plain_dict,
}


def read_pickle(data: bytes, classes: frozenset[str], where: str = "pickle") -> Any:
    """The object a pickle describes, if it uses only `classes` (built by NEWOBJ + BUILD) and the plain
    stand-ins above; a `NativeRefusal` naming the first other global or opcode."""
    reader = Reader(data, where)
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}

    def pop_mark() -> list[Any]:
        if not marks:
            raise refuse(Reason.MALFORMED, "no MARK on the stack", where)
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def pop() -> Any:
        if not stack:
            raise refuse(Reason.MALFORMED, "stack underflow", where)
        return stack.pop()

    def top(kind: type | tuple[type, ...]) -> Any:
        if not stack or not isinstance(stack[-1], kind):
            raise refuse(Reason.MALFORMED, "an operation on the wrong type", where)
        return stack[-1]

    def text(size: int) -> str:
        try:
            return bytes(reader.take(size, "string")).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise refuse(Reason.MALFORMED, "a string is not UTF-8", where) from exc

    def resolve(module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full in classes:
            return _Class(full)
        if full in _FUNCTIONS:
            return _FUNCTIONS[full]
        raise refuse(Reason.PICKLE_GLOBAL_REFUSED, f"the pickle imports {full}, which a model never needs", where)

    while True:
        if len(stack) > MAX_STACK or len(memo) > MAX_MEMO:
            raise refuse(Reason.LENGTH_TOO_LARGE, "the pickle's stack or memo is too large", where)
        op = bytes(reader.take(1, "opcode"))
        if op == b"\x80":  # PROTO
            if reader.one("B", "protocol") > 5:
                raise refuse(Reason.UNSUPPORTED, "pickle protocol above 5", where)
        elif op == b"\x95":  # FRAME
            if reader.one("Q", "frame size") > reader.remaining:
                raise refuse(Reason.TRUNCATED, "a frame is longer than the file", where)
        elif op == b".":  # STOP
            if len(stack) != 1 or marks:
                raise refuse(Reason.MALFORMED, "the pickle stops with a malformed stack", where)
            if reader.remaining:
                raise refuse(Reason.TRAILING_BYTES, f"{reader.remaining} bytes after STOP", where)
            return stack[0]
        elif op == b"(":
            marks.append(len(stack))
        elif op == b"N":
            stack.append(None)
        elif op == b"\x88":
            stack.append(True)
        elif op == b"\x89":
            stack.append(False)
        elif op == b"J":
            stack.append(reader.one("i", "int"))
        elif op == b"K":
            stack.append(reader.one("B", "int"))
        elif op == b"M":
            stack.append(reader.one("H", "int"))
        elif op == b"\x8a":  # LONG1
            size = reader.one("B", "long size")
            stack.append(int.from_bytes(reader.take(size, "long"), "little", signed=True))
        elif op == b"G":
            stack.append(struct.unpack(">d", reader.take(8, "float"))[0])
        elif op == b"\x8c":
            stack.append(text(reader.one("B", "string size")))
        elif op == b"X":
            stack.append(text(reader.one("I", "string size")))
        elif op == b"\x8d":
            stack.append(text(reader.one("Q", "string size")))
        elif op == b"C":
            stack.append(bytes(reader.take(reader.one("B", "bytes size"), "bytes")))
        elif op == b"B":
            stack.append(bytes(reader.take(reader.one("I", "bytes size"), "bytes")))
        elif op in (b"\x8e", b"\x96"):  # BINBYTES8, BYTEARRAY8
            stack.append(bytes(reader.take(reader.one("Q", "bytes size"), "bytes")))
        elif op == b"}":
            stack.append({})
        elif op == b"]":
            stack.append([])
        elif op == b")":
            stack.append(())
        elif op in (b"\x85", b"\x86", b"\x87"):  # TUPLE1..3
            count = op[0] - 0x84
            if len(stack) < count:
                raise refuse(Reason.MALFORMED, "stack underflow", where)
            items = tuple(stack[-count:])
            del stack[-count:]
            stack.append(items)
        elif op == b"t":
            stack.append(tuple(pop_mark()))
        elif op == b"l":
            stack.append(pop_mark())
        elif op == b"d":
            items = pop_mark()
            stack.append(_pairs(items, where))
        elif op == b"a":
            value = pop()
            top(list).append(value)
        elif op == b"e":
            items = pop_mark()
            top(list).extend(items)
        elif op == b"s":
            value, key = pop(), pop()
            _set(top(dict), key, value, where)
        elif op == b"u":
            items = pop_mark()
            target = top(dict)
            for key, value in _pairs(items, where).items():
                _set(target, key, value, where)
        elif op in (b"q", b"r", b"\x94"):  # BINPUT, LONG_BINPUT, MEMOIZE
            index = reader.one("B", "memo") if op == b"q" else reader.one("I", "memo") if op == b"r" else len(memo)
            if not stack:
                raise refuse(Reason.MALFORMED, "memoize on an empty stack", where)
            memo[index] = stack[-1]
        elif op in (b"h", b"j"):
            index = reader.one("B", "memo") if op == b"h" else reader.one("I", "memo")
            if index not in memo:
                raise refuse(Reason.MALFORMED, f"memo {index} is read before it is written", where)
            stack.append(memo[index])
        elif op == b"c":  # GLOBAL: "module\nname\n"
            module = _line(reader, where)
            stack.append(resolve(module, _line(reader, where)))
        elif op == b"\x93":  # STACK_GLOBAL
            name, module = pop(), pop()
            if not (isinstance(module, str) and isinstance(name, str)):
                raise refuse(Reason.MALFORMED, "STACK_GLOBAL of non-strings", where)
            stack.append(resolve(module, name))
        elif op == b"\x81":  # NEWOBJ
            args, cls = pop(), pop()
            if not isinstance(cls, _Class) or args != ():
                raise refuse(Reason.PICKLE_SHAPE, "NEWOBJ of something other than a listed class", where)
            stack.append(PickledObject(cls.name))
        elif op == b"R":  # REDUCE
            args, function = pop(), pop()
            if not callable(function) or isinstance(function, _Class) or not isinstance(args, tuple):
                raise refuse(Reason.PICKLE_SHAPE, "REDUCE of something other than a listed function", where)
            stack.append(function(*args))
        elif op == b"b":  # BUILD
            state = pop()
            target = top(PickledObject)
            if not isinstance(state, dict) or target.state:
                raise refuse(Reason.PICKLE_SHAPE, f"{target.cls} is given a state that is not one dict", where)
            target.state = state
        else:
            raise refuse(Reason.PICKLE_SHAPE, f"opcode {op!r} at offset {reader.pos - 1} is not used by a model", where)


def _line(reader: Reader, where: str) -> str:
    end = bytes(reader.data[reader.pos : reader.pos + 256]).find(b"\n")
    if end < 0:
        raise refuse(Reason.MALFORMED, "GLOBAL without a newline", where)
    raw = bytes(reader.take(end + 1, "global name"))[:-1]
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise refuse(Reason.MALFORMED, "GLOBAL name is not ASCII", where) from exc


def _pairs(items: list[Any], where: str) -> dict[Any, Any]:
    if len(items) % 2:
        raise refuse(Reason.MALFORMED, "an odd number of dict items", where)
    result: dict[Any, Any] = {}
    for key, value in zip(items[::2], items[1::2], strict=True):
        _set(result, key, value, where)
    return result


def _set(target: dict[Any, Any], key: Any, value: Any, where: str) -> None:
    if not isinstance(key, (str, int, bytes)) or isinstance(key, bool):
        raise refuse(Reason.PICKLE_SHAPE, f"a dict key of type {type(key).__name__}", where)
    target[key] = value


def object_state(value: Any, cls: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, PickledObject) or value.cls != cls:
        found = value.cls if isinstance(value, PickledObject) else type(value).__name__
        raise refuse(Reason.PICKLE_SHAPE, f"the pickle holds {found}, not {cls}", where)
    return value.state
