"""A torch pickle read as data, with the semantics of `torch.load(weights_only=True)`, without torch.

`torch/_weights_only_unpickler.py` is the line torch draws: the opcodes torch.save's protocol 2 writes,
globals from a fixed table (tensor and parameter rebuilds, storages, dtypes, `torch.Size`,
`torch.device`, OrderedDict and Counter, `_codecs.encode`, bytearray, set, complex), BUILD only on
tensors, parameters and OrderedDict, APPEND only on lists, SETITEM only on dicts. This reader keeps that
line and goes further: nothing the file names is ever imported or called. Each global resolves, by its
exact name, to a stand-in object of this module, and every operation dispatches on the stand-in's
identity; what the file asks for is built as a record (`Tensor`, `Storage`, `StateDict`...) whose
fields are checked first. So the pickle of a whole model (`__main__.Net`) is refused naming its class,
and the published ways past weights_only are refused by rule, not by case: TorchScript under
weights_only (CVE-2025-32434: a TorchScript archive is recognised by its records and never read as
weights here), SETITEM on a tensor or storage and storages smaller than the tensors that view them
(CVE-2026-24747: SETITEM needs a dict record; every storage's bytes are compared with what each tensor
reads).

Profiles widen the table for files that are not weights: `TORCHSCRIPT` reads a TorchScript archive's
`data.pkl` (its `__torch__.*` modules as inert records), `RNG` the numpy arrays of a Trainer's RNG
state, `SCAN` the dataclasses and enums of `training_args.bin`. None of them ever runs anything.
"""

from __future__ import annotations

import _compat_pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from training_gate.inspector.checkpoints.dtypes import TORCH_DTYPES, TORCH_STORAGES, UNTYPED, DType
from training_gate.inspector.checkpoints.errors import Reason, refuse

MAX_STACK = 100_000
MAX_MEMO = 10_000_000
MAX_DIMS = 64
MAX_CONTAINER = 10_000_000


class Profile(Enum):
    WEIGHTS = "weights"
    TORCHSCRIPT = "torchscript"
    RNG = "rng"
    SCAN = "scan"


# -- records the reader builds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Storage:
    key: str
    dtype: DType
    location: str
    numel: int  # elements of `dtype`; bytes for an untyped storage

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass(frozen=True)
class Tensor:
    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: DType
    requires_grad: bool = False
    parameter: bool = False

    @property
    def numel(self) -> int:
        count = 1
        for extent in self.size:
            count *= extent
        return count


class StateDict(dict):  # type: ignore[type-arg]
    """collections.OrderedDict as data; `attributes` holds what BUILD gave it (a state_dict's _metadata)."""

    def __init__(self) -> None:
        super().__init__()
        self.attributes: dict[str, Any] = {}


class CounterRecord(dict):  # type: ignore[type-arg]
    """collections.Counter as data."""


@dataclass(frozen=True)
class Device:
    spec: str


@dataclass
class Instance:
    """An object of a class the profile admits as inert data (never instantiated): its class and state."""

    cls: str
    args: tuple[Any, ...] = ()
    state: Any = None


@dataclass(frozen=True)
class NdArray:
    dtype: str
    shape: tuple[int, ...]
    data: bytes


@dataclass
class _Pending:
    """numpy's `_reconstruct` or `dtype` call awaiting its BUILD (RNG profile)."""

    kind: str
    args: tuple[Any, ...]
    state: Any = None


# -- the table of globals --------------------------------------------------------------------------------------


class _Global:
    """A stand-in for one allowed global. Operations compare stand-ins by identity only."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any = None) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return self.name


def _table(names: list[str]) -> dict[str, _Global]:
    return {name: _Global(name) for name in names}


_G = _table(
    [
        "collections.OrderedDict",
        "collections.Counter",
        "torch.nn.parameter.Parameter",
        "torch.serialization._get_layout",
        "torch.Size",
        "torch.Tensor",
        "torch.device",
        "_codecs.encode",
        "builtins.bytearray",
        "builtins.set",
        "builtins.complex",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "torch.UntypedStorage",
    ]
)
# Rebuilds torch allows that the gate does not read: the file is refused naming them (a later reader can).
_UNREAD = _table(
    [
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_wrapper_subclass",
        "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_device_tensor_from_cpu_tensor",
        *(f"torch.{q}" for q in ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine")),
        "torch.per_channel_symmetric",
        "torch.per_channel_affine_float_qparams",
    ]
)
_DTYPE_GLOBALS = {f"torch.{name}": _Global(f"torch.{name}", dtype) for name, dtype in TORCH_DTYPES.items()}
_STORAGE_GLOBALS = {f"torch.{name}": _Global(f"torch.{name}", dtype) for name, dtype in TORCH_STORAGES.items()}
_STORAGE_GLOBALS["torch.UntypedStorage"] = _G["torch.UntypedStorage"]
# torch._tensor_classes: weights_only admits them as values (the oldest tar format names one per tensor).
_TENSOR_TYPES = _table(
    [
        f"torch.{device}{kind}Tensor"
        for device in ("", "cuda.")
        for kind in ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")
    ]
)
_G["torch.UntypedStorage"].value = UNTYPED
# The TorchScript pickler's helpers: each wraps a list it is given.
_SCRIPT = _table([f"torch.jit._pickle.{n}" for n in ("build_intlist", "build_tensorlist", "build_doublelist")])
_SCRIPT.update(_table(["torch.jit._pickle.build_boollist", "torch.jit._pickle.restore_type_tag"]))
# numpy arrays as transformers' Trainer saves its RNG state (numpy >= 1.25 and 2.x spellings).
_NUMPY = _table(
    [
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.dtypes.UInt32DType",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
    ]
)
# Packages whose classes training_args.bin pickles (TrainingArguments, its enums): inert records in SCAN.
SCAN_PACKAGES = ("transformers.", "accelerate.", "peft.", "trl.", "sagemaker.")
# Modules whose names torch's own unpickler never admits, whatever a user allowlists.
_BLOCKED_MODULES = ("sys", "os", "posix", "nt", "subprocess", "builtins.eval", "builtins.exec")


def _resolve(module: str, name: str, profile: Profile, where: str) -> Any:
    full = f"{module}.{name}"
    for table in (_G, _DTYPE_GLOBALS, _STORAGE_GLOBALS, _TENSOR_TYPES, _UNREAD):
        if full in table:
            return table[full]
    if profile is Profile.TORCHSCRIPT:
        if full in _SCRIPT:
            return _SCRIPT[full]
        if module.startswith("__torch__"):
            return _Global(full, "script-class")
    if profile is Profile.RNG and full in _NUMPY:
        return _NUMPY[full]
    if (
        profile is Profile.SCAN
        and full.startswith(SCAN_PACKAGES)
        and name[:1].isupper()
        and name.isidentifier()
        and not module.startswith(_BLOCKED_MODULES)
    ):
        return _Global(full, "scan-class")
    if module.startswith("__torch__"):
        raise refuse(
            Reason.PICKLE_GLOBAL_REFUSED,
            f"the pickle names the TorchScript class {full}: a TorchScript archive, not weights",
            where,
        )
    if module == "__main__" or module.startswith("torch.nn.modules") or (name[:1].isupper() and "." in full):
        raise refuse(
            Reason.USER_CLASS,
            f"the pickle holds an object of class {full} (a whole model or an object of your own), which "
            "loading runs code for: save the weights instead, torch.save(model.state_dict(), path), or "
            "safetensors",
            where,
        )
    raise refuse(
        Reason.PICKLE_GLOBAL_REFUSED, f"the pickle imports {full}, which torch's weights_only loader refuses", where
    )


# -- the reader ---------------------------------------------------------------------------------------------


@dataclass
class PickleResult:
    root: Any
    storages: dict[str, Storage] = field(default_factory=dict)
    globals: set[str] = field(default_factory=set)
    protocol: int = -1


class _Reader:
    def __init__(self, data: bytes, profile: Profile, where: str, persistent: Callable[[Any], Any]) -> None:
        self.data = data
        self.pos = 0
        self.profile = profile
        self.where = where
        self.persistent = persistent
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.result = PickleResult(None)
        self.ops: dict[int, Callable[[_Reader], Any]] = _OPCODES

    def fail(self, reason: Reason, detail: str) -> Exception:
        return refuse(reason, f"{detail} (at byte {self.pos})", self.where)

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise self.fail(Reason.TRUNCATED, f"{size} bytes needed, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def line(self) -> str:
        end = self.data.find(b"\n", self.pos, self.pos + 512)
        if end < 0:
            raise self.fail(Reason.MALFORMED, "a GLOBAL name without its newline")
        raw = self.take(end - self.pos + 1)[:-1]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(Reason.MALFORMED, "a GLOBAL name is not UTF-8") from exc

    def pop(self) -> Any:
        if not self.stack:
            raise self.fail(Reason.MALFORMED, "stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise self.fail(Reason.MALFORMED, "stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise self.fail(Reason.MALFORMED, "no MARK to pop")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def run(self) -> PickleResult:
        ops = self.ops
        while True:
            if len(self.stack) > MAX_STACK or len(self.metastack) > MAX_STACK or len(self.memo) > MAX_MEMO:
                raise self.fail(Reason.LIMIT, "the pickle's stack or memo is too large")
            code = self.take(1)[0]
            handler = ops.get(code)
            if handler is None:
                raise self.fail(
                    Reason.PICKLE_OPCODE_REFUSED,
                    f"opcode {bytes([code])!r}, which torch's weights_only loader does not read",
                )
            if handler(self):
                return self.result


def _push(value: Any) -> Callable[[_Reader], None]:
    def handler(reader: _Reader) -> None:
        reader.stack.append(value() if callable(value) else value)

    return handler


def _proto(r: _Reader) -> None:
    r.result.protocol = r.take(1)[0]
    if r.result.protocol > 5:
        raise r.fail(Reason.UNSUPPORTED, f"pickle protocol {r.result.protocol}")


def _stop(r: _Reader) -> bool:
    if len(r.stack) != 1 or r.metastack:
        raise r.fail(Reason.MALFORMED, "the pickle stops with a malformed stack")
    if isinstance(r.stack[0], _Pending):
        raise r.fail(Reason.PICKLE_SHAPE, "an object was created and never given its state")
    r.result.root = r.stack[0]
    return True


def _global(r: _Reader) -> None:
    module = r.line()
    name = r.line()
    # Protocol 2 spells Python 3 names the Python 2 way (`__builtin__.set`); torch's weights_only reader
    # maps them back with the same tables before it looks them up (torch/_weights_only_unpickler.py).
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    r.result.globals.add(f"{module}.{name}")
    r.stack.append(_resolve(module, name, r.profile, r.where))


def _binunicode(r: _Reader) -> None:
    size = struct.unpack("<I", r.take(4))[0]
    try:
        r.stack.append(r.take(size).decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError as exc:
        raise r.fail(Reason.MALFORMED, "a string is not UTF-8") from exc


def _short_binstring(r: _Reader) -> None:
    size = r.take(1)[0]
    try:
        r.stack.append(r.take(size).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise r.fail(Reason.MALFORMED, "a string is not UTF-8") from exc


def _long1(r: _Reader) -> None:
    size = r.take(1)[0]
    r.stack.append(int.from_bytes(r.take(size), "little", signed=True))


def _tuple_n(count: int) -> Callable[[_Reader], None]:
    def handler(r: _Reader) -> None:
        if len(r.stack) < count:
            raise r.fail(Reason.MALFORMED, "stack underflow")
        items = tuple(r.stack[len(r.stack) - count :])
        del r.stack[len(r.stack) - count :]
        r.stack.append(items)

    return handler


def _mark(r: _Reader) -> None:
    r.metastack.append(r.stack)
    r.stack = []


def _tuple(r: _Reader) -> None:
    items = r.pop_mark()
    r.stack.append(tuple(items))


def _binput(width: str) -> Callable[[_Reader], None]:
    def handler(r: _Reader) -> None:
        index = struct.unpack(width, r.take(struct.calcsize(width)))[0]
        r.memo[index] = r.top()

    return handler


def _binget(width: str) -> Callable[[_Reader], None]:
    def handler(r: _Reader) -> None:
        index = struct.unpack(width, r.take(struct.calcsize(width)))[0]
        if index not in r.memo:
            raise r.fail(Reason.MALFORMED, f"memo {index} is read before it is written")
        r.stack.append(r.memo[index])

    return handler


def _append(r: _Reader) -> None:
    value = r.pop()
    target = r.top()
    if type(target) is not list:
        raise r.fail(Reason.PICKLE_SHAPE, f"APPEND to a {type(target).__name__}, not a list")
    if len(target) >= MAX_CONTAINER:
        raise r.fail(Reason.LIMIT, "a list is too long")
    target.append(value)


def _appends(r: _Reader) -> None:
    items = r.pop_mark()
    target = r.top()
    if type(target) is not list:
        raise r.fail(Reason.PICKLE_SHAPE, f"APPENDS to a {type(target).__name__}, not a list")
    if len(target) + len(items) > MAX_CONTAINER:
        raise r.fail(Reason.LIMIT, "a list is too long")
    target.extend(items)


def _set_item(r: _Reader, target: Any, key: Any, value: Any) -> None:
    # CVE-2026-24747: SETITEM on anything but a dict wrote into tensors and storages before torch 2.10.
    if type(target) not in (dict, StateDict, CounterRecord):
        raise r.fail(Reason.PICKLE_SHAPE, f"SETITEM on a {type(target).__name__}, not a dict")
    if not _hashable(key):
        raise r.fail(Reason.PICKLE_SHAPE, f"a dict key of type {type(key).__name__}")
    if len(target) >= MAX_CONTAINER:
        raise r.fail(Reason.LIMIT, "a dict is too large")
    target[key] = value


def _setitem(r: _Reader) -> None:
    value, key = r.pop(), r.pop()
    _set_item(r, r.top(), key, value)


def _setitems(r: _Reader) -> None:
    items = r.pop_mark()
    if len(items) % 2:
        raise r.fail(Reason.MALFORMED, "SETITEMS with an odd number of items")
    target = r.top()
    for index in range(0, len(items), 2):
        _set_item(r, target, items[index], items[index + 1])


def _hashable(key: Any) -> bool:
    if key is None or isinstance(key, (str, int, float, bytes, Device)):
        return True
    return isinstance(key, tuple) and all(_hashable(item) for item in key)


def _binpersid(r: _Reader) -> None:
    pid = r.pop()
    if type(pid) is not tuple or not pid or pid[0] != "storage":
        raise r.fail(Reason.PICKLE_SHAPE, "a persistent id that is not a storage")
    r.stack.append(r.persistent(pid))


def _reduce(r: _Reader) -> None:
    args = r.pop()
    func = r.pop()
    if not isinstance(func, _Global) or type(args) is not tuple:
        raise r.fail(Reason.PICKLE_SHAPE, "REDUCE of something that is not an allowed global")
    from training_gate.inspector.checkpoints.pickle_calls import call

    r.stack.append(call(r, func, args))


def _newobj(r: _Reader) -> None:
    args = r.pop()
    cls = r.pop()
    if isinstance(cls, _Global) and cls.value == "scan-class" and args != ():
        raise r.fail(Reason.PICKLE_SHAPE, f"NEWOBJ of {cls!r} with arguments: a dataclass is built from its state")
    if isinstance(cls, _Global) and cls.value in ("script-class", "scan-class") and type(args) is tuple:
        r.stack.append(Instance(cls.name, args))
        return
    if isinstance(cls, _Global) and r.profile is Profile.RNG and cls is _NUMPY["numpy.dtype"]:
        r.stack.append(_Pending("dtype", args))
        return
    raise r.fail(Reason.PICKLE_SHAPE, f"NEWOBJ of {cls!r}: torch.save writes no such object")


def _build(r: _Reader) -> None:
    state = r.pop()
    target = r.top()
    if type(target) is StateDict:
        if type(state) is not dict or not all(isinstance(k, str) for k in state) or target.attributes:
            raise r.fail(Reason.PICKLE_SHAPE, "an OrderedDict given a state that is not one dict of names")
        target.attributes = state
    elif type(target) is Instance and target.state is None:
        target.state = state
    elif type(target) is _Pending and target.state is None:
        target.state = state
        from training_gate.inspector.checkpoints.pickle_calls import numpy_record

        r.stack[-1] = numpy_record(r, target)
    else:
        # torch builds Tensor (legacy set_) and Parameter (__setstate__) too; nothing torch writes since
        # 1.0 needs it, and either hands the file's state to C.
        raise r.fail(Reason.PICKLE_SHAPE, f"BUILD on a {type(target).__name__}: torch.save writes no such state")


_OPCODES: dict[int, Callable[[_Reader], Any]] = {
    0x80: _proto,
    ord("."): _stop,
    ord("c"): _global,
    ord("X"): _binunicode,
    ord("U"): _short_binstring,
    ord("J"): lambda r: r.stack.append(struct.unpack("<i", r.take(4))[0]),
    ord("K"): lambda r: r.stack.append(r.take(1)[0]),
    ord("M"): lambda r: r.stack.append(struct.unpack("<H", r.take(2))[0]),
    ord("G"): lambda r: r.stack.append(struct.unpack(">d", r.take(8))[0]),
    0x8A: _long1,
    ord("N"): _push(None),
    0x88: _push(True),
    0x89: _push(False),
    ord(")"): _push(()),
    ord("]"): _push(list),
    ord("}"): _push(dict),
    0x8F: _push(set),
    ord("("): _mark,
    ord("t"): _tuple,
    0x85: _tuple_n(1),
    0x86: _tuple_n(2),
    0x87: _tuple_n(3),
    ord("q"): _binput("<B"),
    ord("r"): _binput("<I"),
    ord("h"): _binget("<B"),
    ord("j"): _binget("<I"),
    ord("a"): _append,
    ord("e"): _appends,
    ord("s"): _setitem,
    ord("u"): _setitems,
    ord("Q"): _binpersid,
    ord("R"): _reduce,
    0x81: _newobj,
    ord("b"): _build,
}


def read_pickle(
    data: bytes, persistent: Callable[[Any], Any], profile: Profile = Profile.WEIGHTS, where: str = "data.pkl"
) -> PickleResult:
    """The records the pickle describes; `persistent` turns each ('storage', ...) id into a `Storage`."""
    reader = _Reader(data, profile, where, persistent)
    result = reader.run()
    if reader.pos != len(data):
        raise refuse(Reason.MALFORMED, f"{len(data) - reader.pos} bytes after STOP", where)
    return result


def read_pickle_prefix(
    data: bytes, start: int, persistent: Callable[[Any], Any], profile: Profile, where: str
) -> tuple[PickleResult, int]:
    """One pickle of several in a row (the legacy format): its records and where the next one starts."""
    reader = _Reader(data, profile, where, persistent)
    reader.pos = start
    return reader.run(), reader.pos


def read_pickle_by_key(data: bytes, objects: dict[str, Any], where: str) -> PickleResult:
    """The tar format's pickle: a persistent id is the key of an object read before (a tensor)."""

    def by_key(reader: _Reader) -> None:
        pid = reader.pop()
        if type(pid) not in (str, int) or str(pid) not in objects:
            raise reader.fail(Reason.PICKLE_SHAPE, f"persistent id {str(pid)[:40]!r} names no tensor")
        reader.stack.append(objects[str(pid)])

    reader = _Reader(data, Profile.WEIGHTS, where, lambda pid: None)
    reader.ops = {**_OPCODES, ord("Q"): by_key}
    result = reader.run()
    if reader.pos != len(data):
        raise refuse(Reason.MALFORMED, f"{len(data) - reader.pos} bytes after STOP", where)
    return result
