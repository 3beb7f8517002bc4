"""What each allowed global does when a pickle calls it: a record built by the gate, its arguments checked.

Dispatch is by the identity of the stand-in `_resolve` returned, never by a name the file can set. A
tensor rebuild checks its arguments' types and shape (sizes and strides non-negative integers of the
same length, at most 64 dimensions, a storage of the tensor's dtype); whether the storage holds every
element the tensor reads is checked once all storages are known (`torch_zip.check_tensors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from training_gate.inspector.checkpoints.errors import Reason
from training_gate.inspector.checkpoints.pickle_weights import (
    _DTYPE_GLOBALS,
    _G,
    _NUMPY,
    _SCRIPT,
    _UNREAD,
    MAX_DIMS,
    CounterRecord,
    Device,
    Instance,
    NdArray,
    Profile,
    StateDict,
    Storage,
    Tensor,
    _Global,
    _Pending,
)

if TYPE_CHECKING:
    from training_gate.inspector.checkpoints.pickle_weights import _Reader


def _shape(r: _Reader, value: Any, what: str) -> tuple[int, ...]:
    if type(value) is not tuple or len(value) > MAX_DIMS:
        raise r.fail(Reason.PICKLE_SHAPE, f"a tensor's {what} is not a tuple of at most {MAX_DIMS} integers")
    if not all(type(v) is int and 0 <= v < 1 << 62 for v in value):
        raise r.fail(Reason.TENSOR_OUT_OF_BOUNDS, f"a tensor's {what} {value!r} holds a negative or huge value")
    return value


def _empty_hooks(r: _Reader, hooks: Any) -> None:
    if not (type(hooks) is StateDict and not hooks and not hooks.attributes):
        raise r.fail(Reason.PICKLE_SHAPE, "a tensor with backward hooks (functions) attached")


def _tensor(r: _Reader, args: tuple[Any, ...], version: int) -> Tensor:
    if version == 1:
        if len(args) != 4:
            raise r.fail(Reason.PICKLE_SHAPE, "_rebuild_tensor takes (storage, offset, size, stride)")
        storage, offset, size, stride = args
        requires_grad, hooks, dtype, metadata = False, None, None, None
    elif version == 2:
        if len(args) not in (6, 7):
            raise r.fail(Reason.PICKLE_SHAPE, "_rebuild_tensor_v2 takes 6 or 7 arguments")
        storage, offset, size, stride, requires_grad, hooks = args[:6]
        dtype, metadata = None, args[6] if len(args) == 7 else None
    else:
        if len(args) not in (7, 8):
            raise r.fail(Reason.PICKLE_SHAPE, "_rebuild_tensor_v3 takes 7 or 8 arguments")
        storage, offset, size, stride, requires_grad, hooks, dtype_global = args[:7]
        metadata = args[7] if len(args) == 8 else None
        if not (isinstance(dtype_global, _Global) and dtype_global in _DTYPE_GLOBALS.values()):
            raise r.fail(Reason.PICKLE_SHAPE, "_rebuild_tensor_v3's dtype is not a torch dtype")
        dtype = dtype_global.value
    if type(storage) is not Storage:
        raise r.fail(Reason.PICKLE_SHAPE, "a tensor rebuilt from something that is not a storage")
    if type(offset) is not int or offset < 0:
        raise r.fail(Reason.TENSOR_OUT_OF_BOUNDS, f"a tensor's storage offset {offset!r} is not a non-negative int")
    size, stride = _shape(r, size, "size"), _shape(r, stride, "stride")
    if len(size) != len(stride):
        raise r.fail(Reason.TENSOR_OUT_OF_BOUNDS, f"a tensor's size {size} and stride {stride} differ in length")
    if type(requires_grad) is not bool:
        raise r.fail(Reason.PICKLE_SHAPE, "a tensor's requires_grad is not a bool")
    if hooks is not None:
        _empty_hooks(r, hooks)
    if metadata not in (None, {}):
        # torch._utils.set_tensor_metadata hands this dict to C (_set_tensor_metadata).
        raise r.fail(Reason.PICKLE_SHAPE, "a tensor with metadata (torch._utils.set_tensor_metadata)")
    if dtype is None:
        if storage.dtype.kind == "quantized":
            raise r.fail(Reason.UNSUPPORTED, "a tensor on a quantized storage (quantized checkpoints are not read)")
        dtype = storage.dtype
    elif storage.dtype is not dtype and storage.dtype.name != "uint8":
        raise r.fail(Reason.STORAGE_MISMATCH, f"a {dtype.name} tensor on a {storage.dtype.name} storage")
    return Tensor(storage, offset, size, stride, dtype, requires_grad)


def _parameter(r: _Reader, args: tuple[Any, ...], with_state: bool) -> Tensor:
    expected = 4 if with_state else 3
    if len(args) != expected:
        raise r.fail(Reason.PICKLE_SHAPE, f"a parameter rebuild takes {expected} arguments")
    data, requires_grad, hooks = args[:3]
    if type(data) is not Tensor or type(requires_grad) is not bool:
        raise r.fail(Reason.PICKLE_SHAPE, "a parameter rebuilt from something that is not a tensor")
    _empty_hooks(r, hooks)
    if with_state and args[3] not in ({}, None, ({}, {}), ({}, None), (None, {})):
        raise r.fail(Reason.PICKLE_SHAPE, "a parameter with Python attributes (set on load by setattr)")
    return Tensor(data.storage, data.offset, data.size, data.stride, data.dtype, requires_grad, parameter=True)


def _from_type(r: _Reader, args: tuple[Any, ...]) -> Any:
    # Tensor.__reduce_ex__ of a tensor with Python attributes: (func, type, args, state). Only a plain
    # Tensor or Parameter with no attributes is data; any state is set on the tensor by setattr.
    if len(args) != 4 or type(args[2]) is not tuple:
        raise r.fail(Reason.PICKLE_SHAPE, "_rebuild_from_type_v2 takes (func, type, args, state)")
    func, new_type, inner, state = args
    if new_type not in (_G["torch.Tensor"], _G["torch.nn.parameter.Parameter"]):
        raise r.fail(Reason.PICKLE_SHAPE, f"a tensor of subclass {new_type!r}")
    if state not in ({}, None):
        raise r.fail(Reason.PICKLE_SHAPE, "a tensor with Python attributes (set on load by setattr)")
    built = call(r, func, inner)
    if type(built) is not Tensor:
        raise r.fail(Reason.PICKLE_SHAPE, "_rebuild_from_type_v2 of something that is not a tensor")
    return built


def _plain(r: _Reader, value: Any, depth: int = 0) -> bool:
    if depth > 4:
        return False
    if value is None or type(value) in (str, int, float, bool, bytes):
        return True
    return type(value) is tuple and all(_plain(r, v, depth + 1) for v in value)


def _scalar(value: Any) -> bool:
    return value is None or type(value) in (str, int, float, bool)


def call(r: _Reader, func: _Global, args: tuple[Any, ...]) -> Any:
    if func in _UNREAD.values():
        raise r.fail(Reason.UNSUPPORTED, f"{func.name}: a kind of tensor the gate does not read (sparse, quantized...)")
    if func is _G["torch._utils._rebuild_tensor_v2"]:
        return _tensor(r, args, 2)
    if func is _G["torch._utils._rebuild_tensor_v3"]:
        return _tensor(r, args, 3)
    if func is _G["torch._utils._rebuild_tensor"]:
        return _tensor(r, args, 1)
    if func is _G["torch._utils._rebuild_parameter"]:
        return _parameter(r, args, False)
    if func is _G["torch._utils._rebuild_parameter_with_state"]:
        return _parameter(r, args, True)
    if func is _G["torch._tensor._rebuild_from_type_v2"]:
        return _from_type(r, args)
    if func is _G["collections.OrderedDict"]:
        if args != ():
            raise r.fail(Reason.PICKLE_SHAPE, "OrderedDict called with arguments")
        return StateDict()
    if func is _G["collections.Counter"]:
        counter = CounterRecord()
        if args == ():
            return counter
        if len(args) != 1 or type(args[0]) is not dict:
            raise r.fail(Reason.PICKLE_SHAPE, "Counter called with something other than a dict")
        counter.update(args[0])
        return counter
    if func is _G["torch.Size"]:
        if len(args) != 1 or type(args[0]) is not tuple or not all(type(v) is int for v in args[0]):
            raise r.fail(Reason.PICKLE_SHAPE, "torch.Size of something other than a tuple of ints")
        return args[0]
    if func is _G["torch.device"]:
        if not args or len(args) > 2 or type(args[0]) is not str or (len(args) == 2 and type(args[1]) is not int):
            raise r.fail(Reason.PICKLE_SHAPE, "torch.device with unexpected arguments")
        return Device(":".join(str(a) for a in args))
    if func is _G["_codecs.encode"]:
        if len(args) != 2 or type(args[0]) is not str or args[1] not in ("latin1", "latin-1"):
            raise r.fail(Reason.PICKLE_SHAPE, "_codecs.encode with unexpected arguments")
        try:
            return args[0].encode("latin-1")
        except UnicodeEncodeError as exc:
            raise r.fail(Reason.PICKLE_SHAPE, "_codecs.encode of a string outside latin-1") from exc
    if func is _G["builtins.bytearray"]:
        if args == ():
            return b""
        if len(args) == 1 and type(args[0]) is bytes:
            return args[0]
        if len(args) == 2 and type(args[0]) is str and args[1] in ("latin1", "latin-1"):
            return call(r, _G["_codecs.encode"], args)
        raise r.fail(Reason.PICKLE_SHAPE, "bytearray with unexpected arguments")
    if func is _G["builtins.set"]:
        if len(args) != 1 or type(args[0]) is not list or not all(_plain(r, v) for v in args[0]):
            raise r.fail(Reason.PICKLE_SHAPE, "set of something other than a list of plain values")
        return frozenset(args[0])
    if func is _G["builtins.complex"]:
        if not (1 <= len(args) <= 2) or not all(type(v) in (int, float) for v in args):
            raise r.fail(Reason.PICKLE_SHAPE, "complex with unexpected arguments")
        return complex(*args)
    if func in _SCRIPT.values():
        if len(args) != 1 and func is not _SCRIPT["torch.jit._pickle.restore_type_tag"]:
            raise r.fail(Reason.PICKLE_SHAPE, f"{func.name} with unexpected arguments")
        return args[0] if args else None
    if func.value == "scan-class" and not (len(args) == 1 and _scalar(args[0])):
        # Training arguments call a class only as an Enum's lookup by value (IntervalStrategy('epoch')); a
        # dataclass arrives by NEWOBJ and BUILD. Any other call would run a constructor when loaded.
        raise r.fail(Reason.PICKLE_SHAPE, f"{func.name} called with {len(args)} argument(s), not an enum value")
    if func.value in ("scan-class", "script-class"):
        if not all(_plain(r, v) for v in args):
            raise r.fail(Reason.PICKLE_SHAPE, f"{func.name} called with arguments that are not plain values")
        return Instance(func.name, args)
    if r.profile is Profile.RNG and func in _NUMPY.values():
        if func.name.endswith("_reconstruct"):
            return _Pending("array", args)
        if func in (_NUMPY["numpy.dtype"], _NUMPY["numpy.dtypes.UInt32DType"]):
            return _Pending("dtype", args)
    raise r.fail(Reason.PICKLE_SHAPE, f"{func.name} is not called by anything torch.save writes")


def numpy_record(r: _Reader, pending: _Pending) -> Any:
    """numpy's dtype and ndarray states (numpy/core/src/multiarray/descriptor.c, methods.c), as data."""
    if pending.kind == "dtype":
        if len(pending.args) not in (1, 3) or type(pending.args[0]) is not str:
            raise r.fail(Reason.PICKLE_SHAPE, "numpy.dtype with unexpected arguments")
        code = pending.args[0]
        state = pending.state
        order = state[1] if type(state) is tuple and len(state) >= 2 else "|"
        if code not in ("u4", "u1", "i4", "i8", "f8", "f4", "b1") or order not in ("<", "|", "="):
            raise r.fail(Reason.PICKLE_SHAPE, f"a numpy dtype {order}{code} outside what an RNG state holds")
        return ("dtype", code)
    if len(pending.args) != 3 or type(pending.state) is not tuple or len(pending.state) != 5:
        raise r.fail(Reason.PICKLE_SHAPE, "a numpy array whose state is not (version, shape, dtype, order, data)")
    _version, shape, dtype, _fortran, data = pending.state
    if type(shape) is not tuple or not all(type(v) is int and 0 <= v < 1 << 40 for v in shape):
        raise r.fail(Reason.PICKLE_SHAPE, "a numpy array shape that is not non-negative ints")
    if type(dtype) is not tuple or dtype[:1] != ("dtype",) or type(data) is not bytes:
        raise r.fail(Reason.PICKLE_SHAPE, "a numpy array of an object dtype or without raw data")
    count = 1
    for extent in shape:
        count *= extent
    itemsize = int(dtype[1][1:])
    if count * itemsize != len(data):
        raise r.fail(Reason.STORAGE_MISMATCH, f"a numpy array of shape {shape} holds {len(data)} bytes")
    return NdArray(dtype[1], shape, data)


__all__ = ["Instance", "call", "numpy_record"]
