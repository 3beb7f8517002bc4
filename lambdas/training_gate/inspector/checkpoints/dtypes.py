"""Element types of every format the gate reads, and how each is turned into numbers to check.

One table: the gate's own name for a type (`float32`), its size in bytes, how the numeric rules read it
(a numpy dtype, or a decoder for bfloat16 and the float8 types numpy lacks), and what each format calls
it: torch's dtype global (`torch.float32`) and legacy storage class (`torch.FloatStorage`),
safetensors' name (`F32`), TensorFlow's `DataType` enum (`DT_FLOAT` = 1) and HDF5's class and size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np


@dataclass(frozen=True)
class DType:
    name: str
    itemsize: int
    kind: str  # "float", "complex", "int", "uint", "bool", "float8", "bfloat16", "quantized", "string"
    numpy: str | None = None  # little-endian numpy type string, when numpy reads it as is

    @property
    def floating(self) -> bool:
        return self.kind in ("float", "complex", "float8", "bfloat16")


_TYPES = (
    DType("float64", 8, "float", "<f8"),
    DType("float32", 4, "float", "<f4"),
    DType("float16", 2, "float", "<f2"),
    DType("bfloat16", 2, "bfloat16"),
    DType("float8_e4m3fn", 1, "float8"),
    DType("float8_e5m2", 1, "float8"),
    DType("float8_e4m3fnuz", 1, "float8"),
    DType("float8_e5m2fnuz", 1, "float8"),
    DType("complex128", 16, "complex", "<c16"),
    DType("complex64", 8, "complex", "<c8"),
    DType("complex32", 4, "complex"),
    DType("int64", 8, "int", "<i8"),
    DType("int32", 4, "int", "<i4"),
    DType("int16", 2, "int", "<i2"),
    DType("int8", 1, "int", "<i1"),
    DType("uint64", 8, "uint", "<u8"),
    DType("uint32", 4, "uint", "<u4"),
    DType("uint16", 2, "uint", "<u2"),
    DType("uint8", 1, "uint", "<u1"),
    DType("bool", 1, "bool", "<u1"),
    DType("qint8", 1, "quantized"),
    DType("quint8", 1, "quantized"),
    DType("qint32", 4, "quantized"),
    DType("string", 0, "string"),
)
BY_NAME = {t.name: t for t in _TYPES}

# torch: `torch.<name>` dtype globals, and the legacy typed storage classes torch.save still names.
TORCH_DTYPES = {name: BY_NAME[name] for name in BY_NAME if name != "string"}
TORCH_DTYPES.update({"float": BY_NAME["float32"], "double": BY_NAME["float64"], "half": BY_NAME["float16"]})
TORCH_DTYPES.update({"long": BY_NAME["int64"], "int": BY_NAME["int32"], "short": BY_NAME["int16"]})
TORCH_DTYPES.update({"cfloat": BY_NAME["complex64"], "cdouble": BY_NAME["complex128"]})
TORCH_STORAGES = {
    "DoubleStorage": BY_NAME["float64"],
    "FloatStorage": BY_NAME["float32"],
    "HalfStorage": BY_NAME["float16"],
    "BFloat16Storage": BY_NAME["bfloat16"],
    "LongStorage": BY_NAME["int64"],
    "IntStorage": BY_NAME["int32"],
    "ShortStorage": BY_NAME["int16"],
    "CharStorage": BY_NAME["int8"],
    "ByteStorage": BY_NAME["uint8"],
    "BoolStorage": BY_NAME["bool"],
    "ComplexFloatStorage": BY_NAME["complex64"],
    "ComplexDoubleStorage": BY_NAME["complex128"],
    "QInt8Storage": BY_NAME["qint8"],
    "QUInt8Storage": BY_NAME["quint8"],
    "QInt32Storage": BY_NAME["qint32"],
}
UNTYPED = BY_NAME["uint8"]  # torch.UntypedStorage: bytes; the tensor names its dtype (_rebuild_tensor_v3)

# safetensors' names (safetensors/src/tensor.rs, Dtype).
SAFETENSORS = {
    "F64": BY_NAME["float64"],
    "F32": BY_NAME["float32"],
    "F16": BY_NAME["float16"],
    "BF16": BY_NAME["bfloat16"],
    "F8_E4M3": BY_NAME["float8_e4m3fn"],
    "F8_E5M2": BY_NAME["float8_e5m2"],
    "I64": BY_NAME["int64"],
    "I32": BY_NAME["int32"],
    "I16": BY_NAME["int16"],
    "I8": BY_NAME["int8"],
    "U64": BY_NAME["uint64"],
    "U32": BY_NAME["uint32"],
    "U16": BY_NAME["uint16"],
    "U8": BY_NAME["uint8"],
    "BOOL": BY_NAME["bool"],
    "C64": BY_NAME["complex64"],
}

# TensorFlow DataType (tensorflow/core/framework/types.proto); 7 is DT_STRING (variable-size elements).
TENSORFLOW = {
    1: BY_NAME["float32"],
    2: BY_NAME["float64"],
    3: BY_NAME["int32"],
    4: BY_NAME["uint8"],
    5: BY_NAME["int16"],
    6: BY_NAME["int8"],
    7: BY_NAME["string"],
    8: BY_NAME["complex64"],
    9: BY_NAME["int64"],
    10: BY_NAME["bool"],
    14: BY_NAME["bfloat16"],
    17: BY_NAME["uint16"],
    18: BY_NAME["complex128"],
    19: BY_NAME["float16"],
    22: BY_NAME["uint32"],
    23: BY_NAME["uint64"],
}


@cache
def _float8_table(name: str) -> np.ndarray:
    """The 256 values of a float8 type, decoded from its bit layout (exponent bias, NaN and Inf rules)."""
    exponent_bits, bias, fnuz, finite_only = {
        "float8_e4m3fn": (4, 7, False, True),
        "float8_e5m2": (5, 15, False, False),
        "float8_e4m3fnuz": (4, 8, True, True),
        "float8_e5m2fnuz": (5, 16, True, True),
    }[name]
    mantissa_bits = 7 - exponent_bits
    values = np.empty(256, dtype=np.float32)
    for byte in range(256):
        sign = -1.0 if byte & 0x80 else 1.0
        exponent = (byte >> mantissa_bits) & ((1 << exponent_bits) - 1)
        mantissa = byte & ((1 << mantissa_bits) - 1)
        top = (1 << exponent_bits) - 1
        if fnuz and byte == 0x80:
            values[byte] = np.nan  # the fnuz types' only NaN is negative zero's pattern
        elif not finite_only and exponent == top:
            values[byte] = sign * np.inf if mantissa == 0 else np.nan
        elif finite_only and not fnuz and exponent == top and mantissa == (1 << mantissa_bits) - 1:
            values[byte] = np.nan  # e4m3fn: S.1111.111 is NaN, there is no infinity
        elif exponent == 0:
            values[byte] = sign * mantissa * 2.0 ** (1 - bias - mantissa_bits)
        else:
            values[byte] = sign * (1 + mantissa / (1 << mantissa_bits)) * 2.0 ** (exponent - bias)
    return values


def as_numbers(raw: np.ndarray, dtype: DType) -> np.ndarray | None:
    """The values of `raw` (a uint8 array of whole elements) as numbers numpy can check; None when the
    type has no numeric reading here (quantized, strings)."""
    if dtype.numpy is not None:
        return raw.view(np.dtype(dtype.numpy))
    if dtype.kind == "bfloat16":
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype.kind == "float8":
        return _float8_table(dtype.name)[raw]
    if dtype.name == "complex32":
        return raw.view("<f2")
    return None
