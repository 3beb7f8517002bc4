"""The pickle reader: joblib's unpickler (pure Python, so every opcode is ours to decide) with each opcode
that could run code replaced by the gate's construction.

GLOBAL and STACK_GLOBAL resolve through the allowlist table; REDUCE, NEWOBJ and BUILD go to
`Construction` (by identity of the object on the stack); APPEND, SETITEM and ADDITEMS change only plain
containers not yet checked as part of a state; every length the file claims is checked against what is
left of it before anything is allocated. Protocols 0 and 1 (INST, OBJ) are refused.
"""

from __future__ import annotations

import pickle
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from joblib import numpy_pickle

from training_gate.inspector.restricted.construct import Construction
from training_gate.inspector.restricted.errors import CapExceeded, RefusedCall
from training_gate.inspector.restricted.numpy_builders import is_wrapper

_LENGTH_OPCODES = {
    pickle.BINSTRING[0]: ("BINSTRING", "<i", 4),
    pickle.BINBYTES[0]: ("BINBYTES", "<I", 4),
    pickle.BINUNICODE[0]: ("BINUNICODE", "<I", 4),
    pickle.BINUNICODE8[0]: ("BINUNICODE8", "<Q", 8),
    pickle.BINBYTES8[0]: ("BINBYTES8", "<Q", 8),
    pickle.BYTEARRAY8[0]: ("BYTEARRAY8", "<Q", 8),
    pickle.LONG4[0]: ("LONG4", "<i", 4),
}
_DICTS = (dict, OrderedDict)


def _read_array_in_place(wrapper: Any, handle: Any, native: bool) -> np.ndarray:
    """joblib's array body read straight into the array with `readinto`: one copy of the bytes,
    where joblib's own reader copies each 256 KiB piece twice. Same layout rules as joblib's
    `read_array` (alignment padding, C or Fortran order, byte order); the tests compare the two."""
    count = int(np.prod(wrapper.shape, dtype=np.int64)) if len(wrapper.shape) else 1
    if wrapper.safe_get_numpy_array_alignment_bytes() is not None:
        padding = handle.read(1)
        if padding and padding[0]:
            handle.read(padding[0])
    array = np.empty(count, dtype=wrapper.dtype)
    target = memoryview(array).cast("B")
    filled = 0
    while filled < len(target):
        if hasattr(handle, "readinto"):
            got = handle.readinto(target[filled:])
        else:
            piece = handle.read(min(len(target) - filled, 1 << 18))
            target[filled : filled + len(piece)] = piece
            got = len(piece)
        if not got:
            raise pickle.UnpicklingError(f"EOF: array data ends after {filled} of {len(target)} bytes")
        filled += got
    array = array.reshape(wrapper.shape[::-1]).transpose() if wrapper.order == "F" else array.reshape(wrapper.shape)
    return numpy_pickle._ensure_native_byte_order(array) if native else array


def _set_item(target: Any, key: Any, value: Any) -> None:
    # An OrderedDict keeps its order in its own structure; any other dict subclass gets dict's own
    # item assignment, never a method of its class.
    if type(target) is OrderedDict:
        target[key] = value
    else:
        dict.__setitem__(target, key, value)


class GateUnpickler(numpy_pickle.NumpyUnpickler):
    """joblib's unpickler, every code-running opcode decided by the gate's construction."""

    dispatch = numpy_pickle.NumpyUnpickler.dispatch.copy()
    remaining: Callable[[], int] = staticmethod(lambda: 1 << 62)  # type: ignore[assignment]

    @classmethod
    def create(cls, name: str, stream: Any, build: Construction, remaining: Callable[[], int]) -> GateUnpickler:
        unpickler = cls(name, stream, True)
        unpickler.name = name
        unpickler.build = build
        unpickler.remaining = remaining  # type: ignore[method-assign]
        return unpickler

    def nested(self, stream: Any) -> GateUnpickler:
        """A fresh unpickler (its own stack and memo) for the nested stream of an object array, same
        construction."""
        return self.create(self.name, stream, self.build, self.remaining)

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:
            import _compat_pickle

            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if type(module) is not str or type(name) is not str:
            raise pickle.UnpicklingError("a global named by something other than text")
        return self.build.table.resolve(module, name)

    # -- lengths -----------------------------------------------------------------------------------

    def _left(self) -> int:
        frame = getattr(self._unframer, "current_frame", None)
        if frame is not None:
            with frame.getbuffer() as view:
                in_frame = view.nbytes - frame.tell()
            if in_frame:
                return in_frame
        return self.remaining()

    def _claimed(self, opcode: int) -> int:
        name, fmt, size = _LENGTH_OPCODES[opcode]
        (length,) = struct.unpack(fmt, self.read(size))
        if length < 0:
            raise pickle.UnpicklingError(f"{name} has a negative length")
        left = self._left()
        if length > left:
            raise CapExceeded(
                "max_member_bytes", f"{name} claims {length} bytes, more than the {left} left in the model file"
            )
        return length

    def load_binstring(self) -> None:
        self.append(self._decode_string(self.read(self._claimed(pickle.BINSTRING[0]))))

    def load_binbytes(self) -> None:
        self.append(self.read(self._claimed(pickle.BINBYTES[0])))

    def load_binbytes8(self) -> None:
        self.append(self.read(self._claimed(pickle.BINBYTES8[0])))

    def load_binunicode(self) -> None:
        self.append(str(self.read(self._claimed(pickle.BINUNICODE[0])), "utf-8", "surrogatepass"))

    def load_binunicode8(self) -> None:
        self.append(str(self.read(self._claimed(pickle.BINUNICODE8[0])), "utf-8", "surrogatepass"))

    def load_bytearray8(self) -> None:
        buffer = bytearray(self._claimed(pickle.BYTEARRAY8[0]))
        self.readinto(buffer)
        self.append(buffer)

    def load_long4(self) -> None:
        self.append(pickle.decode_long(self.read(self._claimed(pickle.LONG4[0]))))

    def load_frame(self) -> None:
        (size,) = struct.unpack("<Q", self.read(8))
        left = self.remaining()
        if size > left:
            raise CapExceeded("max_member_bytes", f"FRAME claims {size} bytes, more than the {left} left")
        self._unframer.load_frame(size)

    def load_stop(self) -> None:
        # CPython's C unpickler, reading a file it can peek into (any file open()ed for reading), resumes the
        # next load right after STOP, inside the frame; this reader would resume after the frame. Bytes left
        # in the last frame would be read as a pickle by the one and never seen by the other.
        frame = getattr(self._unframer, "current_frame", None)
        if frame is not None:
            with frame.getbuffer() as view:
                left = view.nbytes - frame.tell()
            if left:
                raise pickle.UnpicklingError(f"STOP leaves {left} bytes in its frame, where another pickle may hide")
        super().load_stop()

    for _opcode, _loader in (
        (pickle.STOP, load_stop),
        (pickle.BINSTRING, load_binstring),
        (pickle.BINBYTES, load_binbytes),
        (pickle.BINBYTES8, load_binbytes8),
        (pickle.BINUNICODE, load_binunicode),
        (pickle.BINUNICODE8, load_binunicode8),
        (pickle.BYTEARRAY8, load_bytearray8),
        (pickle.LONG4, load_long4),
        (pickle.FRAME, load_frame),
    ):
        dispatch[_opcode[0]] = _loader

    # -- calls, instances, states ---------------------------------------------------------------------

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        self.stack[-1] = self.build.call(func, args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack[-1]
        if args != ():
            raise RefusedCall(f"NEWOBJ builds {self.build.name_of(cls)} only with no arguments; nothing was run")
        self.stack[-1] = self.build.new(cls)

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack[-1]
        if args != () or kwargs != {}:
            raise RefusedCall(f"NEWOBJ_EX builds {self.build.name_of(cls)} only with no arguments; nothing was run")
        self.stack[-1] = self.build.new(cls)

    def _refuse_old_call(self) -> None:
        raise RefusedCall("protocol 0/1 INST and OBJ calls are not accepted; re-save with a current protocol")

    def load_build(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        if isinstance(target, numpy_pickle.NDArrayWrapper):
            raise RefusedCall("joblib < 0.10 array wrappers are not accepted")
        built = self.build.build(target, state)
        self.stack[-1] = self._read_wrapped_array(built) if is_wrapper(built) else built

    # -- filling containers -----------------------------------------------------------------------------

    def _fillable(self, target: Any, kinds: tuple[type, ...], opcode: str) -> None:
        if self.build.sealed(target):
            raise RefusedCall(
                f"{opcode} on a {type(target).__name__} already checked as part of a state: it cannot change "
                "after its owner was validated; nothing was run"
            )
        if type(target) in kinds:
            return
        if isinstance(target, dict) and self.build.awaiting(target):
            return  # a dict subclass (Bunch) gets its items before its state, which checks them
        raise RefusedCall(
            f"{opcode} on {self.build.name_of(target)}: only a plain container takes items; nothing was run"
        )

    def load_append(self) -> None:
        value = self.stack.pop()
        self._fillable(self.stack[-1], (list,), "APPEND")
        self.stack[-1].append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._fillable(self.stack[-1], (list,), "APPENDS")
        self.stack[-1].extend(items)

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._fillable(self.stack[-1], _DICTS, "SETITEM")
        _set_item(self.stack[-1], key, value)

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        self._fillable(target, _DICTS, "SETITEMS")
        for i in range(0, len(items), 2):
            _set_item(target, items[i], items[i + 1])

    def load_additems(self) -> None:
        items = self.pop_mark()
        self._fillable(self.stack[-1], (set,), "ADDITEMS")
        self.stack[-1].update(items)

    for _opcode, _loader in (
        (pickle.REDUCE, load_reduce),
        (pickle.NEWOBJ, load_newobj),
        (pickle.NEWOBJ_EX, load_newobj_ex),
        (pickle.INST, _refuse_old_call),
        (pickle.OBJ, _refuse_old_call),
        (pickle.BUILD, load_build),
        (pickle.APPEND, load_append),
        (pickle.APPENDS, load_appends),
        (pickle.SETITEM, load_setitem),
        (pickle.SETITEMS, load_setitems),
        (pickle.ADDITEMS, load_additems),
    ):
        dispatch[_opcode[0]] = _loader

    # -- joblib's array bodies ------------------------------------------------------------------------

    def _read_wrapped_array(self, wrapper: Any) -> np.ndarray:
        if wrapper.dtype.hasobject:
            # joblib reads these with the C unpickler, which knows none of the rules here.
            array = self.nested(self.file_handle).load()
            if type(array) is not np.ndarray or array.shape != wrapper.shape:
                raise pickle.UnpicklingError("an object array header followed by something else")
            return array
        count = int(np.prod(wrapper.shape, dtype=object)) if wrapper.shape else 1
        claimed = count * wrapper.dtype.itemsize
        left = self.remaining()
        if claimed > left:
            raise CapExceeded(
                "max_member_bytes",
                f"a joblib array header claims {claimed} bytes ({wrapper.shape} {wrapper.dtype}), more than the "
                f"{left} left in the model file",
            )
        array = _read_array_in_place(wrapper, self.file_handle, self.ensure_native_byte_order)
        return np.asmatrix(array) if wrapper.subclass is np.matrix else array
