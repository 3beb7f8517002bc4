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


# -- caps: every claimed length is checked before anything is allocated --------------------------------

from training_gate.inspector.config import InspectConfig  # noqa: E402

HUGE = 1 << 40


@pytest.mark.parametrize(
    ("payload", "opcode"),
    [
        (b"\x80\x04\x8e" + HUGE.to_bytes(8, "little") + b"xx.", "BINBYTES8"),
        (b"\x80\x05\x96" + HUGE.to_bytes(8, "little") + b"xx.", "BYTEARRAY8"),
        (b"\x80\x04\x8d" + HUGE.to_bytes(8, "little") + b"xx.", "BINUNICODE8"),
        (b"\x80\x02X\xff\xff\xff\x7fxx.", "BINUNICODE"),
        (b"\x80\x02B\xff\xff\xff\x7fxx.", "BINBYTES"),
        (b"\x80\x02\x8b\xff\xff\xff\x7fxx.", "LONG4"),
        (b"\x80\x04\x95" + HUGE.to_bytes(8, "little") + b"xx.", "FRAME"),
    ],
    ids=["binbytes8", "bytearray8", "binunicode8", "binunicode", "binbytes", "long4", "frame"],
)
def test_a_length_claimed_in_the_pickle_is_checked_against_what_is_left(payload: bytes, opcode: str):
    with pytest.raises(CapExceeded, match=rf"{opcode} claims \d+ bytes, more than the \d+ left") as refused:
        load_model_stream(io.BytesIO(payload), "model.pkl")
    assert refused.value.cap == "max_member_bytes"


def test_a_length_inside_a_frame_is_checked_against_the_frame():
    inner = b"\x8e" + (1 << 20).to_bytes(8, "little") + b"abc"
    payload = b"\x80\x04\x95" + len(inner).to_bytes(8, "little") + inner + b"." + bytes(1 << 21)
    with pytest.raises(CapExceeded, match=r"BINBYTES8 claims 1048576 bytes, more than the 3 left"):
        load_model_stream(io.BytesIO(payload), "model.pkl")


COMPRESSORS = ["zlib", "gzip", "bz2", "lzma", "xz"]
try:
    import lz4  # noqa: F401

    COMPRESSORS.append("lz4")
except ImportError:
    pass


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_every_joblib_compressor_is_under_the_inflated_bytes_cap(compressor: str):
    buffer = io.BytesIO()
    joblib.dump({"w": np.zeros(100_000)}, buffer, compress=(compressor, 3))
    caps = InspectConfig(max_member_bytes=200_000)
    with pytest.raises(CapExceeded) as refused:
        load_model_stream(io.BytesIO(buffer.getvalue()), "model.joblib", caps=caps)
    assert refused.value.cap == "max_member_bytes"
    # the same file under the default caps loads
    loaded = load_model_stream(io.BytesIO(buffer.getvalue()), "model.joblib", caps=InspectConfig()).model
    assert loaded["w"].shape == (100_000,)


@pytest.mark.parametrize("compressor", ["zlib", "bz2"])
def test_every_joblib_compressor_is_under_the_ratio_cap(monkeypatch, compressor: str):
    from training_gate.inspector import loader

    monkeypatch.setattr(loader, "RATIO_FLOOR", 0)  # judge the ratio from the first byte, not after 64 MiB
    buffer = io.BytesIO()
    joblib.dump({"w": np.zeros(100_000)}, buffer, compress=(compressor, 3))
    with pytest.raises(CapExceeded, match="inflates more than 20:1") as refused:
        load_model_stream(io.BytesIO(buffer.getvalue()), "model.joblib", caps=InspectConfig(max_ratio=20))
    assert refused.value.cap == "max_ratio"


def test_the_skops_zip_is_under_the_same_caps(monkeypatch):
    import skops.io

    from training_gate.inspector.restricted import skops_reader

    data = skops.io.dumps({"w": np.zeros(100_000)})
    with pytest.raises(CapExceeded, match="inflates past 100000 bytes") as refused:
        load_model_stream(io.BytesIO(data), "model.skops", caps=InspectConfig(max_member_bytes=100_000))
    assert refused.value.cap == "max_member_bytes"
    monkeypatch.setattr(skops_reader, "RATIO_FLOOR", 0)
    compressed = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(compressed, "w", zipfile.ZIP_DEFLATED) as out:
        for entry in source.infolist():
            out.writestr(entry.filename, source.read(entry))
    with pytest.raises(CapExceeded, match="inflates more than 20:1") as refused:
        load_model_stream(io.BytesIO(compressed.getvalue()), "model.skops", caps=InspectConfig(max_ratio=20))
    assert refused.value.cap == "max_ratio"


def test_an_object_array_is_read_with_the_same_rules_not_joblibs_plain_unpickler(tmp_path):
    class Writes:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    data = joblib_bytes({"cells": np.array([1, Writes()], dtype=object)}, 0)
    with pytest.raises(pickle.UnpicklingError, match=r"refused global '_?io\.open'"):
        load_model_stream(io.BytesIO(data), "model.joblib")
    assert not (tmp_path / "pwned").exists()
