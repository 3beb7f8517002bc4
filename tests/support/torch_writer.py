"""torch.save's layouts written without torch, for fixtures and for hostile variants of them.

The pickle is Python's own pickler at protocol 2, as torch.save uses it; only what torch's classes
contribute is stood in for: a tensor reduces to `torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, requires_grad, OrderedDict())`, a storage is the persistent id `('storage', torch.<T>Storage, key,
'cpu', numel)` with keys "0", "1"... in order of first use, and a state_dict is an OrderedDict carrying
`_metadata`. The zip is written record by record as PyTorchStreamWriter drives miniz
(`mz_zip_writer_add_mem_ex_v2`, stored, zip64 mode): a local header with flags 0x0808 and zero sizes, an
`FB` extra field padding the data to 64 bytes, the data, a data descriptor, then the central directory
and the zip64 end records. Records in torch 2.x order: data.pkl, .format_version, .storage_alignment,
byteorder, data/<key>..., version, .data/serialization_id.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

STORAGE_TYPES = {
    "float32": "FloatStorage",
    "float64": "DoubleStorage",
    "float16": "HalfStorage",
    "bfloat16": "BFloat16Storage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int16": "ShortStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
DOS_TIME, DOS_DATE = 0x6000, 0x5B86  # 2025-12-06 12:00:00, a fixed time for reproducible fixtures


class Global:
    """Stands in for a global torch.save names; pickled as GLOBAL `module\\nname\\n`."""

    def __init__(self, qualified: str) -> None:
        self.module, self.name = qualified.rsplit(".", 1)

    def __call__(self, *args: Any) -> Any:  # the pickler requires a reduce function to be callable
        raise TypeError(f"{self.module}.{self.name} is a stand-in and is never called")


_GLOBALS: dict[str, Global] = {}


def g(qualified: str) -> Global:
    return _GLOBALS.setdefault(qualified, Global(qualified))


@dataclass(eq=False)
class Storage:
    data: bytes
    dtype: str
    location: str = "cpu"

    @property
    def numel(self) -> int:
        return len(self.data) // np.dtype(_numpy(self.dtype)).itemsize


@dataclass(eq=False)
class Tensor:
    storage: Storage
    size: tuple[int, ...]
    stride: tuple[int, ...] | None = None
    offset: int = 0
    requires_grad: bool = False
    parameter: bool = False
    rebuild: str = "torch._utils._rebuild_tensor_v2"
    extra_args: tuple[Any, ...] = ()

    def strides(self) -> tuple[int, ...]:
        if self.stride is not None:
            return self.stride
        out, step = [], 1
        for extent in reversed(self.size):
            out.append(step)
            step *= extent
        return tuple(reversed(out))


def _numpy(dtype: str) -> str:
    return {"bfloat16": "<u2", "bool": "|b1"}.get(dtype, dtype)


def tensor(values: np.ndarray, dtype: str | None = None, **kwargs: Any) -> Tensor:
    array = np.ascontiguousarray(values)
    name = dtype or str(array.dtype)
    if name == "bfloat16":
        raw = (np.asarray(values, dtype=np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
    else:
        raw = array.astype(_numpy(name)).tobytes()
    return Tensor(Storage(raw, name), tuple(array.shape), **kwargs)


def state_dict(tensors: dict[str, Tensor], metadata: dict[str, dict[str, int]] | None = None) -> OrderedDict:
    result: OrderedDict = OrderedDict(tensors)
    if metadata is None:
        prefixes = {""} | {name.rsplit(".", 1)[0] for name in tensors if "." in name}
        metadata = OrderedDict((p, {"version": 1}) for p in sorted(prefixes))
    result._metadata = metadata  # type: ignore[attr-defined]
    return result


_STORAGE_TAG = "storage"  # one string object, as torch's literal is: memoized after its first use
_CPU = "cpu"


class TorchPickler(pickle._Pickler):  # type: ignore[name-defined,misc]
    """Python's pure pickler with torch's reductions stood in; its memo behaves as torch.save's does."""

    def __init__(self, file: io.BytesIO, protocol: int = 2) -> None:
        super().__init__(file, protocol=protocol)
        self.keys: dict[int, str] = {}
        self.storages: dict[str, Storage] = {}

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, Storage):
            key = self.keys.setdefault(id(obj), str(len(self.keys)))
            self.storages[key] = obj
            location = _CPU if obj.location == "cpu" else obj.location
            return (_STORAGE_TAG, g(f"torch.{STORAGE_TYPES[obj.dtype]}"), key, location, obj.numel)
        return None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Tensor):
            args = (obj.storage, obj.offset, obj.size, obj.strides(), obj.requires_grad, OrderedDict(), *obj.extra_args)
            if obj.parameter:
                inner = Tensor(obj.storage, obj.size, obj.stride, obj.offset, False)
                return (g("torch._utils._rebuild_parameter"), (inner, obj.requires_grad, OrderedDict()))
            return (g(obj.rebuild), args)
        return NotImplemented

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if isinstance(obj, Global):
            self.write(pickle.GLOBAL + obj.module.encode() + b"\n" + obj.name.encode() + b"\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]
    dispatch[Global] = save_global


def dumps(obj: Any, protocol: int = 2) -> tuple[bytes, dict[str, Storage]]:
    buffer = io.BytesIO()
    pickler = TorchPickler(buffer, protocol)
    pickler.dump(obj)
    return buffer.getvalue(), pickler.storages


# -- the zip, as miniz writes it for PyTorchStreamWriter -------------------------------------------------------


@dataclass
class ZipWriter:
    prefix: str = "archive"
    out: bytearray = field(default_factory=bytearray)
    central: list[bytes] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def record(self, name: str, data: bytes, *, method: int = 0) -> None:
        full = f"{self.prefix}/{name}".encode()
        offset = len(self.out)
        crc = zlib.crc32(data)
        # getPadding: align the data to 64 bytes with an "FB" extra field.
        start = offset + 30 + len(full) + 4
        padding = (64 - start % 64) % 64
        extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
        payload = data if method == 0 else _deflate(data)
        flags = 0x0808 if data else 0x0800
        self.out += struct.pack(
            "<4s5H3L2H",
            b"PK\x03\x04",
            20 if method else 0,
            flags,
            method,
            DOS_TIME,
            DOS_DATE,
            0,
            0,
            0,
            len(full),
            len(extra),
        )
        self.out += full + extra + payload
        if data:
            self.out += struct.pack("<4s3L", b"PK\x07\x08", crc, len(payload), len(data))
        self.central.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                0,
                20 if method else 0,
                flags,
                method,
                DOS_TIME,
                DOS_DATE,
                crc,
                len(payload),
                len(data),
                len(full),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + full
        )
        self.names.append(name)

    def finish(self) -> bytes:
        cd_offset = len(self.out)
        directory = b"".join(self.central)
        out = self.out + directory
        zip64_at = len(out)
        out += struct.pack(
            "<4sQ2H2L4Q",
            b"PK\x06\x06",
            44,
            0x031E,
            0x002D,
            0,
            0,
            len(self.central),
            len(self.central),
            len(directory),
            cd_offset,
        )
        out += struct.pack("<4sLQL", b"PK\x06\x07", 0, zip64_at, 1)
        out += struct.pack(
            "<4s4H2LH", b"PK\x05\x06", 0, 0, len(self.central), len(self.central), len(directory), cd_offset, 0
        )
        return bytes(out)


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def torch_zip(obj: Any, prefix: str = "archive", *, extra_records: dict[str, bytes] | None = None) -> bytes:
    """What torch.save(obj, f"{prefix}.pt") writes (torch 2.x)."""
    data, storages = dumps(obj)
    writer = ZipWriter(prefix)
    writer.record("data.pkl", data)
    writer.record(".format_version", b"1")
    writer.record(".storage_alignment", b"64")
    writer.record("byteorder", b"little")
    for key in sorted(storages, key=int):
        writer.record(f"data/{key}", storages[key].data)
    for name, content in (extra_records or {}).items():
        writer.record(name, content)
    writer.record("version", b"3\n")
    writer.record(".data/serialization_id", b"1234567890123456789000000000000987654321")
    return writer.finish()


def torchscript_zip(modules: Any, prefix: str = "model") -> bytes:
    """A torch.jit.save archive's documented layout: data.pkl of `__torch__` modules, code/, constants."""
    data, storages = dumps(modules)
    constants, _ = dumps(())
    writer = ZipWriter(prefix)
    writer.record("data.pkl", data)
    writer.record("code/__torch__.py", b"class Net(Module):\n  def forward(self, x: Tensor) -> Tensor:\n    return x\n")
    writer.record("code/__torch__.py.debug_pkl", b"\x80\x02).")
    writer.record("constants.pkl", constants)
    for key in sorted(storages, key=int):
        writer.record(f"data/{key}", storages[key].data)
    writer.record("version", b"3\n")
    return writer.finish()


class Obj:
    """An object of a class the writer names, as protocol 2 pickles a plain class: NEWOBJ, then BUILD."""

    def __init__(self, qualified: str, state: Any) -> None:
        self.cls = g(qualified)
        self.state = state


def ScriptModule(name: str, state: dict[str, Any]) -> Obj:
    """A `__torch__.<name>` module as torch.jit.save pickles it."""
    return Obj(f"__torch__.{name}", state)


class EnumValue:
    """An enum member as protocol 2 pickles it: REDUCE of its class with its value."""

    def __init__(self, qualified: str, value: Any) -> None:
        self.cls = g(qualified)
        self.value = value


def _save_obj(pickler: TorchPickler, obj: Obj) -> None:
    pickler.save(obj.cls)
    pickler.save(())
    pickler.write(pickle.NEWOBJ)
    pickler.memoize(obj)
    pickler.save(obj.state)
    pickler.write(pickle.BUILD)


def _save_enum(pickler: TorchPickler, obj: EnumValue) -> None:
    pickler.save_reduce(obj.cls, (obj.value,), obj=obj)


TorchPickler.dispatch[Obj] = _save_obj
TorchPickler.dispatch[EnumValue] = _save_enum


# -- the legacy formats ------------------------------------------------------------------------------------------


def torch_legacy(obj: Any) -> bytes:
    """torch.save(obj, f, _use_new_zipfile_serialization=False): magic, protocol, sys info, object, keys,
    then each storage as its element count and bytes."""

    class LegacyPickler(TorchPickler):
        def persistent_id(self, o: Any) -> Any:
            pid = super().persistent_id(o)
            return None if pid is None else (*pid, None)

    out = io.BytesIO()
    for header in (
        LEGACY_MAGIC_NUMBER,
        1001,
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
    ):
        pickle.dump(header, out, protocol=2)
    pickler = LegacyPickler(out)
    pickler.dump(obj)
    keys = sorted(pickler.storages, key=int)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        storage = pickler.storages[key]
        out.write(struct.pack("<q", storage.numel) + storage.data)
    return out.getvalue()


def torch_tar(tensors: dict[str, Tensor], obj_keys: Any) -> bytes:
    """The pre-0.4 tar: `storages` (count, then (key, location, type) and size-prefixed bytes, then views),
    `tensors` (count, then (key, storage key, type) and ndim, sizes, strides, offset), and `pickle`."""
    storages = io.BytesIO()
    seen: dict[int, str] = {}
    for t in tensors.values():
        seen.setdefault(id(t.storage), str(len(seen)))
    dumps_small = _plain_dumps
    storages.write(dumps_small(len(seen)))
    written: set[str] = set()
    for t in tensors.values():
        key = seen[id(t.storage)]
        if key in written:
            continue
        written.add(key)
        storages.write(dumps_small((key, "cpu", g(f"torch.{STORAGE_TYPES[t.storage.dtype]}"))))
        storages.write(struct.pack("<q", t.storage.numel) + t.storage.data)
    storages.write(dumps_small([]))
    body = io.BytesIO()
    body.write(dumps_small(len(tensors)))
    for key, t in tensors.items():
        body.write(dumps_small((key, seen[id(t.storage)], g("torch.FloatTensor"))))
        body.write(struct.pack("<i", len(t.size)) + b"\0" * 4)
        body.write(struct.pack(f"<{2 * len(t.size) + 1}q", *t.size, *t.strides(), t.offset))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in (
            ("storages", storages.getvalue()),
            ("tensors", body.getvalue()),
            ("pickle", _by_key_pickle(obj_keys)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 1_500_000_000
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _plain_dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    TorchPickler(buffer).dump(value)
    return buffer.getvalue()


class TensorKey(str):
    """In the tar's pickle a tensor is the persistent id of its key."""


def _by_key_pickle(obj: Any) -> bytes:
    class KeyPickler(TorchPickler):
        def persistent_id(self, o: Any) -> Any:
            return str(o) if isinstance(o, TensorKey) else None

    buffer = io.BytesIO()
    KeyPickler(buffer).dump(obj)
    return buffer.getvalue()


# -- safetensors, by hand (hostile variants need headers the library would never write) ------------------------


def safetensors_file(
    tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None, header: dict | None = None
) -> bytes:
    import json

    names = sorted(tensors)
    built: dict[str, Any] = {}
    if metadata is not None:
        built["__metadata__"] = metadata
    offset = 0
    blobs = []
    kinds = {
        "float32": "F32",
        "float16": "F16",
        "float64": "F64",
        "int64": "I64",
        "int32": "I32",
        "uint8": "U8",
        "bool": "BOOL",
        "int8": "I8",
    }
    for name in names:
        array = np.ascontiguousarray(tensors[name])
        raw = array.tobytes()
        built[name] = {
            "dtype": kinds[str(array.dtype)],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header if header is not None else built, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)
