"""Load a joblib/pickle model without running code the file chooses.

Unpickling resolves every global through `find_class`; ours admits only exact, listed classes and
functions (scikit-learn estimators and their internals, numpy, scipy.sparse). Anything else is
refused before it is imported, so a payload never runs. Allowed classes still run their own
`__setstate__` on the data: this narrows the risk, it does not remove it, which is why the function
that calls this runs least-privileged.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import os
import pickle
import re
import struct
import threading
import types
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import sklearn
from joblib import numpy_pickle, numpy_pickle_utils
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.utils import all_estimators

from training_gate.archive import RATIO_FLOOR
from training_gate.inspector.structures import (
    FUNCTION_SLOTS,
    LOSS_NAMES,
    NO_INDEXED_STATE,
    VALIDATORS,
    qualified_name,
    validate_model,
)

# Classes estimators pickle alongside themselves, by exact name (an audit of the modules they come
# from: builders, pruners, heaps and PyFuncDistance, which calls back into Python, are left out).
# Each one whose state C code indexes has a validator in `structures`; a test keeps the two in step.
_INTERNAL_CLASSES = frozenset(
    {
        "sklearn.tree._tree.Tree",
        *(f"sklearn._loss.loss.{name}" for name in LOSS_NAMES),
        *(
            f"sklearn._loss.link.{name}"
            for name in (
                "HalfLogitLink",
                "IdentityLink",
                "Interval",
                "LogLink",
                "LogitLink",
                "MultinomialLogit",
            )
        ),
        *(name for name in NO_INDEXED_STATE),
        *VALIDATORS,
        "sklearn.utils._bunch.Bunch",
        # Benign models that need them (exact names): MLP, search, calibration, Gaussian processes.
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.metrics._scorer._PassthroughScorer",
        *(
            f"sklearn.model_selection._split.{name}"
            for name in (
                "KFold",
                "StratifiedKFold",
                "GroupKFold",
                "StratifiedGroupKFold",
                "ShuffleSplit",
                "StratifiedShuffleSplit",
                "TimeSeriesSplit",
                "RepeatedKFold",
                "RepeatedStratifiedKFold",
                "LeaveOneOut",
                "PredefinedSplit",
            )
        ),
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
        *(
            f"sklearn.gaussian_process.kernels.{name}"
            for name in (
                "RBF",
                "ConstantKernel",
                "WhiteKernel",
                "Matern",
                "RationalQuadratic",
                "ExpSineSquared",
                "DotProduct",
                "Product",
                "Sum",
                "Exponentiation",
                "CompoundKernel",
            )
        ),
        "numpy.ma.core.MaskedArray",
        "numpy.ma.MaskedArray",
        # Birch's clustering-feature tree: plain Python objects whose arrays only numpy code reads
        # (predict and transform use subcluster_centers_ through pairwise distances).
        "sklearn.cluster._birch._CFNode",
        "sklearn.cluster._birch._CFSubcluster",
        # BisectingKMeans' cluster tree: its centers reach Cython, validated with the estimator.
        "sklearn.cluster._bisect_k_means._BisectingTree",
        # One-vs-rest and output codes keep one for a label seen alone in training: it repeats y.
        "sklearn.multiclass._ConstantPredictor",
        # Scorers kept by searches and threshold tuning (their metric: structures.FUNCTION_SLOTS) and the
        # metadata-routing records estimators keep: plain Python objects, called only by fit and score.
        "sklearn.metrics._scorer._Scorer",
        "sklearn.metrics._scorer._CurveScorer",
        "sklearn.utils._metadata_requests.MetadataRequest",
        "sklearn.utils._metadata_requests.MethodMetadataRequest",
        # HistGradientBoosting's categorical preprocessing: partial(check_array, ...), validated.
        "functools.partial",
    }
)

# Functions a model keeps as a parameter or as the routine fit chose (SelectKBest's score_func, the
# pooling function of FeatureAgglomeration): referenced, never called while loading (their call rule
# refuses every call), and held only in the attributes `structures.FUNCTION_SLOTS` names.
_PARAMETER_FUNCTIONS = frozenset(FUNCTION_SLOTS)

# Types that may be referenced (an estimator's dtype parameter) but never called.
_REFERENCED_ONLY = frozenset(
    f"numpy.{name}"
    for name in (
        "float64",
        "float32",
        "float16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint64",
        "uint32",
        "uint16",
        "uint8",
        "bool_",
        "complex128",
        "complex64",
        "str_",
        "bytes_",
        "object_",
    )
)

# Reconstructors, by exact name, under both numpy 1.x (numpy.core) and 2.x (numpy._core) spellings.
# Every one of them is only ever called by REDUCE, and each call is checked by its rule in CALL_RULES.
_FIXED_GLOBALS = frozenset(
    {
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        "numpy.ma.core._mareconstruct",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        *(f"sklearn._loss._loss.__pyx_unpickle_Cy{name}" for name in LOSS_NAMES),
        "sklearn.metrics._dist_metrics.newObj",
        "sklearn.neighbors._kd_tree.newObj",
        "sklearn.neighbors._ball_tree.newObj",
        "builtins.slice",
        "builtins.complex",
        "__builtin__.slice",  # protocol 2 spellings
        "__builtin__.complex",
        "collections.OrderedDict",
        "_codecs.encode",
        "__builtin__.bytes",  # protocol 2 names builtins so (Python 2 spelling)
        "builtins.bytes",
    }
)


class LoadCaps(Protocol):
    """The caps a load honours (InspectConfig has them)."""

    max_member_bytes: int
    max_ratio: int


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, name: str):
        super().__init__(f"refused global {name!r}: not on the allowlist, nothing from the file was run")
        self.name = name


_ALLOWLIST_LOCK = threading.Lock()


@cache
def default_allowlist() -> frozenset[str]:
    # Building it imports every estimator module; two threads doing that at once can see a
    # half-imported module, so the first build is serialised.
    with _ALLOWLIST_LOCK:
        return _build_allowlist()


def _build_allowlist() -> frozenset[str]:
    names = set(_FIXED_GLOBALS) | _INTERNAL_CLASSES | _REFERENCED_ONLY | _PARAMETER_FUNCTIONS
    for _, estimator in all_estimators():
        names.add(f"{estimator.__module__}.{estimator.__qualname__}")
    return frozenset(name for name in names if _resolves(name))


def _resolves(name: str) -> bool:
    """Names of another numpy or scikit-learn version are dropped, not guessed at."""
    module, _, attr = name.rpartition(".")
    module = {"__builtin__": "builtins"}.get(module, module)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core under numpy 2
            return hasattr(importlib.import_module(module), attr)
    except ImportError:
        return False


def _read_array_in_place(wrapper: numpy_pickle.NumpyArrayWrapper, handle: Any, native: bool) -> np.ndarray:
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
        got = handle.readinto(target[filled:])
        if not got:
            raise pickle.UnpicklingError(f"EOF: array data ends after {filled} of {len(target)} bytes")
        filled += got
    array = array.reshape(wrapper.shape[::-1]).transpose() if wrapper.order == "F" else array.reshape(wrapper.shape)
    return numpy_pickle._ensure_native_byte_order(array) if native else array


class CapExceeded(pickle.UnpicklingError):
    """A length claimed inside the file is more than the file (or the cap) can hold."""

    def __init__(self, cap: str, detail: str):
        super().__init__(f"{detail} ({cap})")
        self.cap = cap


class RefusedCall(pickle.UnpicklingError):
    """REDUCE/NEWOBJ/BUILD asked for something the allowlist admits only as a reference, or with
    arguments its rule refuses."""


# -- call rules: which allowlisted callables REDUCE may call, and with what -----------------------------

_DTYPE_CODE = re.compile(r"^[a-zA-Z?][0-9]{0,5}$")
_BIT_GENERATORS = frozenset({"MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"})
_MAX_TREE_FEATURES = 1 << 31
_MAX_OUTPUTS = 1 << 20


def _shape(value: Any) -> bool:
    return isinstance(value, tuple) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)


def _rule_dtype(args: tuple) -> str | None:
    ok = (
        len(args) == 3
        and isinstance(args[0], str)
        and _DTYPE_CODE.match(args[0])
        and all(isinstance(a, bool) for a in args[1:])
    )
    return None if ok else "numpy.dtype takes a type code and two flags"


def _rule_scalar(args: tuple) -> str | None:
    if len(args) == 2 and isinstance(args[0], np.dtype) and not args[0].hasobject:
        if isinstance(args[1], bytes) and len(args[1]) == args[0].itemsize:
            return None
    return "numpy scalar takes a non-object dtype and exactly its item size in bytes"


def _rule_reconstruct(args: tuple) -> str | None:
    ok = len(args) == 3 and args[0] in (np.ndarray, np.ma.MaskedArray) and args[1] == (0,) and args[2] in (b"b", "b")
    return None if ok else "_reconstruct takes (ndarray, (0,), b'b')"


def _rule_mareconstruct(args: tuple) -> str | None:
    ok = (
        len(args) == 4
        and args[0] is np.ma.MaskedArray
        and args[1] is np.ndarray
        and _shape(args[2])
        and int(np.prod(args[2])) <= 1
        and args[3] in (b"b", "b")
    )
    return None if ok else "_mareconstruct takes (MaskedArray, ndarray, (0,), b'b')"


def _rule_frombuffer(args: tuple) -> str | None:
    if len(args) == 4 and isinstance(args[0], (bytes, bytearray)) and isinstance(args[1], np.dtype):
        if not args[1].hasobject and _shape(args[2]) and args[3] in ("C", "F"):
            if len(args[0]) == int(np.prod(args[2], dtype=np.int64)) * args[1].itemsize:
                return None
    return "_frombuffer takes a buffer exactly the size its shape and dtype claim"


def _rule_bit_generator(args: tuple) -> str | None:
    """A bit generator's name, class or (already built and checked by numpy) instance, and the
    constructor numpy's own pickling passes along."""

    def fits(value: Any) -> bool:
        if isinstance(value, str):
            return value in _BIT_GENERATORS
        if isinstance(value, type):
            return value.__name__ in _BIT_GENERATORS
        if type(value).__name__ in _BIT_GENERATORS:
            return True
        return getattr(value, "__module__", "") == "numpy.random._pickle"

    ok = len(args) <= 2 and all(fits(a) for a in args)
    return None if ok else "a numpy random constructor takes a bit generator name"


def _rule_empty_bytes(args: tuple) -> str | None:
    return None if args == () else "bytes is rebuilt empty only (protocol 2 writes b'' so)"


def _rule_tree(args: tuple) -> str | None:
    if len(args) == 3 and isinstance(args[0], int) and isinstance(args[2], int) and isinstance(args[1], np.ndarray):
        classes = args[1]
        if 0 < args[0] <= _MAX_TREE_FEATURES and 0 < args[2] <= _MAX_OUTPUTS and classes.shape == (args[2],):
            if classes.dtype.kind in "iu" and (classes >= 1).all() and classes.max() <= 1 << 24:
                return None
    return "Tree takes (n_features > 0, one class count >= 1 per output, n_outputs > 0)"


def _rule_new_object(args: tuple) -> str | None:
    ok = len(args) == 1 and isinstance(args[0], type) and qualified_name(args[0]) in VALIDATORS
    return None if ok else "newObj builds only validated classes"


def _rule_cython_unpickle(args: tuple) -> str | None:
    ok = len(args) == 3 and isinstance(args[0], type) and qualified_name(args[0]) in NO_INDEXED_STATE
    return None if ok else "a Cython unpickle helper builds only its own allowlisted class"


def _rule_scalar_parameters(args: tuple) -> str | None:
    """A Cython loss rebuilt by calling its class: no argument, or its one scalar parameter (Tweedie's
    power, the pinball quantile, a Huber delta, SGD's hinge threshold or epsilon)."""
    ok = len(args) <= 1 and all(isinstance(a, float) and np.isfinite(a) for a in args)
    return None if ok else "a Cython loss takes no argument or one finite float"


def _rule_parameter_function(args: tuple) -> str | None:
    return "a function kept as a model's parameter is referenced, never called while loading"


def _rule_partial(args: tuple) -> str | None:
    from sklearn.utils.validation import check_array

    # partial.__reduce__ passes the function alone; its arguments come with BUILD (validated after load).
    return None if len(args) == 1 and args[0] is check_array else "partial wraps check_array only"


def _rule_slice(args: tuple) -> str | None:
    ok = len(args) <= 3 and all(a is None or (isinstance(a, int) and not isinstance(a, bool)) for a in args)
    return None if ok else "slice takes integers or None"


def _rule_complex(args: tuple) -> str | None:
    return None if len(args) <= 2 and all(isinstance(a, float) for a in args) else "complex takes two floats"


def _rule_ordered_dict(args: tuple) -> str | None:
    return None if args == () else "OrderedDict is rebuilt empty, then filled"


def _rule_codecs_encode(args: tuple) -> str | None:
    # Protocol 2 writes bytes as _codecs.encode(text, "latin1"); any other codec is not a bytes literal.
    return None if len(args) == 2 and isinstance(args[0], str) and args[1] == "latin1" else "encode only latin1"


CALL_RULES: dict[str, Callable[[tuple], str | None]] = {
    "numpy.dtype": _rule_dtype,
    "numpy.core.multiarray.scalar": _rule_scalar,
    "numpy._core.multiarray.scalar": _rule_scalar,
    "numpy.core.multiarray._reconstruct": _rule_reconstruct,
    "numpy._core.multiarray._reconstruct": _rule_reconstruct,
    "numpy.ma.core._mareconstruct": _rule_mareconstruct,
    "numpy.core.numeric._frombuffer": _rule_frombuffer,
    "numpy._core.numeric._frombuffer": _rule_frombuffer,
    "numpy.random._pickle.__bit_generator_ctor": _rule_bit_generator,
    "numpy.random._pickle.__generator_ctor": _rule_bit_generator,
    "numpy.random._pickle.__randomstate_ctor": _rule_bit_generator,
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence": _rule_cython_unpickle,
    **{name: _rule_cython_unpickle for name in _FIXED_GLOBALS if name.startswith("sklearn._loss._loss.__pyx")},
    # Cython losses whose __reduce__ calls their class (scikit-learn >= 1.5 builds them so).
    **{
        name: _rule_scalar_parameters
        for name in NO_INDEXED_STATE
        if name.startswith(("sklearn._loss._loss.Cy", "sklearn.linear_model._sgd_fast."))
    },
    **dict.fromkeys(_PARAMETER_FUNCTIONS, _rule_parameter_function),
    "functools.partial": _rule_partial,
    "sklearn.tree._tree.Tree": _rule_tree,
    "sklearn.metrics._dist_metrics.newObj": _rule_new_object,
    "sklearn.neighbors._kd_tree.newObj": _rule_new_object,
    "sklearn.neighbors._ball_tree.newObj": _rule_new_object,
    "builtins.slice": _rule_slice,
    "builtins.complex": _rule_complex,
    "__builtin__.slice": _rule_slice,
    "__builtin__.complex": _rule_complex,
    "collections.OrderedDict": _rule_ordered_dict,
    "_codecs.encode": _rule_codecs_encode,
    "__builtin__.bytes": _rule_empty_bytes,
    "builtins.bytes": _rule_empty_bytes,
}


# -- the unpickler --------------------------------------------------------------------------------------

_LENGTH_OPCODES = {
    pickle.BINSTRING[0]: ("BINSTRING", "<i", 4),
    pickle.BINBYTES[0]: ("BINBYTES", "<I", 4),
    pickle.BINUNICODE[0]: ("BINUNICODE", "<I", 4),
    pickle.BINUNICODE8[0]: ("BINUNICODE8", "<Q", 8),
    pickle.BINBYTES8[0]: ("BINBYTES8", "<Q", 8),
    pickle.BYTEARRAY8[0]: ("BYTEARRAY8", "<Q", 8),
    pickle.LONG4[0]: ("LONG4", "<i", 4),
}


class _AllowlistUnpickler(numpy_pickle.NumpyUnpickler):
    """joblib's unpickler, restricted: globals by exact name, calls by rule, BUILD only on instances
    and never shadowing the class, every claimed length checked before it is allocated."""

    allowed: frozenset[str] = frozenset()
    dispatch = numpy_pickle.NumpyUnpickler.dispatch.copy()
    remaining: Callable[[], int] = staticmethod(lambda: 1 << 62)  # type: ignore[assignment]

    @classmethod
    def create(
        cls, name: str, stream: Any, allowed: frozenset[str], remaining: Callable[[], int]
    ) -> _AllowlistUnpickler:
        unpickler = cls(name, stream, True)
        unpickler.name = name
        unpickler.allowed = allowed
        unpickler.remaining = remaining  # type: ignore[method-assign]
        unpickler._names = {}
        return unpickler

    def nested(self, stream: Any) -> _AllowlistUnpickler:
        """A fresh unpickler (its own stack) for the nested stream of an object array, same rules."""
        return self.create(self.name, stream, self.allowed, self.remaining)

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified not in self.allowed:
            raise RefusedGlobal(qualified)
        found = super().find_class(module, name)
        self._names[id(found)] = qualified
        return found

    def _name(self, obj: Any) -> str:
        return self._names.get(id(obj)) or getattr(obj, "__qualname__", type(obj).__name__)

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

    for _opcode, _loader in (
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

    # -- calls -------------------------------------------------------------------------------------

    def load_reduce(self) -> None:
        args, func = self.stack[-1], self.stack[-2]
        name = self._name(func)
        rule = CALL_RULES.get(name)
        if rule is None:
            raise RefusedCall(f"{name} may be referenced but not called by REDUCE; nothing was run")
        if not isinstance(args, tuple):
            raise RefusedCall(f"REDUCE on {name} without an argument tuple")
        problem = rule(args)
        if problem:
            raise RefusedCall(f"refused call {name}{_short(args)}: {problem}")
        pickle._Unpickler.load_reduce(self)  # type: ignore[attr-defined]

    def load_newobj(self) -> None:
        args, cls = self.stack[-1], self.stack[-2]
        if not isinstance(cls, type) or args != () or issubclass(cls, np.ndarray):
            raise RefusedCall(f"NEWOBJ builds {self._name(cls)} only with no arguments; nothing was run")
        pickle._Unpickler.load_newobj(self)  # type: ignore[attr-defined]

    def load_newobj_ex(self) -> None:
        kwargs, args, cls = self.stack[-1], self.stack[-2], self.stack[-3]
        if not isinstance(cls, type) or args != () or kwargs != {} or issubclass(cls, np.ndarray):
            raise RefusedCall(f"NEWOBJ_EX builds {self._name(cls)} only with no arguments; nothing was run")
        pickle._Unpickler.load_newobj_ex(self)  # type: ignore[attr-defined]

    def _refuse_old_call(self) -> None:
        raise RefusedCall("protocol 0/1 INST and OBJ calls are not accepted; re-save with a current protocol")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.INST[0]] = _refuse_old_call
    dispatch[pickle.OBJ[0]] = _refuse_old_call

    # -- BUILD ---------------------------------------------------------------------------------------

    def _check_build(self, target: Any, state: Any) -> None:
        if isinstance(target, type) or (callable(target) and not hasattr(target, "__dict__")):
            raise RefusedCall(f"BUILD on the class {self._name(target)} refused: it would change every later model")
        if not hasattr(target, "__dict__") or isinstance(target, numpy_pickle.NumpyArrayWrapper):
            return
        states = state if isinstance(state, tuple) and len(state) == 2 else (state,)
        cls = type(target)
        for part in states:
            if not isinstance(part, dict):
                continue
            for key in part:
                if not isinstance(key, str):
                    raise RefusedCall(f"BUILD on {cls.__name__} with a non-string attribute name")
                # An instance attribute named like a method, property or other descriptor replaces it
                # for this object (predict_proba = None): what the gate calls would not be the class's
                # code. A class attribute that is a plain constant is a default the instance may
                # override (Lars.positive = False), as __init__ itself does.
                if key.startswith("__") or not _plain_default(cls, key):
                    raise RefusedCall(f"BUILD on {cls.__name__} sets {key!r}, which shadows its class's attribute")

    def load_build(self) -> None:
        """Plain numeric arrays are read in place; object arrays through this same unpickler."""
        self._check_build(self.stack[-2], self.stack[-1])
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]  # joblib's base is the Python unpickler
        wrapper = self.stack[-1]
        if isinstance(wrapper, numpy_pickle.NDArrayWrapper):
            raise RefusedCall("joblib < 0.10 array wrappers are not accepted")
        if not isinstance(wrapper, numpy_pickle.NumpyArrayWrapper):
            return
        self.stack.pop()
        self.stack.append(self._read_wrapped_array(wrapper))

    dispatch[pickle.BUILD[0]] = load_build

    def _read_wrapped_array(self, wrapper: numpy_pickle.NumpyArrayWrapper) -> np.ndarray:
        if not _shape(getattr(wrapper, "shape", None)) or not isinstance(getattr(wrapper, "dtype", None), np.dtype):
            raise pickle.UnpicklingError("a joblib array header without a valid shape and dtype")
        if wrapper.order not in ("C", "F") or wrapper.subclass not in (np.ndarray, np.ma.MaskedArray, np.matrix):
            raise pickle.UnpicklingError("a joblib array header with an unknown order or array class")
        if wrapper.dtype.hasobject:
            # joblib reads these with the C unpickler, which knows none of the rules here.
            array = self.nested(self.file_handle).load()
            if not isinstance(array, np.ndarray):
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
        if hasattr(self.file_handle, "readinto") and wrapper.subclass is np.ndarray:
            return _read_array_in_place(wrapper, self.file_handle, self.ensure_native_byte_order)
        return wrapper.read(self, self.ensure_native_byte_order)


_PLAIN_DEFAULTS = (bool, int, float, str, bytes, type(None))


def _plain_default(cls: type, key: str) -> bool:
    """Whether an instance may set `key`: the class has no such attribute, or it is a plain constant.
    Looked up statically, so neither a descriptor nor a metaclass runs."""
    try:
        found = inspect.getattr_static(cls, key)
    except AttributeError:
        return True
    return type(found) in _PLAIN_DEFAULTS


_NOT_INSTANCES = (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType, types.MethodType)


def _short(args: tuple) -> str:
    text = repr(args)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class LoadedModel:
    model: Any
    sklearn_version: str
    runtime_sklearn_version: str
    version_warnings: list[str] = field(default_factory=list)

    @property
    def version_skew(self) -> bool:
        return self.sklearn_version != self.runtime_sklearn_version


class UntrustedTypes(pickle.UnpicklingError):
    def __init__(self, names: list[str]):
        super().__init__(f"refused untrusted types in the skops file: {', '.join(names)}; nothing was loaded")
        self.names = names


# Builtin node types skops writes for plain data.
_SKOPS_BUILTINS = frozenset(
    f"builtins.{name}" for name in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType", "bytes", "set")
)


def _skops_types(schema: Any) -> set[str]:
    """Every module.class the skops schema names, walked without recursion (a deep schema is data)."""
    found: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
                found.add(f"{node['__module__']}.{node['__class__']}")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def _load_skops(data: bytes, allowed: frozenset[str], caps: LoadCaps | None) -> Any:
    import skops.io

    max_bytes = caps.max_member_bytes if caps else 2 << 30
    max_ratio = caps.max_ratio if caps else 1_100
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for entry in archive.infolist():
            total += entry.file_size
            if total > max_bytes:
                raise CapExceeded("max_member_bytes", f"the skops zip inflates past {max_bytes} bytes")
            if entry.file_size > RATIO_FLOOR and entry.file_size > max_ratio * max(entry.compress_size, 1):
                raise CapExceeded("max_ratio", f"skops entry {entry.filename!r} inflates more than {max_ratio}:1")
        schema = json.loads(archive.read("schema.json"))
    # skops trusts some types by default; the gate trusts only its own allowlist, and checks what skops
    # leaves untrusted (Tree) the same way: through the validators after loading.
    named = _skops_types(schema)
    untrusted = sorted(name for name in named if name not in allowed and name not in _SKOPS_BUILTINS)
    untrusted += [name for name in skops.io.get_untrusted_types(data=data) if name not in allowed]
    if untrusted:
        raise UntrustedTypes(sorted(set(untrusted)))
    return skops.io.loads(data, trusted=sorted(skops.io.get_untrusted_types(data=data)))


class _CappedStream(io.RawIOBase):
    """A joblib inner decompressor's output, counted: the same inflated-bytes and ratio caps as the tar."""

    def __init__(self, inner: Any, cap: int, max_ratio: int, compressed: Callable[[], int]):
        self._inner = inner
        self._cap = cap
        self._max_ratio = max_ratio
        self._compressed = compressed
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._cap - self.produced + 1)
        data = self._inner.read(want)
        view[: len(data)] = data
        self.produced += len(data)
        if self.produced > self._cap:
            raise CapExceeded("max_member_bytes", f"the model file inflates past {self._cap} bytes")
        if self.produced > RATIO_FLOOR and self.produced > self._max_ratio * max(self._compressed(), 1):
            raise CapExceeded("max_ratio", f"the model file inflates more than {self._max_ratio}:1")
        return len(data)

    def left(self) -> int:
        return self._cap - self.produced + _BUFFER


_BUFFER = 1 << 18


def _remaining_of(handle: Any) -> Callable[[], int]:
    """What is left of the model file: a tar member knows; a file on disk has a size."""
    if hasattr(handle, "remaining"):
        return lambda: int(handle.remaining)
    if isinstance(handle, io.BytesIO):
        size = handle.getbuffer().nbytes
        return lambda: size - handle.tell()
    try:
        size = os.fstat(handle.fileno()).st_size
        return lambda: size - handle.tell()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return lambda: 1 << 62


def _open_pickle(handle: BinaryIO, name: str, caps: LoadCaps | None) -> tuple[Any, Callable[[], int]]:
    compressor = numpy_pickle_utils._detect_compressor(handle)
    if compressor == "compat":
        raise pickle.UnpicklingError("joblib < 0.10 file format is not supported")
    remaining = _remaining_of(handle)
    if compressor not in numpy_pickle_utils._COMPRESSORS:
        return handle, remaining
    total = remaining()
    cap = caps.max_member_bytes if caps else 2 << 30
    inner = numpy_pickle_utils._COMPRESSORS[compressor].decompressor_file(handle)
    capped = _CappedStream(inner, cap, caps.max_ratio if caps else 1_100, lambda: total - remaining())
    return io.BufferedReader(capped, buffer_size=_BUFFER), capped.left


def load_model_stream(
    handle: BinaryIO, name: str, extra_allowed: Iterable[str] = (), caps: LoadCaps | None = None
) -> LoadedModel:
    """Load a model from a sequential stream (a tar member as it inflates: no copy on disk).
    joblib (compressed or not) and plain pickle go through the allowlist and its call rules; skops
    through the same allowlist. Either way, every C-backed object is validated before it is returned."""
    allowed = default_allowlist() | frozenset(extra_allowed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        if name.endswith(".skops"):
            model = _load_skops(handle.read(), allowed, caps)
        else:
            stream, remaining = _open_pickle(handle, name, caps)
            model = _AllowlistUnpickler.create(name, stream, allowed, remaining).load()
    validate_model(model)
    return _loaded(model, caught)


def load_model(path: Path, extra_allowed: Iterable[str] = (), caps: LoadCaps | None = None) -> LoadedModel:
    with open(path, "rb") as handle:
        return load_model_stream(handle, path.name, extra_allowed, caps)


def _loaded(model: Any, caught: list[warnings.WarningMessage]) -> LoadedModel:
    """The version a model was pickled with is only visible in scikit-learn's warning about it."""
    version = sklearn.__version__
    recorded: list[str] = []
    for warning in caught:
        if isinstance(warning.message, InconsistentVersionWarning):
            version = warning.message.original_sklearn_version
            recorded.append(str(warning.message))
    return LoadedModel(
        model=model,
        sklearn_version=version,
        runtime_sklearn_version=sklearn.__version__,
        version_warnings=recorded,
    )
