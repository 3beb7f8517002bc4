"""numpy objects built by the gate from validated fields: dtypes, arrays, scalars, masked arrays, joblib's
array headers and numpy's random generators.

numpy's own setters trust what they are given (a structured dtype's field past its item size makes every
read of it a read past the element). So each state is checked as data first, and a dtype is accepted only
when numpy's constructor, given the same fields, builds exactly the state the file holds: the constructor
refuses overlaps and fields past the item size, the setter does not.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
from joblib import numpy_pickle

from training_gate.inspector.invariants import invariant
from training_gate.inspector.restricted.errors import RefusedCall

if TYPE_CHECKING:
    from training_gate.inspector.restricted.construct import Construction

_DTYPE_CODE = re.compile(r"^[biufcOSUV][0-9]{1,5}$")
_BYTE_ORDERS = ("<", ">", "|", "=")
MAX_DIMENSIONS = 32  # numpy's own limit is 64; no estimator writes more than 3
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


def _refuse(what: str) -> RefusedCall:
    return RefusedCall(f"{what}; nothing was run")


def is_shape(value: Any) -> bool:
    return type(value) is tuple and len(value) <= MAX_DIMENSIONS and all(type(d) is int and d >= 0 for d in value)


def count_of(shape: tuple[int, ...]) -> int:
    count = 1
    for dimension in shape:
        count *= dimension
    return count


def plain_dtype(value: Any) -> bool:
    """A dtype the gate built, of a kind model arrays use: numbers, strings, objects, records of numbers."""
    if not isinstance(value, np.dtype) or value.subdtype is not None:
        return False
    if value.names is not None:
        return not value.hasobject
    return value.kind in "biufcOSU"


# -- numpy.dtype(code, align, copy) + BUILD ------------------------------------------------------------------


def call_dtype(build: Construction, args: tuple) -> Any:
    # numpy pickles a dtype as dtype(code, False, True): copy=True makes a new object, so the BUILD that
    # follows changes that one only, never numpy's shared float64.
    if not (len(args) == 3 and type(args[0]) is str and _DTYPE_CODE.match(args[0]) and args[1] is False):
        raise _refuse(f"numpy.dtype{args!r:.80} refused: a dtype is rebuilt from a type code, unaligned")
    if args[2] is not True:
        raise _refuse("numpy.dtype refused without copy=True: its state would change a dtype numpy shares")
    dtype = np.dtype(args[0], False, True)
    return build.expect_build(dtype, _build_dtype, optional=args[0][0] != "V")


def _build_dtype(build: Construction, dtype: np.dtype, state: Any) -> np.dtype:
    if state is None:
        return dtype
    check_dtype_state(dtype, state)
    dtype.__setstate__(state)
    return dtype


@invariant("numpy-dtype-canonical")
def check_dtype_state(dtype: np.dtype, state: Any) -> None:
    if not (type(state) is tuple and len(state) == 8 and state[0] == 3 and state[1] in _BYTE_ORDERS):
        raise _refuse("a dtype state that is not numpy's (version 3, byte order, ...)")
    expected = _canonical_dtype(dtype, state)
    if expected is None or expected.__reduce__()[2] != state:
        raise _refuse(
            f"a dtype state numpy's constructor does not build from the same fields (a field past the item "
            f"size, an overlap, or flags of another dtype): {state!r:.120}"
        )


def _canonical_dtype(dtype: np.dtype, state: tuple) -> np.dtype | None:
    _version, order, subarray, names, fields, itemsize, _alignment, flags = state
    if subarray is not None:
        return None
    if names is None:
        if fields is not None or dtype.kind == "V":
            return None
        return dtype.newbyteorder(order) if order in "<>" else np.dtype(dtype.str)
    if dtype.kind != "V" or type(names) is not tuple or type(fields) is not dict or set(names) != set(fields):
        return None
    if type(itemsize) is not int or not 0 < itemsize <= 1 << 20 or len(names) > 256:
        return None
    formats, offsets = [], []
    for name in names:
        field = fields[name]
        if type(name) is not str or type(field) is not tuple or len(field) != 2:
            return None  # titles (a third item) are never written by the libraries the gate loads
        if not plain_dtype(field[0]) or field[0].hasobject or type(field[1]) is not int:
            return None
        formats.append(field[0])
        offsets.append(field[1])
    spec = {"names": list(names), "formats": formats, "offsets": offsets, "itemsize": itemsize}
    try:
        return np.dtype(spec, align=bool(flags & 0x80))  # NPY_ALIGNED_STRUCT
    except (ValueError, TypeError):
        return None


# -- arrays: _reconstruct + BUILD, _frombuffer, scalar ----------------------------------------------------


def call_reconstruct(build: Construction, args: tuple) -> Any:
    if not (
        len(args) == 3
        and (args[0] is np.ndarray or args[0] is np.matrix)
        and args[1] == (0,)
        and args[2] in (b"b", "b")
    ):
        raise _refuse("_reconstruct takes (ndarray or matrix, (0,), b'b')")
    return build.expect_build(np.ndarray.__new__(args[0], (0,), np.uint8), _build_array)


def _build_array(build: Construction, array: np.ndarray, state: Any) -> np.ndarray:
    if not (type(state) is tuple and len(state) == 5 and state[0] == 1):
        raise _refuse("an array state that is not numpy's (1, shape, dtype, fortran, data)")
    _version, shape, dtype, fortran, data = state
    check_array_fields(shape, dtype, fortran, data)
    if type(array) is np.matrix and len(shape) != 2:
        raise _refuse("a matrix state that is not 2-d")
    array.__setstate__(state)
    return array


@invariant("numpy-array-bytes")
def check_array_fields(shape: Any, dtype: Any, fortran: Any, data: Any) -> None:
    if not is_shape(shape) or not plain_dtype(dtype) or type(fortran) is not bool:
        raise _refuse(f"an array state with shape {shape!r:.60} and dtype {dtype!r:.60}")
    count = count_of(shape)
    if dtype.hasobject:
        if type(data) is not list or len(data) != count:
            raise _refuse(f"an object array of shape {shape} with {len(data) if type(data) is list else '?'} items")
    elif type(data) not in (bytes, bytearray) or len(data) != count * dtype.itemsize:
        raise _refuse(f"array bytes that are not exactly shape {shape} x {dtype.itemsize} bytes")


def call_frombuffer(build: Construction, args: tuple) -> Any:
    check_buffer_size("_frombuffer", args)
    data, dtype, shape, order = args
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order)


def call_scalar(build: Construction, args: tuple) -> Any:
    check_buffer_size("scalar", args)
    return np.frombuffer(args[1], dtype=args[0])[0]


@invariant("numpy-buffer-size")
def check_buffer_size(kind: str, args: tuple) -> None:
    if kind == "scalar":
        if len(args) == 2 and plain_dtype(args[0]) and not args[0].hasobject and type(args[1]) is bytes:
            if len(args[1]) == args[0].itemsize:
                return
        raise _refuse("a numpy scalar takes a non-object dtype and exactly its item size in bytes")
    if len(args) == 4 and type(args[0]) in (bytes, bytearray) and plain_dtype(args[1]) and not args[1].hasobject:
        data, dtype, shape, order = args
        if is_shape(shape) and order in ("C", "F") and len(data) == count_of(shape) * dtype.itemsize:
            return
    raise _refuse("_frombuffer takes a buffer exactly the size its shape and dtype claim")


# -- masked arrays -----------------------------------------------------------------------------------------


def call_mareconstruct(build: Construction, args: tuple) -> Any:
    ok = (
        len(args) == 4
        and args[0] is np.ma.MaskedArray
        and args[1] is np.ndarray
        and args[2] == (0,)
        and args[3] in (b"b", "b")
    )
    if not ok:
        raise _refuse("_mareconstruct takes (MaskedArray, ndarray, (0,), b'b')")
    return build.expect_build(np.ma.MaskedArray(np.zeros(0)), _build_masked)


def _build_masked(build: Construction, array: np.ma.MaskedArray, state: Any) -> np.ma.MaskedArray:
    check_masked_state(state)
    array.__setstate__(state)
    return array


@invariant("numpy-masked-state")
def check_masked_state(state: Any) -> None:
    if not (type(state) is tuple and len(state) == 7 and state[0] == 1):
        raise _refuse("a masked array state that is not numpy's")
    _version, shape, dtype, fortran, data, mask, fill = state
    check_array_fields(shape, dtype, fortran, data)
    if dtype.names is not None:
        raise _refuse("a masked array of records")
    if type(mask) is not bytes or len(mask) != count_of(shape):
        raise _refuse("a mask that is not one byte per element")
    if fill is not None and (not isinstance(fill, (bytes, str, int, float, np.generic)) or isinstance(fill, np.void)):
        raise _refuse("a masked array fill value that is not a scalar")


# -- joblib's array header -------------------------------------------------------------------------------

_WRAPPER_KEYS = {"subclass", "shape", "order", "dtype", "allow_mmap"}
_WRAPPER_OPTIONAL = {"numpy_array_alignment_bytes"}


def new_wrapper(build: Construction, cls: type) -> Any:
    return build.expect_build(object.__new__(cls), _build_wrapper)


def _build_wrapper(build: Construction, wrapper: Any, state: Any) -> Any:
    check_wrapper_state(state)
    wrapper.__dict__.update(state)
    return wrapper


@invariant("joblib-array-header")
def check_wrapper_state(state: Any) -> None:
    if type(state) is not dict or not _WRAPPER_KEYS <= set(state) <= _WRAPPER_KEYS | _WRAPPER_OPTIONAL:
        raise _refuse("a joblib array header with other fields than joblib writes")
    ok = (
        state["subclass"] in (np.ndarray, np.matrix)
        and is_shape(state["shape"])
        and state["order"] in ("C", "F")
        and plain_dtype(state["dtype"])
        and type(state["allow_mmap"]) is bool
        and state.get("numpy_array_alignment_bytes", 16) in (None, 16)
    )
    if not ok:
        raise _refuse(f"a joblib array header with {state!r:.120}")


def is_wrapper(value: Any) -> bool:
    return type(value) is numpy_pickle.NumpyArrayWrapper


# -- numpy.random -------------------------------------------------------------------------------------------


def _bit_generator_class(value: Any) -> type | None:
    classes = {name: getattr(np.random, name) for name in _BIT_GENERATORS}
    if type(value) is str:
        return classes.get(value)
    for cls in classes.values():
        if value is cls:
            return cls
    return None


def _bit_generator_argument(args: tuple) -> Any:
    """A bit generator numpy's pickling passes: a name (numpy 1.x, with its constructor), a class, or
    an instance this load built."""
    from numpy.random import _pickle

    if len(args) == 2 and args[1] is not _pickle.__bit_generator_ctor:
        raise _refuse("a numpy random constructor with another bit generator constructor")
    if not 1 <= len(args) <= 2:
        raise _refuse("a numpy random constructor takes one bit generator")
    value = args[0]
    if any(type(value) is cls for cls in map(_bit_generator_class, _BIT_GENERATORS)):
        return value
    cls = _bit_generator_class(value)
    if cls is None:
        raise _refuse(f"a numpy random constructor takes a bit generator, not {value!r:.60}")
    return cls()


def call_bit_generator(build: Construction, args: tuple) -> Any:
    if len(args) != 1 or _bit_generator_class(args[0]) is None:
        raise _refuse("a bit generator is rebuilt from its name or class")
    generator = _bit_generator_class(args[0])()
    return build.expect_build(generator, _build_bit_generator, optional=True)


def _build_bit_generator(build: Construction, generator: Any, state: Any) -> Any:
    seed = None
    if type(state) is tuple and len(state) == 2:
        state, seed = state
    if seed is not None and type(seed) is not np.random.SeedSequence:
        raise _refuse("a bit generator's seed that is not a SeedSequence")
    check_bit_generator_state(generator, state)
    generator.__setstate__(state if seed is None else (state, seed))
    return generator


@invariant("numpy-random-state")
def check_bit_generator_state(generator: Any, state: Any) -> None:
    expected = generator.state
    if (
        type(state) is not dict
        or set(state) != set(expected)
        or state.get("bit_generator") != expected["bit_generator"]
    ):
        raise _refuse(f"a {type(generator).__name__} state with other fields than numpy writes")
    for key, value in expected.items():
        if not _same_shape(value, state[key]):
            raise _refuse(f"a {type(generator).__name__} state whose {key!r} is not shaped as numpy writes it")


def _same_shape(expected: Any, given: Any) -> bool:
    if isinstance(expected, dict):
        return (
            type(given) is dict
            and set(given) == set(expected)
            and all(_same_shape(expected[k], given[k]) for k in expected)
        )
    if isinstance(expected, np.ndarray):
        return type(given) is np.ndarray and given.shape == expected.shape and given.dtype == expected.dtype
    if type(expected) is int:
        return type(given) is int or (isinstance(given, np.integer) and not isinstance(given, np.bool_))
    return type(given) is type(expected)


def call_random_state(build: Construction, args: tuple) -> Any:
    generator = _bit_generator_argument(args)
    random_state = np.random.RandomState(generator)
    return build.expect_build(random_state, _build_random_state, optional=True)


def _build_random_state(build: Construction, random_state: Any, state: Any) -> Any:
    expected = random_state.get_state(legacy=False)
    if type(state) is not dict or set(state) != set(expected) or not _same_shape(expected, state):
        raise _refuse("a RandomState state with other fields than numpy writes")
    random_state.__setstate__(state)
    return random_state


def call_generator(build: Construction, args: tuple) -> Any:
    generator = np.random.Generator(_bit_generator_argument(args))
    return build.expect_build(generator, _build_generator, optional=True)


def _build_generator(build: Construction, generator: Any, state: Any) -> Any:
    check_bit_generator_state(generator.bit_generator, state)
    generator.bit_generator.state = state
    return generator


def call_seed_sequence(build: Construction, args: tuple) -> Any:
    if not (len(args) == 3 and args[0] is np.random.SeedSequence and type(args[1]) is int and args[2] is None):
        raise _refuse("a SeedSequence is rebuilt empty, then given its state")
    return build.expect_build(np.random.SeedSequence.__new__(np.random.SeedSequence), _build_seed_sequence)


def _build_seed_sequence(build: Construction, seed: Any, state: Any) -> Any:
    ok = type(state) is tuple and len(state) == 5
    if ok:
        entropy, n_children, pool, pool_size, spawn_key = state
        ok = (
            isinstance(entropy, (int, np.integer))
            and type(n_children) is int
            and type(pool_size) is int
            and 4 <= pool_size <= 1 << 10
            and type(spawn_key) is tuple
            and all(type(k) is int for k in spawn_key)
            and type(pool) is np.ndarray
            and pool.dtype == np.uint32
            and pool.shape == (pool_size,)
        )
    if not ok:
        raise _refuse("a SeedSequence state with other fields than numpy writes")
    # The pool follows from the entropy: rebuilding it from the public constructor and comparing means
    # the object holds exactly what numpy would have made.
    fresh = np.random.SeedSequence(
        int(entropy), spawn_key=spawn_key, pool_size=pool_size, n_children_spawned=n_children
    )
    if not np.array_equal(fresh.pool, pool):
        raise _refuse("a SeedSequence whose pool is not the one its entropy gives")
    seed.__setstate__(state)
    return seed
