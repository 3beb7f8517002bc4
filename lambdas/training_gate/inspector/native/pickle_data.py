"""A pickle read as data: a small interpreter for the opcodes a pickled model uses, and nothing else.

The built-in XGBoost container's `xgboost-model` (0.90-1.2) and JumpStart's LightGBM model are pickles
of one object: `xgboost.core.Booster` / `lightgbm.basic.Booster` built with NEWOBJ and given a dict of
plain values with BUILD (the model's bytes under `handle` / `_handle`). Framework mode adds the
scikit-learn wrappers (`XGBClassifier`, `LGBMClassifier`, a pickled `CatBoostClassifier`), whose state
holds such a Booster (or CatBoost's model bytes), numpy arrays of class labels and a label encoder,
pickled with `pickle` or `joblib`. This reader never imports a module and never calls a function the
file names: each global is looked up in a table of stand-ins (the listed classes become `PickledObject`
records, numpy arrays and scalars become `PickledArray` and plain numbers built here from their bytes,
`bytearray` builds bytes, `OrderedDict` and `defaultdict` build plain dicts), and any other global is
refused by its name. So a payload in an `xgboost-model` is refused before anything runs, and
`Booster.__setstate__`, which hands the bytes to C, is never called.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from training_gate.inspector.native._bytes import Reader
from training_gate.inspector.native.errors import Reason, refuse

MAX_STACK = 10_000
MAX_MEMO = 1_000_000
# Arrays the wrappers pickle are class labels and small bookkeeping: a cap far above them.
MAX_ARRAY_ELEMENTS = 1 << 24
# How deep joblib may nest an object array's own pickle inside the file.
MAX_NESTING = 4
JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"


@dataclass
class PickledObject:
    """An instance the pickle asked for, as data: its class's full name and the state BUILD gave it."""

    cls: str
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class PickledArray:
    """A numpy array as data: its dtype (numpy's string, `<i8`, `<U3`, `|O`), shape and values in C order."""

    dtype: str
    shape: tuple[int, ...]
    values: list[Any]
    built: bool = field(default=True, repr=False, compare=False)


class _Class:
    def __init__(self, name: str) -> None:
        self.name = name


@dataclass
class _Dtype:
    """numpy.dtype(<type>, False, True) as data, completed by its BUILD (byte order, item size)."""

    kind: str
    order: str = "="
    itemsize: int = -1
    built: bool = False

    def text(self) -> str:
        single = self.kind[:1] in "bOS" or self.kind in ("u1", "i1")
        return ("|" if single else ">" if self.order == ">" else "<") + self.kind


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


# Element kinds numpy writes for the arrays and scalars a model's pickle holds: struct format per item.
_NUMERIC = {
    "b1": "?", "i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I", "i8": "q", "u8": "Q",
    "f2": "e", "f4": "f", "f8": "d",
}  # fmt: skip
_NUMPY_KINDS = {"bool": "b1", "int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4"}
_NUMPY_KINDS.update({"uint32": "u4", "int64": "i8", "uint64": "u8", "float16": "f2", "float32": "f4"})
_NUMPY_KINDS.update({"float64": "f8", "object": "O", "str": "U", "bytes": "S"})


def _dtype(*args: Any) -> _Dtype:
    if not args or not isinstance(args[0], str) or len(args) > 3:
        raise refuse(Reason.PICKLE_SHAPE, "numpy.dtype with unexpected arguments", "pickle")
    kind = _NUMPY_KINDS.get(args[0], "O" if args[0] in ("O4", "O8") else args[0])
    if not (kind in _NUMERIC or kind == "O" or (kind[:1] in "US" and kind[1:].isdigit()) or kind in ("U", "S")):
        raise refuse(Reason.UNSUPPORTED, f"numpy dtype {args[0]!r} in a model's pickle", "pickle")
    return _Dtype(kind)


def _decode(dtype: _Dtype, raw: bytes, count: int, where: str) -> list[Any]:
    """`count` elements of `dtype` from their bytes, checked against the bytes present."""
    kind = dtype.kind
    if kind in _NUMERIC:
        fmt = _NUMERIC[kind]
        size = struct.calcsize(fmt)
        if len(raw) != size * count:
            raise refuse(Reason.INCONSISTENT, f"{len(raw)} bytes for {count} {kind} values", where)
        order = ">" if dtype.order == ">" else "<"
        return list(struct.unpack(f"{order}{count}{fmt}", raw))
    if kind[:1] in "US":
        width = dtype.itemsize if dtype.itemsize > 0 else 0
        if width <= 0 or len(raw) != width * count:
            raise refuse(Reason.INCONSISTENT, f"{len(raw)} bytes for {count} {kind} values", where)
        chunks = [raw[i * width : (i + 1) * width] for i in range(count)]
        if kind[:1] == "S":
            return [chunk.rstrip(b"\0") for chunk in chunks]
        codec = "utf-32-be" if dtype.order == ">" else "utf-32-le"
        try:
            return [chunk.decode(codec).rstrip("\0") for chunk in chunks]
        except UnicodeDecodeError as exc:
            raise refuse(Reason.MALFORMED, "a string array is not UTF-32", where) from exc
    raise refuse(Reason.UNSUPPORTED, f"an array of {kind} from raw bytes", where)


def _elements(shape: Any, where: str) -> tuple[tuple[int, ...], int]:
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise refuse(Reason.PICKLE_SHAPE, "an array shape that is not a tuple of sizes", where)
    count = math.prod(shape)
    if count > MAX_ARRAY_ELEMENTS:
        raise refuse(Reason.LENGTH_TOO_LARGE, f"an array of {count} elements", where)
    return shape, count


def _scalar(*args: Any) -> Any:
    """numpy.core.multiarray.scalar(dtype, bytes): a numpy scalar (a dict key of LightGBM's class map)."""
    if len(args) != 2 or not isinstance(args[0], _Dtype) or not isinstance(args[1], (bytes, str)):
        raise refuse(Reason.PICKLE_SHAPE, "a numpy scalar with unexpected arguments", "pickle")
    raw = args[1].encode("latin-1") if isinstance(args[1], str) else args[1]
    dtype = args[0]
    if dtype.kind[:1] in "US" and dtype.itemsize <= 0:
        dtype = _Dtype(dtype.kind, dtype.order, len(raw), True)
    return _decode(dtype, raw, 1, "numpy scalar")[0]


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "builtins.bytearray": _bytearray,
    "__builtin__.bytearray": _bytearray,
    "_codecs.encode": _encode,
    "collections.OrderedDict": _plain_dict,
    "collections.defaultdict": _plain_dict,
}
# numpy's pickle helpers under numpy 1.x and 2.x names: stand-ins that build data, never numpy objects.
_NUMPY_FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{f"{module}.multiarray.scalar": _scalar for module in ("numpy.core", "numpy._core")},
    "numpy.dtype": _dtype,
}
_RECONSTRUCT = frozenset(f"{module}.multiarray._reconstruct" for module in ("numpy.core", "numpy._core"))


class _Machine:
    """The interpreter over one pickle stream; joblib's object arrays nest another stream inside it."""

    def __init__(self, reader: Reader, classes: frozenset[str], arrays: bool, where: str, depth: int = 0) -> None:
        self.reader = reader
        self.classes = classes
        self.arrays = arrays
        self.where = where
        self.depth = depth
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise refuse(Reason.MALFORMED, "no MARK on the stack", self.where)
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def pop(self) -> Any:
        if not self.stack:
            raise refuse(Reason.MALFORMED, "stack underflow", self.where)
        return self.stack.pop()

    def top(self, kind: type | tuple[type, ...]) -> Any:
        if not self.stack or not isinstance(self.stack[-1], kind):
            raise refuse(Reason.MALFORMED, "an operation on the wrong type", self.where)
        return self.stack[-1]

    def text(self, size: int) -> str:
        try:
            return bytes(self.reader.take(size, "string")).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise refuse(Reason.MALFORMED, "a string is not UTF-8", self.where) from exc

    def resolve(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full in self.classes or (self.arrays and full == JOBLIB_WRAPPER):
            return _Class(full)
        if full in _FUNCTIONS:
            return _FUNCTIONS[full]
        if self.arrays:
            if full in _NUMPY_FUNCTIONS:
                return _NUMPY_FUNCTIONS[full]
            if full in _RECONSTRUCT:
                return self.reconstruct
            if full == "numpy.ndarray":
                return _Class(full)
        raise refuse(Reason.PICKLE_GLOBAL_REFUSED, f"the pickle imports {full}, which a model never needs", self.where)

    def reconstruct(self, *args: Any) -> PickledArray:
        """numpy's `_reconstruct(ndarray, (0,), b'b')`: an empty array its BUILD fills in place, as numpy's
        `__setstate__` does (the memo may hold it already)."""
        if len(args) != 3 or not isinstance(args[0], _Class) or args[0].name != "numpy.ndarray":
            raise refuse(Reason.PICKLE_SHAPE, "numpy _reconstruct of something other than an ndarray", self.where)
        return PickledArray("", (0,), [], built=False)

    def build(self, state: Any) -> None:
        target = self.top((PickledObject, _Dtype, PickledArray))
        if isinstance(target, _Dtype):
            # (version, byte order, subarray, names, fields, itemsize, alignment, flags)
            if target.built or not isinstance(state, tuple) or len(state) < 8 or state[2:5] != (None, None, None):
                raise refuse(Reason.UNSUPPORTED, "a structured or malformed numpy dtype", self.where)
            if state[1] not in ("<", ">", "|", "=") or not isinstance(state[5], int):
                raise refuse(Reason.PICKLE_SHAPE, "a numpy dtype's state", self.where)
            target.order, target.itemsize, target.built = state[1], state[5], True
            return
        if isinstance(target, PickledArray):
            if target.built:
                raise refuse(Reason.PICKLE_SHAPE, "an array given its state twice", self.where)
            built = self.array_state(state)
            target.dtype, target.shape, target.values, target.built = built.dtype, built.shape, built.values, True
            return
        if not isinstance(state, dict) or target.state:
            raise refuse(Reason.PICKLE_SHAPE, f"{target.cls} is given a state that is not one dict", self.where)
        target.state = state
        if target.cls == JOBLIB_WRAPPER:
            self.stack[-1] = self.joblib_array(state)

    def array_state(self, state: Any) -> PickledArray:
        """ndarray.__setstate__'s tuple: (version, shape, dtype, is_fortran, raw bytes or a list of objects)."""
        if not isinstance(state, tuple) or len(state) != 5 or not isinstance(state[2], _Dtype):
            raise refuse(Reason.PICKLE_SHAPE, "an ndarray state that is not numpy's", self.where)
        _, shape, dtype, fortran, raw = state
        shape, count = _elements(shape, self.where)
        if fortran and len(shape) > 1:
            raise refuse(Reason.UNSUPPORTED, "a Fortran-ordered array", self.where)
        if dtype.kind == "O":
            if not isinstance(raw, list) or len(raw) != count:
                raise refuse(Reason.PICKLE_SHAPE, f"an object array of {count} elements holds other data", self.where)
            return PickledArray(dtype.text(), shape, _plain_values(raw, self.where))
        if isinstance(raw, str):
            raw = raw.encode("latin-1")  # protocol 2 writes the bytes as text
        if not isinstance(raw, bytes):
            raise refuse(Reason.PICKLE_SHAPE, "an array's data is not bytes", self.where)
        return PickledArray(dtype.text(), shape, _decode(dtype, raw, count, self.where))

    def joblib_array(self, state: Mapping[str, Any]) -> PickledArray:
        """joblib writes an array's bytes right after its wrapper's BUILD (numpy_pickle.NumpyArrayWrapper.read_array),
        after a padding byte and padding when it aligns them; an object array is a pickle of its own there."""
        dtype, shape = state.get("dtype"), state.get("shape")
        if not isinstance(dtype, _Dtype) or state.get("order", "C") not in ("C", "F"):
            raise refuse(Reason.PICKLE_SHAPE, "a joblib array wrapper's state", self.where)
        shape, count = _elements(shape, self.where)
        if dtype.kind == "O":
            if self.depth >= MAX_NESTING:
                raise refuse(Reason.MALFORMED, "joblib arrays nested too deeply", self.where)
            nested = _Machine(self.reader, self.classes, self.arrays, self.where, self.depth + 1).run(embedded=True)
            if not isinstance(nested, PickledArray) or nested.shape != shape:
                raise refuse(Reason.PICKLE_SHAPE, "a joblib object array holds something else", self.where)
            return nested
        if state.get("order", "C") == "F" and len(shape) > 1:
            raise refuse(Reason.UNSUPPORTED, "a Fortran-ordered array", self.where)
        if state.get("numpy_array_alignment_bytes") is not None:
            padding = self.reader.one("B", "joblib padding length")
            self.reader.take(padding, "joblib padding")
        size = dtype.itemsize if dtype.kind[:1] in "US" else struct.calcsize(_NUMERIC.get(dtype.kind, "x"))
        raw = bytes(self.reader.take(size * count, "joblib array data"))
        return PickledArray(dtype.text(), shape, _decode(dtype, raw, count, self.where))

    def run(self, embedded: bool = False) -> Any:
        reader, stack = self.reader, self.stack
        while True:
            if len(stack) > MAX_STACK or len(self.memo) > MAX_MEMO:
                raise refuse(Reason.LENGTH_TOO_LARGE, "the pickle's stack or memo is too large", self.where)
            op = bytes(reader.take(1, "opcode"))
            if op == b"\x80":  # PROTO
                if reader.one("B", "protocol") > 5:
                    raise refuse(Reason.UNSUPPORTED, "pickle protocol above 5", self.where)
            elif op == b"\x95":  # FRAME
                if reader.one("Q", "frame size") > reader.remaining:
                    raise refuse(Reason.TRUNCATED, "a frame is longer than the file", self.where)
            elif op == b".":  # STOP
                if len(stack) != 1 or self.marks:
                    raise refuse(Reason.MALFORMED, "the pickle stops with a malformed stack", self.where)
                if reader.remaining and not embedded:
                    raise refuse(Reason.TRAILING_BYTES, f"{reader.remaining} bytes after STOP", self.where)
                return stack[0]
            else:
                self.step(op)

    def step(self, op: bytes) -> None:
        """One opcode (every one but PROTO, FRAME and STOP), one branch each, as pickle's own machine."""
        reader, stack = self.reader, self.stack
        if op == b"(":
            self.marks.append(len(stack))
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
            stack.append(self.text(reader.one("B", "string size")))
        elif op == b"X":
            stack.append(self.text(reader.one("I", "string size")))
        elif op == b"\x8d":
            stack.append(self.text(reader.one("Q", "string size")))
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
                raise refuse(Reason.MALFORMED, "stack underflow", self.where)
            items = tuple(stack[-count:])
            del stack[-count:]
            stack.append(items)
        elif op == b"t":
            stack.append(tuple(self.pop_mark()))
        elif op == b"l":
            stack.append(self.pop_mark())
        elif op == b"d":
            stack.append(_pairs(self.pop_mark(), self.where))
        elif op == b"a":
            value = self.pop()
            self.top(list).append(value)
        elif op == b"e":
            items = self.pop_mark()
            self.top(list).extend(items)
        elif op == b"s":
            value, key = self.pop(), self.pop()
            _set(self.top(dict), key, value, self.where)
        elif op == b"u":
            items = self.pop_mark()
            target = self.top(dict)
            for key, value in _pairs(items, self.where).items():
                _set(target, key, value, self.where)
        elif op in (b"q", b"r", b"\x94"):  # BINPUT, LONG_BINPUT, MEMOIZE
            index = reader.one("B", "memo") if op == b"q" else reader.one("I", "memo") if op == b"r" else len(self.memo)
            if not stack:
                raise refuse(Reason.MALFORMED, "memoize on an empty stack", self.where)
            self.memo[index] = stack[-1]
        elif op in (b"h", b"j"):
            index = reader.one("B", "memo") if op == b"h" else reader.one("I", "memo")
            if index not in self.memo:
                raise refuse(Reason.MALFORMED, f"memo {index} is read before it is written", self.where)
            stack.append(self.memo[index])
        elif op == b"c":  # GLOBAL: "module\nname\n"
            module = _line(reader, self.where)
            stack.append(self.resolve(module, _line(reader, self.where)))
        elif op == b"\x93":  # STACK_GLOBAL
            name, module = self.pop(), self.pop()
            if not (isinstance(module, str) and isinstance(name, str)):
                raise refuse(Reason.MALFORMED, "STACK_GLOBAL of non-strings", self.where)
            stack.append(self.resolve(module, name))
        elif op == b"\x81":  # NEWOBJ
            args, cls = self.pop(), self.pop()
            if not isinstance(cls, _Class) or cls.name == "numpy.ndarray" or args != ():
                raise refuse(Reason.PICKLE_SHAPE, "NEWOBJ of something other than a listed class", self.where)
            stack.append(PickledObject(cls.name))
        elif op == b"R":  # REDUCE
            args, function = self.pop(), self.pop()
            if not callable(function) or isinstance(function, _Class) or not isinstance(args, tuple):
                raise refuse(Reason.PICKLE_SHAPE, "REDUCE of something other than a listed function", self.where)
            stack.append(function(*args))
        elif op == b"b":  # BUILD
            self.build(self.pop())
        else:
            position = reader.pos - 1
            raise refuse(Reason.PICKLE_SHAPE, f"opcode {op!r} at offset {position} is not used by a model", self.where)


def read_pickle(data: bytes, classes: frozenset[str], where: str = "pickle", arrays: bool = False) -> Any:
    """The object a pickle describes, if it uses only `classes` (built by NEWOBJ + BUILD) and the plain
    stand-ins above (with `arrays`, numpy arrays, dtypes and scalars, and joblib's array wrapper too);
    a `NativeRefusal` naming the first other global or opcode."""
    return _Machine(Reader(data, where), classes, arrays, where).run()


def _plain_values(values: list[Any], where: str) -> list[Any]:
    for value in values:
        if not (value is None or isinstance(value, (str, int, float, bytes))):
            raise refuse(Reason.PICKLE_SHAPE, f"an object array holds a {type(value).__name__}", where)
    return values


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
    if not isinstance(key, (str, int, float, bytes)):
        raise refuse(Reason.PICKLE_SHAPE, f"a dict key of type {type(key).__name__}", where)
    target[key] = value


def object_state(value: Any, cls: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, PickledObject) or value.cls != cls:
        found = value.cls if isinstance(value, PickledObject) else type(value).__name__
        raise refuse(Reason.PICKLE_SHAPE, f"the pickle holds {found}, not {cls}", where)
    return value.state
