"""The skops reader: a `.skops` file's node tree, read by the gate itself and built through the same
`Construction` as a pickle (skops' own loader would call `__setstate__` with the file's state). Each node
names its class by (module, name), resolved through the allowlist table; an ObjectNode is `new` + `build`,
a TreeNode or LossNode a `call` (+ `build`), arrays are read from their `.npy` bytes by the gate. So the
schema and the invariants a pickle meets are exactly the ones a skops file meets.
"""

from __future__ import annotations

import ast
import io
import json
import re
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from training_gate.archive import RATIO_FLOOR
from training_gate.inspector.restricted import numpy_builders as nb
from training_gate.inspector.restricted.construct import Construction
from training_gate.inspector.restricted.errors import CapExceeded, InvalidStructure, RefusedCall, UntrustedTypes

SUPPORTED_PROTOCOLS = (1, 2)
MAX_DEPTH = 400
_NPY_HEADER = 10_000
_BUILTIN_NAMES = {
    f"builtins.{name}": obj
    for name, obj in (
        ("dict", dict),
        ("list", list),
        ("tuple", tuple),
        ("set", set),
        ("str", str),
        ("int", int),
        ("float", float),
        ("bool", bool),
        ("NoneType", type(None)),
        ("bytes", bytes),
        ("bytearray", bytearray),
        ("slice", slice),
    )
}
_BUILTIN_NAMES["collections.OrderedDict"] = OrderedDict
_KEY_TYPES = (str, int, float, bool, np.int64, np.int32, np.uint64, np.uint32, np.float64, np.str_, np.bool_)


def _refuse(what: str) -> RefusedCall:
    return RefusedCall(f"skops file: {what}; nothing was run")


def check_inflation(archive: zipfile.ZipFile, max_bytes: int, max_ratio: int, what: str) -> None:
    total = 0
    for entry in archive.infolist():
        total += entry.file_size
        if total > max_bytes:
            raise CapExceeded("max_member_bytes", f"the {what} inflates past {max_bytes} bytes")
        if entry.file_size > RATIO_FLOOR and entry.file_size > max_ratio * max(entry.compress_size, 1):
            raise CapExceeded("max_ratio", f"{what} entry {entry.filename!r} inflates more than {max_ratio}:1")


_NPY_MAGIC = b"\x93NUMPY"
_DESCR_CODE = re.compile(r"^[<>|=]?[biufcSUV][0-9]{1,5}$")


def _descr_problem(descr: Any) -> str | None:
    """A .npy header's dtype description, checked as data before numpy builds a dtype from it: a type
    code, or a list of (name, type code) fields. Subarrays, nested records and objects are refused."""
    if type(descr) is str:
        return None if _DESCR_CODE.match(descr) else f"dtype {descr!r}"
    if type(descr) is not list or not descr or len(descr) > 256:
        return "a dtype description that is neither a code nor a list of fields"
    for field in descr:
        if type(field) is not tuple or len(field) != 2 or type(field[0]) is not str or type(field[1]) is not str:
            return "a record field that is not (name, type code)"
        if not _DESCR_CODE.match(field[1]):
            return f"a record field of dtype {field[1]!r}"
    return None


def read_npy(data: bytes) -> np.ndarray:
    """numpy's .npy format, read by the gate: the header parsed as a literal and checked as data (its dtype
    description, shape and order) before numpy builds the dtype, then exactly that many bytes."""
    if data[:6] != _NPY_MAGIC or len(data) < 10 or data[6:8] not in (b"\x01\x00", b"\x02\x00", b"\x03\x00"):
        raise _refuse("an array that is not in numpy's .npy format")
    width = 2 if data[6] == 1 else 4
    (length,) = struct.unpack("<H" if width == 2 else "<I", data[8 : 8 + width])
    start = 8 + width
    if length > _NPY_HEADER or start + length > len(data):
        raise _refuse("an array whose .npy header is longer than numpy allows")
    try:
        header = ast.literal_eval(data[start : start + length].decode("latin1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise _refuse("an array whose .npy header is not a literal") from exc
    if type(header) is not dict or set(header) != {"descr", "fortran_order", "shape"}:
        raise _refuse("an array whose .npy header has other fields than numpy writes")
    problem = _descr_problem(header["descr"])
    shape, fortran = header["shape"], header["fortran_order"]
    if problem or not nb.is_shape(shape) or type(fortran) is not bool:
        raise _refuse(f"an array with {problem or f'shape {shape!r:.60}'}")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (ValueError, TypeError) as exc:
        raise _refuse(f"an array whose dtype numpy's constructor refuses ({exc})") from exc
    if not nb.plain_dtype(dtype) or dtype.hasobject:
        raise _refuse(f"an array of dtype {dtype}")
    body = data[start + length :]
    if len(body) != nb.count_of(shape) * dtype.itemsize:
        raise _refuse(f"an array whose bytes are not exactly shape {shape} x {dtype.itemsize}")
    flat = np.frombuffer(body, dtype=dtype).copy()
    return flat.reshape(shape[::-1]).transpose() if fortran else flat.reshape(shape)


class SkopsReader:
    def __init__(self, archive: zipfile.ZipFile, build: Construction, max_bytes: int, max_ratio: int):
        self.archive = archive
        self.build = build
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        self.memo: dict[Any, Any] = {}
        self.protocol = 2

    # -- entry ------------------------------------------------------------------------------------------

    def load(self) -> Any:
        schema = json.loads(self.archive.read("schema.json"))
        if type(schema) is not dict:
            raise _refuse("schema.json is not a node")
        protocol = schema.get("protocol")
        if type(protocol) is not int or protocol not in SUPPORTED_PROTOCOLS:
            raise _refuse(f"protocol {protocol!r} (the gate reads {SUPPORTED_PROTOCOLS}: re-save with skops >= 0.10)")
        self.protocol = protocol
        self._audit(schema)
        return self.node(schema, 0)

    def _audit(self, schema: Any) -> None:
        """Every class the file names, listed at once if any is not allowlisted."""
        untrusted: set[str] = set()
        pending = [schema]
        while pending:
            node = pending.pop()
            if isinstance(node, dict):
                module, name = node.get("__module__"), node.get("__class__")
                if isinstance(module, str) and isinstance(name, str):
                    full = f"{module}.{name}"
                    if full not in _BUILTIN_NAMES and self.build.table.lookup(full) is None:
                        untrusted.add(full)
                pending.extend(node.values())
            elif isinstance(node, list):
                pending.extend(node)
        if untrusted:
            raise UntrustedTypes(sorted(untrusted))

    # -- nodes ------------------------------------------------------------------------------------------

    def node(self, node: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _refuse("nodes nested deeper than any model")
        if type(node) is not dict or type(node.get("__loader__")) is not str:
            raise _refuse("a node that is not a skops node")
        saved_id = node.get("__id__")
        if node["__loader__"] == "CachedNode":
            if saved_id not in self.memo:
                raise _refuse(f"a cached node refers to an unknown object {saved_id!r}")
            return self.memo[saved_id]
        if saved_id is not None and saved_id in self.memo:
            return self.memo[saved_id]  # skops reuses the first node of an id
        loader = _LOADERS.get(node["__loader__"])
        if loader is None:
            raise _refuse(f"the {node['__loader__']!r} node is not one the gate builds")
        value = loader(self, node, depth + 1)
        if saved_id is not None:
            self.memo[saved_id] = value
        return value

    def cls(self, node: dict[str, Any]) -> Any:
        module, name = node.get("__module__"), node.get("__class__")
        if type(module) is not str or type(name) is not str:
            raise _refuse("a node without a class name")
        full = f"{module}.{name}"
        if full in _BUILTIN_NAMES:
            return _BUILTIN_NAMES[full]
        return self.build.table.resolve(module, name)

    def child(self, node: dict[str, Any], key: str, depth: int) -> Any:
        if key not in node:
            raise _refuse(f"a {node['__loader__']} without its {key!r}")
        return self.node(node[key], depth)

    def content(self, node: dict[str, Any]) -> Any:
        if "content" not in node:
            raise _refuse(f"a {node['__loader__']} without content")
        return node["content"]

    def file(self, node: dict[str, Any]) -> bytes:
        name = node.get("file")
        if type(name) is not str or name not in self.archive.namelist():
            raise _refuse(f"a node whose file {name!r} is not in the archive")
        return self.archive.read(name)

    def expect(self, node: dict[str, Any], *kinds: Any) -> Any:
        found = self.cls(node)
        if not any(found is kind for kind in kinds):
            raise _refuse(f"a {node['__loader__']} of {node.get('__module__')}.{node.get('__class__')}")
        return found


def _json(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    content = reader.content(node)
    if type(content) is not str:
        raise _refuse("a JSON node whose content is not text")
    return json.loads(content)


def _dict(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    kind = reader.cls(node)
    key_types = reader.child(node, "key_types", depth)
    content = reader.content(node)
    if type(content) is not dict or type(key_types) is not list or len(key_types) != len(content):
        raise _refuse("a dict whose keys and key types disagree")
    plain = kind is dict or kind is OrderedDict
    # A dict subclass (a Bunch) is built like any instance: its items first, then its (empty) state,
    # which checks them.
    result = kind() if plain else reader.build.new(kind)
    if not plain and not isinstance(result, dict):
        raise _refuse(f"a dict node of {reader.build.name_of(kind)}")
    for key_type, (key, value) in zip(key_types, content.items(), strict=True):
        if not any(key_type is t for t in _KEY_TYPES) or type(key) is not str:
            raise _refuse("a dict key of a type that is not text or a number")
        converted = (key == "True") if key_type is bool or key_type is np.bool_ else key_type(key)
        dict.__setitem__(result, converted, reader.node(value, depth))
    return result if plain else reader.build.build(result, None)


def _sequence(kind: type) -> Callable[[SkopsReader, dict[str, Any], int], Any]:
    def load(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
        reader.expect(node, kind)
        content = reader.content(node)
        if type(content) is not list:
            raise _refuse(f"a {kind.__name__} node whose content is not a list")
        return kind(reader.node(item, depth) for item in content)

    return load


def _bytes(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    kind = reader.expect(node, bytes, bytearray)
    return kind(reader.file(node))


def _slice(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    reader.expect(node, slice)
    content = reader.content(node)
    if type(content) is not dict or set(content) != {"start", "stop", "step"}:
        raise _refuse("a slice that is not start, stop, step")
    parts = (content["start"], content["stop"], content["step"])
    if not all(p is None or type(p) is int for p in parts):
        raise _refuse("a slice of something other than integers")
    return slice(*parts)


def _reference(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    # A function or a type held as a value: where it may sit is the schema's to say.
    return reader.cls(node)


def _partial(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    import functools

    reader.expect(node, functools.partial)
    content = reader.content(node)
    if type(content) is not dict or set(content) != {"func", "args", "kwds", "namespace"}:
        raise _refuse("a partial that is not func, args, kwds, namespace")
    func = reader.node(content["func"], depth)
    state = (func, *(reader.node(content[key], depth) for key in ("args", "kwds", "namespace")))
    partial = reader.build.call(functools.partial, (func,))
    return reader.build.build(partial, (state[0], tuple(state[1]) if type(state[1]) is list else state[1], *state[2:]))


def _object(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    obj = reader.build.new(reader.cls(node))
    if node.get("content") is None:
        return obj  # no state: given the empty one when the load finishes, and judged then
    return reader.build.build(obj, reader.node(node["content"], depth))


def _constructor(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    args = reader.child(node, "content", depth)
    return reader.build.call(reader.cls(node), tuple(args) if type(args) is list else args)


def _reduce(constructor: Callable[[SkopsReader, dict[str, Any]], Any]) -> Any:
    def load(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
        reduce = node.get("__reduce__")
        if type(reduce) is not dict or "args" not in reduce:
            raise _refuse(f"a {node['__loader__']} without its constructor arguments")
        args = reader.node(reduce["args"], depth)
        obj = reader.build.call(constructor(reader, node), tuple(args) if type(args) is list else args)
        attrs = reader.child(node, "content", depth)
        if reader.build.awaiting(obj):
            return reader.build.build(obj, attrs)
        if attrs not in ({}, (), None):
            raise _refuse(
                f"{reader.build.name_of(obj)} is rebuilt from its arguments alone; the file gives a state too"
            )
        return obj

    return load


def _tree_class(reader: SkopsReader, node: dict[str, Any]) -> Any:
    return reader.build.table.resolve("sklearn.tree._tree", "Tree")


def _array(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    kind = reader.cls(node)
    if node.get("type") == "numpy":
        array = read_npy(reader.file(node))
        if kind is np.ndarray:
            return array
        if kind is np.matrix and array.ndim == 2:
            return np.asmatrix(array)
        if isinstance(kind, type) and issubclass(kind, np.generic) and array.ndim == 0 and array.dtype.type is kind:
            return array[()]  # a numpy scalar, saved as a 0-d array
        raise _refuse(f"an array node of {node.get('__module__')}.{node.get('__class__')}")
    if node.get("type") == "json" and kind is np.ndarray:
        shape = reader.child(node, "shape", depth)
        items = reader.content(node)
        if not nb.is_shape(tuple(shape) if type(shape) in (list, tuple) else None) or type(items) is not list:
            raise _refuse("an object array without a shape")
        shape = tuple(shape)
        result = np.empty(shape, dtype=object)
        flat = _flatten([reader.node(item, depth) for item in items], len(shape) - 1) if shape else []
        if len(flat) != nb.count_of(shape):
            raise _refuse(f"an object array of shape {shape} with {len(flat)} items")
        result.reshape(-1)[:] = flat if flat else result.reshape(-1)
        return result
    raise _refuse("an array node of an unknown kind")


def _flatten(items: list[Any], levels: int) -> list[Any]:
    """skops writes an n-d object array as nested lists (`tolist()`)."""
    for _ in range(levels):
        if not all(type(item) is list for item in items):
            raise _refuse("an object array whose nesting does not match its shape")
        items = [inner for item in items for inner in item]
    return items


def _masked(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    reader.expect(node, np.ma.MaskedArray)
    content = reader.content(node)
    if type(content) is not dict or set(content) != {"data", "mask"}:
        raise _refuse("a masked array that is not data and mask")
    data, mask = reader.node(content["data"], depth), reader.node(content["mask"], depth)
    if type(data) is not np.ndarray or data.dtype.names is not None:
        raise _refuse("a masked array whose data is not an array")
    if not (type(mask) is np.ndarray and mask.dtype == bool and mask.shape == data.shape) and mask is not np.False_:
        raise _refuse("a masked array whose mask is not one flag per element")
    return np.ma.MaskedArray(data, mask)


def _dtype(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    array = reader.child(node, "content", depth)
    if type(array) is not np.ndarray or not nb.plain_dtype(array.dtype):
        raise _refuse("a dtype node without its empty array")
    return array.dtype


def _random_state(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    state = reader.child(node, "content", depth)
    random_state = nb.call_random_state(reader.build, ("MT19937",))
    return reader.build.build(random_state, state)


def _generator(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    content = reader.content(node)
    if type(content) is not dict or "bit_generator" not in content:
        raise _refuse("a random generator without its bit generator state")
    state = reader.node(content["bit_generator"], depth)
    name = state.get("bit_generator") if type(state) is dict else None
    generator = nb.call_generator(reader.build, (name,))
    return reader.build.build(generator, state)


def _sparse(reader: SkopsReader, node: dict[str, Any], depth: int) -> Any:
    """scipy's .npz, read by the gate: the arrays through `read_npy`, the matrix made by scipy's own
    constructor, then held to the schema and invariants of the pickled state of its class."""
    cls = reader.cls(node)
    with zipfile.ZipFile(io.BytesIO(reader.file(node))) as inner:
        check_inflation(inner, reader.max_bytes, reader.max_ratio, "sparse matrix in the skops file")
        arrays = {name.removesuffix(".npy"): read_npy(inner.read(name)) for name in inner.namelist()}
    fmt = arrays.get("format")
    fmt = (
        fmt.item().decode() if fmt is not None and fmt.dtype.kind == "S" else (fmt.item() if fmt is not None else None)
    )
    shape = arrays.get("shape")
    if fmt not in ("csr", "csc", "coo") or shape is None or shape.shape != (2,) or shape.dtype.kind not in "iu":
        raise _refuse("a sparse matrix that is not csr, csc or coo with a shape")
    dims = (int(shape[0]), int(shape[1]))
    keys = ("data", "row", "col") if fmt == "coo" else ("data", "indices", "indptr")
    if set(arrays) != {"format", "shape", *keys}:
        raise _refuse(f"a {fmt} matrix with other arrays than {keys}")
    for key in keys:
        if arrays[key].ndim != 1 or (key != "data" and arrays[key].dtype.kind not in "iu"):
            raise _refuse(f"a {fmt} matrix whose {key} is not a vector of integers")
    parts = (arrays["data"], (arrays["row"], arrays["col"])) if fmt == "coo" else tuple(arrays[k] for k in keys)
    scratch = object.__new__(cls)
    if getattr(scratch, "format", None) != fmt:
        raise _refuse(f"a {fmt} matrix saved as another class")
    try:
        matrix = cls(parts, shape=dims)
    except (ValueError, TypeError) as exc:
        raise InvalidStructure(cls.__name__, "arrays", f"are refused by scipy: {exc}") from exc
    state = dict(vars(matrix))
    built = reader.build.new(cls)
    return reader.build.build(built, state)


_LOADERS: dict[str, Callable[[SkopsReader, dict[str, Any], int], Any]] = {
    "JsonNode": _json,
    "DictNode": _dict,
    "ListNode": _sequence(list),
    "TupleNode": _sequence(tuple),
    "SetNode": _sequence(set),
    "BytesNode": _bytes,
    "BytearrayNode": _bytes,
    "SliceNode": _slice,
    "FunctionNode": _reference,
    "TypeNode": _reference,
    "PartialNode": _partial,
    "ObjectNode": _object,
    "ConstructorFromReduceNode": _constructor,
    "TreeNode": _reduce(_tree_class),
    "LossNode": _reduce(lambda reader, node: reader.cls(node)),
    "NdArrayNode": _array,
    "MaskedArrayNode": _masked,
    "DTypeNode": _dtype,
    "RandomStateNode": _random_state,
    "RandomGeneratorNode": _generator,
    "SparseMatrixNode": _sparse,
}


def load_skops(data: bytes, build: Construction, max_bytes: int, max_ratio: int) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        check_inflation(archive, max_bytes, max_ratio, "skops zip")
        return SkopsReader(archive, build, max_bytes, max_ratio).load()
