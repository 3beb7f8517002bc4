"""HDF5 files as Keras and h5py write them, read in Python: no C parser ever sees the bytes.

libhdf5 has a long record of memory errors on crafted files, and the inspection child's verdict is only
as good as the code that runs in it: so the gate reads the subset of the format h5py writes by default
(libver "earliest") itself, every address and length checked against the file, and refuses the rest by
name (it is inconclusive, not hostile). The subset (HDF5 File Format Specification 3.0): superblock
version 0 or 1; version 1 object headers with continuation blocks; groups as symbol tables (a version 1
B-tree of symbol nodes and a local heap of names); dataspaces; fixed-point, IEEE floating-point, string,
variable-length string and h5py's boolean enum datatypes; contiguous and compact layouts; attributes of
version 1 to 3; variable-length strings in global heap collections. A dataset whose data lives in an
external file is refused outright; filters, chunking, shared messages and the newer group and attribute
storage are refused as content the gate does not read.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training_gate.inspector.checkpoints.dtypes import BY_NAME, DType
from training_gate.inspector.checkpoints.errors import Reason, refuse

SIGNATURE = b"\x89HDF\r\n\x1a\n"
UNDEFINED = 0xFFFFFFFFFFFFFFFF
MAX_OBJECTS = 200_000
MAX_MESSAGES = 10_000
MAX_ATTRIBUTE_BYTES = 64 << 20


@dataclass
class Datatype:
    kind: str  # "number", "string", "vlen-string", "bool"
    size: int
    dtype: DType | None = None


@dataclass
class Dataset:
    name: str
    shape: tuple[int, ...]
    datatype: Datatype
    address: int | None  # None: no data was written (the fill value)
    size: int


@dataclass
class Group:
    name: str
    children: dict[str, Group | Dataset] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


class _File:
    """The HDF5 file at `base` in `path` (0, or where a stored zip entry's data begins), `length` bytes."""

    def __init__(self, path: Path, where: str, base: int = 0, length: int | None = None) -> None:
        self.path = path
        self.where = where
        self.base = base
        self.size = path.stat().st_size - base if length is None else length
        self.handle = open(path, "rb")
        self.visited: set[int] = set()
        self.headers: set[int] = set()
        self.objects = 0
        self.heaps: dict[int, dict[int, bytes]] = {}

    def fail(self, detail: str, reason: Reason = Reason.MALFORMED) -> Exception:
        return refuse(reason, detail, self.where)

    def unpack(self, fmt: str, data: bytes, offset: int = 0) -> tuple[Any, ...]:
        """struct.unpack_from, refusing a structure the bytes are too short for."""
        if offset < 0 or offset + struct.calcsize(fmt) > len(data):
            raise self.fail(f"a structure of {struct.calcsize(fmt)} bytes at {offset} in a message of {len(data)}")
        return struct.unpack_from(fmt, data, offset)

    def read(self, address: int, size: int, what: str) -> bytes:
        if address < 0 or size < 0 or address + size > self.size:
            raise self.fail(f"{what} at {address} ({size} bytes) is outside the file", Reason.TRUNCATED)
        self.handle.seek(self.base + address)
        data = self.handle.read(size)
        if len(data) != size:
            raise self.fail(f"{what} is cut short", Reason.TRUNCATED)
        return data

    # -- superblock, groups -------------------------------------------------------------------------------------

    def root(self) -> Group:
        head = self.read(0, 24, "the superblock")
        if head[:8] != SIGNATURE:
            raise self.fail("no HDF5 signature at the start (user blocks are not read)")
        version = head[8]
        if version not in (0, 1):
            raise self.fail(f"superblock version {version} (written with libver='latest')", Reason.UNSUPPORTED)
        if head[13] != 8 or head[14] != 8:
            raise self.fail("offsets or lengths that are not 8 bytes", Reason.UNSUPPORTED)
        start = 24 + (4 if version == 1 else 0)
        body = self.read(start, 32 + 40, "the superblock's addresses")
        base, _free, _eof, _driver = self.unpack("<4Q", body)
        if base != 0:
            raise self.fail("a base address other than 0", Reason.UNSUPPORTED)
        _name, header = self.unpack("<2Q", body, 32)
        return self.group("/", header)

    def group(self, name: str, address: int, depth: int = 0) -> Group:
        if depth > 64:
            raise self.fail("groups nest deeper than 64 levels", Reason.LIMIT)
        self._once(address, name)
        messages = self.header(address)
        group = Group(name)
        group.attrs = self.attributes(messages)
        table = [data for kind, data, _at in messages if kind == 0x11]
        if len(table) != 1:
            raise self.fail(f"group {name} has no symbol table (new-style groups are not read)", Reason.UNSUPPORTED)
        btree, heap = self.unpack("<2Q", table[0])
        names = self.local_heap(heap)
        for child_name, child_address in self.symbols(btree, names, 0):
            if child_name in group.children:
                raise self.fail(f"two links named {child_name!r} in {name}")
            path = f"{name.rstrip('/')}/{child_name}"
            child_messages = self.header(child_address, peek=True)
            if any(kind == 0x11 for kind, _d, _a in child_messages):
                group.children[child_name] = self.group(path, child_address, depth + 1)
            else:
                group.children[child_name] = self.dataset(path, child_address)
        return group

    def local_heap(self, address: int) -> bytes:
        head = self.read(address, 32, "a local heap")
        if head[:4] != b"HEAP" or head[4] != 0:
            raise self.fail(f"no local heap at {address}")
        size, _free, data_address = self.unpack("<3Q", head, 8)
        return self.read(data_address, size, "a local heap's names")

    def symbols(self, address: int, names: bytes, depth: int) -> list[tuple[str, int]]:
        if depth > 32 or address in self.visited:
            raise self.fail("a B-tree that loops or is too deep")
        self.visited.add(address)
        head = self.read(address, 24, "a B-tree node")
        if head[:4] != b"TREE" or head[4] != 0:
            raise self.fail(f"no group B-tree node at {address}")
        level, used = head[5], self.unpack("<H", head, 6)[0]
        body = self.read(address + 24, used * 16 + 8, "a B-tree node's children")
        children = [self.unpack("<Q", body, 8 + 16 * i)[0] for i in range(used)]
        found: list[tuple[str, int]] = []
        for child in children:
            if level > 0:
                found += self.symbols(child, names, depth + 1)
                continue
            node = self.read(child, 8, "a symbol node")
            if node[:4] != b"SNOD" or node[4] != 1:
                raise self.fail(f"no symbol node at {child}")
            count = self.unpack("<H", node, 6)[0]
            entries = self.read(child + 8, 40 * count, "symbol entries")
            for i in range(count):
                offset, header = self.unpack("<2Q", entries, 40 * i)
                found.append((self.name_at(names, offset), header))
        self.objects += len(found)
        if self.objects > MAX_OBJECTS:
            raise self.fail(f"more than {MAX_OBJECTS} objects", Reason.LIMIT)
        return found

    def name_at(self, names: bytes, offset: int) -> str:
        end = names.find(b"\x00", offset)
        if offset >= len(names) or end < 0:
            raise self.fail("a link name outside its heap")
        try:
            name = names[offset:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail("a link name is not UTF-8") from exc
        if not name or "/" in name or name in (".", ".."):
            raise self.fail(f"a link named {name!r}")
        return name

    # -- object headers -------------------------------------------------------------------------------------

    def header(self, address: int, peek: bool = False) -> list[tuple[int, bytes, int]]:
        head = self.read(address, 16, "an object header")
        version, _r, count, _refs, size = self.unpack("<BBHII", head)
        if version != 1:
            raise self.fail(f"object header version {version} at {address} (libver='latest')", Reason.UNSUPPORTED)
        if count > MAX_MESSAGES:
            raise self.fail(f"an object header with {count} messages", Reason.LIMIT)
        blocks = [(address + 16, size)]
        messages: list[tuple[int, bytes, int]] = []
        seen_blocks: set[int] = set()
        while blocks and len(messages) < count:
            start, length = blocks.pop(0)
            if start in seen_blocks:
                raise self.fail("object header continuations loop")
            seen_blocks.add(start)
            block = self.read(start, length, "an object header block")
            pos = 0
            while pos + 8 <= len(block) and len(messages) < count:
                kind, msg_size, flags = self.unpack("<HHB", block, pos)
                data = block[pos + 8 : pos + 8 + msg_size]
                if len(data) != msg_size:
                    raise self.fail("a header message runs past its block")
                if flags & 0x02:
                    raise self.fail("a shared header message", Reason.UNSUPPORTED)
                if kind == 0x10:
                    blocks.append(self.unpack("<2Q", data))
                messages.append((kind, data, start + pos + 8))
                pos += 8 + msg_size
                if flags & 0x80 and kind not in _KNOWN:
                    raise self.fail(f"header message type {kind:#x} marked fail-if-unknown", Reason.UNSUPPORTED)
        if len(messages) != count:
            raise self.fail(f"an object header promises {count} messages and holds {len(messages)}")
        return messages

    def attributes(self, messages: list[tuple[int, bytes, int]]) -> dict[str, Any]:
        if any(kind == 0x15 for kind, _d, _a in messages):
            raise self.fail("attributes in dense storage", Reason.UNSUPPORTED)
        attrs: dict[str, Any] = {}
        for kind, data, _at in messages:
            if kind != 0x0C:
                continue
            name, value = self.attribute(data)
            if name in attrs:
                raise self.fail(f"two attributes named {name!r}")
            attrs[name] = value
        return attrs

    def attribute(self, data: bytes) -> tuple[str, Any]:
        if len(data) < 8:
            raise self.fail("a cut attribute message")
        version = self.unpack("<B", data)[0]
        name_size, type_size, space_size = self.unpack("<3H", data, 2)
        if version == 1:
            pad = lambda n: (n + 7) // 8 * 8  # noqa: E731
            pos = 8
        elif version in (2, 3):
            pad = lambda n: n  # noqa: E731
            pos = 8 if version == 2 else 9
        else:
            raise self.fail(f"attribute message version {version}", Reason.UNSUPPORTED)
        raw_name = data[pos : pos + name_size]
        pos += pad(name_size)
        datatype = self.datatype(data[pos : pos + type_size])
        pos += pad(type_size)
        shape = self.dataspace(data[pos : pos + space_size])
        pos += pad(space_size)
        try:
            name = raw_name.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail("an attribute name is not UTF-8") from exc
        count = math.prod(shape)
        width = 16 if datatype.kind == "vlen-string" else datatype.size
        if count * width > min(MAX_ATTRIBUTE_BYTES, len(data) - pos):
            raise self.fail(f"attribute {name!r} holds less than its shape and type need")
        return name, self.values(data[pos : pos + count * width], datatype, shape)

    def values(self, raw: bytes, datatype: Datatype, shape: tuple[int, ...]) -> Any:
        count = math.prod(shape)
        if datatype.kind == "vlen-string":
            items = []
            for i in range(count):
                length, collection, index = self.unpack("<IQI", raw, 16 * i)
                items.append(self.global_string(collection, index, length))
        elif datatype.kind == "string":
            items = [
                raw[i * datatype.size : (i + 1) * datatype.size].split(b"\x00", 1)[0].decode("utf-8", "replace")
                for i in range(count)
            ]
        else:
            import numpy as np

            from training_gate.inspector.checkpoints.dtypes import as_numbers

            assert datatype.dtype is not None
            numbers = as_numbers(np.frombuffer(raw, dtype=np.uint8), datatype.dtype)
            items = numbers.tolist() if numbers is not None else []
        return items[0] if shape == () else items

    def global_string(self, collection: int, index: int, length: int) -> str:
        if collection not in self.heaps:
            head = self.read(collection, 16, "a global heap collection")
            if head[:4] != b"GCOL":
                raise self.fail(f"no global heap collection at {collection}")
            (size,) = self.unpack("<Q", head, 8)
            body = self.read(collection, size, "a global heap collection")
            objects: dict[int, bytes] = {}
            pos = 16
            while pos + 16 <= len(body):
                number, _refs, _r, object_size = self.unpack("<HHIQ", body, pos)
                if number == 0:
                    break
                if pos + 16 + object_size > len(body):
                    raise self.fail("a global heap object runs past its collection")
                objects[number] = body[pos + 16 : pos + 16 + object_size]
                pos += 16 + (object_size + 7) // 8 * 8
            self.heaps[collection] = objects
        value = self.heaps[collection].get(index)
        if value is None or len(value) < length:
            raise self.fail(f"a string refers to global heap object {index}, which is not there")
        try:
            return value[:length].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail("a variable-length string is not UTF-8") from exc

    def datatype(self, data: bytes) -> Datatype:
        if len(data) < 8:
            raise self.fail("a cut datatype message")
        kind, version = data[0] & 0x0F, data[0] >> 4
        bits = data[1] | data[2] << 8 | data[3] << 16
        (size,) = self.unpack("<I", data, 4)
        if version not in (1, 2, 3):
            raise self.fail(f"datatype version {version}", Reason.UNSUPPORTED)
        if kind in (0, 1) and bits & 1:
            raise self.fail("a big-endian datatype", Reason.UNSUPPORTED)
        if kind == 0 and size in (1, 2, 4, 8):
            signed = bool(bits & 0x08)
            return Datatype("number", size, BY_NAME[f"{'int' if signed else 'uint'}{size * 8}"])
        if kind == 1 and len(data) >= 20:
            layout = self.unpack("<2H4BI", data, 8)
            ieee = {2: (0, 16, 10, 5, 0, 10, 15), 4: (0, 32, 23, 8, 0, 23, 127), 8: (0, 64, 52, 11, 0, 52, 1023)}
            if ieee.get(size) == layout:
                return Datatype("number", size, BY_NAME[f"float{size * 8}"])
            raise self.fail(f"a {size}-byte float that is not IEEE", Reason.UNSUPPORTED)
        if kind == 3:
            return Datatype("string", size)
        if kind == 9 and bits & 0x0F == 1:
            return Datatype("vlen-string", 16)
        if kind == 8 and size == 1:
            return Datatype("bool", 1, BY_NAME["bool"])
        raise self.fail(f"datatype class {kind} (size {size})", Reason.UNSUPPORTED)

    def dataspace(self, data: bytes) -> tuple[int, ...]:
        if len(data) < 8:
            raise self.fail("a cut dataspace message")
        version, rank, flags = self.unpack("<3B", data)
        if version == 1:
            pos = 8
        elif version == 2:
            if self.unpack("<B", data, 3)[0] == 2:
                return (0,)
            pos = 4
        else:
            raise self.fail(f"dataspace version {version}", Reason.UNSUPPORTED)
        if rank > 32 or pos + 8 * rank > len(data):
            raise self.fail("a dataspace of impossible rank")
        dims = self.unpack(f"<{rank}Q", data, pos)
        if any(d >= 1 << 48 for d in dims) or (flags & 0x02):
            raise self.fail("a dataspace with a huge dimension or a permutation")
        return tuple(dims)

    def _once(self, address: int, name: str) -> None:
        # h5py writes each object once; a second link to one (a cycle, or a fan-out that multiplies
        # the walk) is refused.
        if address in self.headers:
            raise self.fail(f"object {name} is linked a second time")
        self.headers.add(address)

    def dataset(self, name: str, address: int) -> Dataset:
        self._once(address, name)
        messages = self.header(address)
        kinds = {kind for kind, _d, _a in messages}
        if 0x07 in kinds:
            raise self.fail(f"dataset {name}'s data lives in an external file: the loader would read it from disk")
        if 0x0B in kinds:
            raise self.fail(f"dataset {name} is filtered (compressed)", Reason.UNSUPPORTED)
        pick = {kind: (data, at) for kind, data, at in messages}
        if 0x01 not in pick or 0x03 not in pick or 0x08 not in pick:
            raise self.fail(f"object {name} is neither a group nor a dataset")
        shape = self.dataspace(pick[0x01][0])
        datatype = self.datatype(pick[0x03][0])
        layout, at = pick[0x08]
        if self.unpack("<2B", layout)[0] != 3:
            raise self.fail(f"dataset {name} has layout message version {layout[0]}", Reason.UNSUPPORTED)
        need = math.prod(shape) * datatype.size
        if layout[1] == 0:
            (size,) = self.unpack("<H", layout, 2)
            address_of, length = at + 4, size
        elif layout[1] == 1:
            address_of, length = self.unpack("<2Q", layout, 2)
        else:
            raise self.fail(f"dataset {name} is chunked or virtual", Reason.UNSUPPORTED)
        if datatype.kind != "number" and datatype.kind != "bool":
            raise self.fail(f"dataset {name} holds strings, not weights", Reason.UNSUPPORTED)
        if address_of == UNDEFINED:
            return Dataset(name, shape, datatype, None, need)
        if length != need or address_of + length > self.size:
            raise self.fail(f"dataset {name} is {list(shape)} x {datatype.size} bytes in a block of {length}")
        return Dataset(name, shape, datatype, address_of, length)


_KNOWN = frozenset({0x00, 0x01, 0x03, 0x04, 0x05, 0x08, 0x0C, 0x0E, 0x10, 0x11, 0x12})


def read_hdf5(path: Path, where: str, base: int = 0, length: int | None = None) -> Group:
    """The file's groups and datasets; a dataset's `address` is relative to `base`."""
    reader = _File(path, where, base, length)
    try:
        return reader.root()
    finally:
        reader.handle.close()


def datasets(group: Group, prefix: str = "") -> list[tuple[str, Dataset]]:
    found: list[tuple[str, Dataset]] = []
    for name, child in group.children.items():
        path = f"{prefix}/{name}" if prefix else name
        if isinstance(child, Group):
            found += datasets(child, path)
        else:
            found.append((path, child))
    return found
