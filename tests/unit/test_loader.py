"""The allowlisted loader reads joblib's array bodies in place: the result must be exactly what
joblib itself loads, for every layout joblib writes."""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pytest

from training_gate.inspector.loader import CapExceeded, load_model_stream

RNG = np.random.default_rng(3)
ARRAYS = {
    "float64-c": RNG.standard_normal((7, 5)),
    "float32-fortran": np.asfortranarray(RNG.standard_normal((6, 4)).astype(np.float32)),
    "int64-3d": np.arange(60, dtype=np.int64).reshape(3, 4, 5),
    "big-endian": np.arange(10, dtype=">f8"),
    "bool": RNG.random(33) > 0.5,
    "zero-d": np.array(3.25),
    "empty": np.empty((0, 4)),
    "strided": RNG.standard_normal((10, 10))[::2, ::3],
    "unicode": np.array(["a", "bcd", "é"]),
    "structured": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
    "object": np.array([1, "two", 3.0], dtype=object),
    "large": RNG.standard_normal(200_000),  # several joblib read chunks
}


def joblib_bytes(obj: object, compress: int) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=compress)
    return buffer.getvalue()


@pytest.mark.parametrize("compress", [0, 3], ids=["plain", "compressed"])
def test_arrays_load_exactly_as_joblib_loads_them(compress: int):
    data = joblib_bytes(ARRAYS, compress)
    expected = joblib.load(io.BytesIO(data))
    loaded = load_model_stream(io.BytesIO(data), "arrays.joblib").model
    assert loaded.keys() == expected.keys()
    for name, array in expected.items():
        got = loaded[name]
        assert type(got) is type(array), name
        assert got.dtype == array.dtype and got.shape == array.shape, name
        assert got.flags["F_CONTIGUOUS"] == array.flags["F_CONTIGUOUS"], name
        assert got.dtype.isnative, name  # joblib makes byte order native, and so must the loader
        if array.dtype.hasobject:
            assert got.tolist() == array.tolist()
        else:
            assert np.array_equal(got, array), name


def test_an_array_cut_short_is_refused_from_its_header_before_allocating():
    data = joblib_bytes({"w": np.arange(1000.0)}, 0)
    with pytest.raises(CapExceeded, match=r"claims 8000 bytes .* more than the \d+ left") as refused:
        load_model_stream(io.BytesIO(data[:3000]), "model.joblib")
    assert refused.value.cap == "max_member_bytes"


class _SizelessStream(io.RawIOBase):
    """A stream that cannot say how much is left (no size, no fileno): only the read can tell."""

    def __init__(self, data: bytes):
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._inner.readinto(buffer)


def test_an_array_cut_short_is_an_error_not_a_short_array():
    data = joblib_bytes({"w": np.arange(1000.0)}, 0)
    with pytest.raises(pickle.UnpicklingError, match="EOF: array data ends after"):
        load_model_stream(io.BufferedReader(_SizelessStream(data[:3000])), "model.joblib")
