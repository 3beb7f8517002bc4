"""An ONNX model read at the protobuf wire level before `onnx.load` or onnxruntime allocate anything.

`onnx.load` parses the whole message (protobuf refuses messages over 2 GiB) and then trusts each
TensorProto: `dims` may claim a 100 GB initializer whose bytes are elsewhere or nowhere, and an
external-data `location` is joined to the model's directory (older onnx releases followed `..` and
absolute paths). This reader walks the ModelProto's fields itself (varints and lengths checked
against the bytes present, nesting bounded), visits every tensor in the graph, in subgraphs of
If/Loop/Scan attributes, in sparse initializers and in model-local functions, and checks:

- each tensor's element count from `dims` against a cap, and its data (raw_data, the typed repeated
  fields, or an external file's range) against the size the dims and data type declare;
- external data: a relative `location` with no `..`, no absolute or drive path, inside the model's
  directory, reached through no symbolic link, a regular file whose offset + length fit in it;
- operator domains: every opset import and node domain in the allowed set (the standard ones by
  default; a custom domain only when configured), nodes of model-local functions excepted.

Field numbers: onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
SparseTensorProto, FunctionProto, OperatorSetIdProto).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from training_gate.inspector.native.errors import Reason, refuse

PROTOBUF_LIMIT = (1 << 31) - 1  # protobuf's 2 GiB message limit: onnx.load cannot read more
DEFAULT_MAX_TENSOR_BYTES = 1 << 31
DEFAULT_MAX_TOTAL_BYTES = 1 << 33
# What onnxruntime implements: the ONNX domains and its own contrib operators.
DEFAULT_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
MAX_DEPTH = 32
# TensorProto.DataType -> bits per element (onnx.proto; 8 = STRING has no fixed size).
ELEMENT_BITS = {
    1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64, 15: 128,
    16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2,
}  # fmt: skip
STRING = 8
# Which repeated field carries each type's values (onnx.proto's comments on TensorProto), and how many
# stored values one element takes (complex numbers store two).
_FIELD_OF_TYPE = {1: 4, 14: 4, 6: 5, 2: 5, 3: 5, 4: 5, 5: 5, 9: 5, 10: 5, 16: 5, 17: 5, 18: 5, 19: 5, 20: 5}
_FIELD_OF_TYPE.update({21: 5, 22: 5, 23: 5, 24: 5, 25: 5, 26: 5, 7: 7, 11: 10, 15: 10, 12: 11, 13: 11})
_FIXED_WIDTH = {4: 4, 10: 8}  # float_data and double_data are fixed-size; the others are varints


@dataclass
class TensorInfo:
    name: str
    data_type: int
    dims: list[int]
    elements: int
    nbytes: int
    external: str | None = None


@dataclass
class OnnxSummary:
    ir_version: int = 0
    opsets: dict[str, int] = field(default_factory=dict)
    domains: set[str] = field(default_factory=set)
    operators: set[tuple[str, str]] = field(default_factory=set)
    functions: set[tuple[str, str]] = field(default_factory=set)
    tensors: list[TensorInfo] = field(default_factory=list)
    external_files: set[str] = field(default_factory=set)
    graph_inputs: list[str] = field(default_factory=list)
    graph_outputs: list[str] = field(default_factory=list)
    producer: str = ""
    producer_version: str = ""

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def describe(self) -> dict[str, object]:
        return {
            "framework": "onnx",
            "format": "onnx-external-data" if self.external_files else "onnx",
            "ir_version": self.ir_version,
            "opsets": dict(sorted(self.opsets.items())),
            "producer": self.producer,
            "writer_version": f"{self.producer} {self.producer_version}".strip() or None,
            "initializer_bytes": self.total_bytes,
        }


class _Wire:
    """Protobuf wire format over a memoryview: (field, wire type, value) triples, every length checked."""

    def __init__(self, data: memoryview, where: str) -> None:
        self.data = data
        self.pos = 0
        self.where = where

    def varint(self) -> int:
        result = shift = 0
        for _ in range(10):
            if self.pos >= len(self.data):
                raise refuse(Reason.TRUNCATED, "a varint runs past the end", self.where)
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result & ((1 << 64) - 1)
            shift += 7
        raise refuse(Reason.MALFORMED, "a varint longer than 10 bytes", self.where)

    def fields(self) -> Iterable[tuple[int, int, int | memoryview]]:
        while self.pos < len(self.data):
            key = self.varint()
            number, wire = key >> 3, key & 7
            if number == 0:
                raise refuse(Reason.MALFORMED, "field number 0", self.where)
            if wire == 0:
                yield number, wire, self.varint()
            elif wire == 1:
                yield number, wire, self._take(8)
            elif wire == 5:
                yield number, wire, self._take(4)
            elif wire == 2:
                size = self.varint()
                if size > len(self.data) - self.pos:
                    raise refuse(
                        Reason.LENGTH_TOO_LARGE,
                        f"field {number} declares {size} bytes, {len(self.data) - self.pos} remain",
                        self.where,
                    )
                yield number, wire, self._take(size)
            else:
                raise refuse(Reason.MALFORMED, f"wire type {wire} (groups are not ONNX)", self.where)

    def _take(self, size: int) -> memoryview:
        if size > len(self.data) - self.pos:
            raise refuse(Reason.TRUNCATED, f"{size} bytes past the end", self.where)
        view = self.data[self.pos : self.pos + size]
        self.pos += size
        return view


def _text(value: int | memoryview, where: str) -> str:
    if not isinstance(value, memoryview):
        raise refuse(Reason.MALFORMED, "a string field with a numeric wire type", where)
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(Reason.MALFORMED, "a string field is not UTF-8", where) from exc


def _message(value: int | memoryview, where: str) -> memoryview:
    if not isinstance(value, memoryview):
        raise refuse(Reason.MALFORMED, "a message field with a numeric wire type", where)
    return value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _count_packed(value: int | memoryview, number: int, where: str) -> int:
    """Elements in one occurrence of a repeated numeric field: packed (length-delimited) or one."""
    if not isinstance(value, memoryview):
        return 1
    width = _FIXED_WIDTH.get(number)
    if width:
        if len(value) % width:
            raise refuse(Reason.TENSOR_SIZE_MISMATCH, f"packed field {number} is not whole values", where)
        return len(value) // width
    wire = _Wire(value, where)
    count = 0
    while wire.pos < len(value):
        wire.varint()
        count += 1
    return count


@dataclass
class OnnxLimits:
    max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    domains: frozenset[str] = DEFAULT_DOMAINS


class _Walker:
    def __init__(self, directory: Path | None, limits: OnnxLimits) -> None:
        self.directory = directory
        self.limits = limits
        self.summary = OnnxSummary()
        self.total = 0

    # ModelProto
    def model(self, data: memoryview) -> OnnxSummary:
        seen_graph = False
        functions: list[memoryview] = []
        for number, _, value in _Wire(data, "model").fields():
            if number == 1 and isinstance(value, int):
                self.summary.ir_version = value
            elif number == 2:
                self.summary.producer = _text(value, "producer_name")
            elif number == 3:
                self.summary.producer_version = _text(value, "producer_version")
            elif number == 8:
                self.opset(_message(value, "opset_import"))
            elif number == 7:
                if seen_graph:
                    raise refuse(Reason.MALFORMED, "two graph fields (protobuf would merge them)", "model")
                seen_graph = True
                self.graph(_message(value, "graph"), "graph", 0, top=True)
            elif number == 25:
                functions.append(_message(value, "functions"))
            elif number == 20:
                raise refuse(Reason.UNSUPPORTED, "training_info (a training graph) in a model to serve", "model")
        if not seen_graph:
            raise refuse(Reason.MALFORMED, "no graph", "model")
        for function in functions:
            self.function(function)
        self.check_domains()
        return self.summary

    def opset(self, data: memoryview, where: str = "opset_import") -> None:
        domain, version = "", 0
        for number, _, value in _Wire(data, where).fields():
            if number == 1:
                domain = _text(value, where)
            elif number == 2 and isinstance(value, int):
                version = _signed(value)
        # skl2onnx imports the default domain twice at one version; onnx accepts that, not two versions.
        if self.summary.opsets.get(domain, version) != version and where == "opset_import":
            raise refuse(Reason.MALFORMED, f"opset {domain!r} imported at two versions", where)
        if where == "opset_import":
            self.summary.opsets[domain] = version

    def function(self, data: memoryview) -> None:
        name = domain = ""
        nodes = []
        for number, _, value in _Wire(data, "function").fields():
            if number == 1:
                name = _text(value, "function name")
            elif number == 10:
                domain = _text(value, "function domain")
            elif number == 7:
                nodes.append(_message(value, "function node"))
        self.summary.functions.add((domain, name))
        for node in nodes:
            self.node(node, f"function {name}", 1)

    def graph(self, data: memoryview, where: str, depth: int, top: bool = False) -> None:
        if depth > MAX_DEPTH:
            raise refuse(Reason.MALFORMED, f"subgraphs nested deeper than {MAX_DEPTH}", where)
        for number, _, value in _Wire(data, where).fields():
            if number == 1:
                self.node(_message(value, where), where, depth)
            elif number == 5:
                self.tensor(_message(value, where), f"{where} initializer")
            elif number == 15:
                self.sparse(_message(value, where), f"{where} sparse_initializer")
            elif number in (11, 12) and top:
                names = self.summary.graph_inputs if number == 11 else self.summary.graph_outputs
                names.append(self.value_name(_message(value, where)))

    def value_name(self, data: memoryview) -> str:
        for number, _, value in _Wire(data, "value_info").fields():
            if number == 1:
                return _text(value, "value_info name")
        return ""

    def node(self, data: memoryview, where: str, depth: int) -> None:
        op_type = domain = ""
        attributes = []
        for number, _, value in _Wire(data, where).fields():
            if number == 4:
                op_type = _text(value, "op_type")
            elif number == 7:
                domain = _text(value, "domain")
            elif number == 5:
                attributes.append(_message(value, where))
        self.summary.operators.add((domain, op_type))
        for attribute in attributes:
            self.attribute(attribute, f"{where} {op_type}", depth)

    def attribute(self, data: memoryview, where: str, depth: int) -> None:
        seen_single: set[int] = set()
        for number, _, value in _Wire(data, where).fields():
            if number in (5, 6, 22):
                if number in seen_single:
                    raise refuse(Reason.MALFORMED, f"attribute field {number} twice (protobuf merges)", where)
                seen_single.add(number)
            if number in (5, 10):
                self.tensor(_message(value, where), f"{where} attribute tensor")
            elif number in (6, 11):
                self.graph(_message(value, where), f"{where} subgraph", depth + 1)
            elif number in (22, 23):
                self.sparse(_message(value, where), f"{where} attribute sparse tensor")

    def sparse(self, data: memoryview, where: str) -> None:
        for number, _, value in _Wire(data, where).fields():
            if number in (1, 2):
                self.tensor(_message(value, where), where)

    def tensor(self, data: memoryview, where: str) -> None:
        dims: list[int] = []
        data_type = 0
        name = ""
        raw: memoryview | None = None
        location = 0
        external: dict[str, str] = {}
        typed: dict[int, int] = {}
        strings = 0
        for number, _, value in _Wire(data, where).fields():
            if number == 1:
                if isinstance(value, memoryview):
                    wire = _Wire(value, where)
                    while wire.pos < len(value):
                        dims.append(_signed(wire.varint()))
                else:
                    dims.append(_signed(value))
            elif number == 2 and isinstance(value, int):
                data_type = value
            elif number == 8:
                name = _text(value, "tensor name")
            elif number == 9:
                raw = _message(value, where)
            elif number == 14 and isinstance(value, int):
                location = value
            elif number == 13:
                key, text = self.entry(_message(value, where), where)
                if key in external:
                    raise refuse(Reason.MALFORMED, f"external_data key {key!r} twice", where)
                external[key] = text
            elif number == 6:
                strings += 1
            elif number in (4, 5, 7, 10, 11):
                typed[number] = typed.get(number, 0) + _count_packed(value, number, where)
            elif number == 3:
                raise refuse(Reason.UNSUPPORTED, "segmented tensors", where)
        where = f"{where} {name!r}"
        if data_type not in ELEMENT_BITS and data_type != STRING:
            raise refuse(Reason.UNSUPPORTED, f"tensor data type {data_type}", where)
        if any(d < 0 for d in dims):
            raise refuse(Reason.TENSOR_SIZE_MISMATCH, f"negative dimension in {dims}", where)
        # The element count, refused as soon as it passes the cap (a product of huge dims is huge).
        elements = 1
        for d in dims:
            elements *= d
            if elements > self.limits.max_tensor_bytes * 8:
                break
        bits = ELEMENT_BITS.get(data_type, 8)
        nbytes = math.ceil(elements * bits / 8)
        if nbytes > self.limits.max_tensor_bytes:
            raise refuse(
                Reason.TENSOR_TOO_LARGE,
                f"dims {dims} declare {nbytes} bytes, more than the {self.limits.max_tensor_bytes} allowed",
                where,
            )
        self.total += nbytes
        if self.total > self.limits.max_total_bytes:
            raise refuse(Reason.TENSOR_TOO_LARGE, f"tensors declare more than {self.limits.max_total_bytes} bytes")
        info = TensorInfo(name, data_type, dims, elements, nbytes)
        if location == 1:
            info.external = self.external(external, nbytes, where)
        elif external:
            raise refuse(Reason.MALFORMED, "external_data on a tensor stored in the file", where)
        elif data_type == STRING:
            if raw is not None or typed or strings != elements:
                raise refuse(Reason.TENSOR_SIZE_MISMATCH, f"{strings} strings for {elements} elements", where)
        elif raw is not None:
            if typed:
                raise refuse(Reason.TENSOR_SIZE_MISMATCH, "both raw_data and typed data", where)
            if len(raw) != nbytes:
                raise refuse(
                    Reason.TENSOR_SIZE_MISMATCH, f"raw_data holds {len(raw)} bytes, dims declare {nbytes}", where
                )
        else:
            expected_field = _FIELD_OF_TYPE.get(data_type)
            count = typed.get(expected_field, 0) if expected_field else 0
            if set(typed) - {expected_field}:
                raise refuse(Reason.TENSOR_SIZE_MISMATCH, f"data in fields {sorted(typed)} for type {data_type}", where)
            wanted = elements * (2 if data_type in (14, 15) else 1)
            if bits < 8:
                wanted = math.ceil(elements * bits / 8)
            if count != wanted:
                raise refuse(Reason.TENSOR_SIZE_MISMATCH, f"{count} values stored, dims declare {wanted}", where)
        self.summary.tensors.append(info)

    def entry(self, data: memoryview, where: str) -> tuple[str, str]:
        key = value = ""
        for number, _, item in _Wire(data, where).fields():
            if number == 1:
                key = _text(item, where)
            elif number == 2:
                value = _text(item, where)
        return key, value

    def external(self, entries: dict[str, str], nbytes: int, where: str) -> str:
        unknown = set(entries) - {"location", "offset", "length", "checksum", "basepath"}
        if unknown or "location" not in entries:
            raise refuse(Reason.MALFORMED, f"external_data keys {sorted(entries)}", where)
        location = entries["location"]
        path = safe_location(location, self.directory, where)
        try:
            offset = int(entries.get("offset", "0"))
            length = int(entries["length"]) if "length" in entries else None
        except ValueError as exc:
            raise refuse(Reason.MALFORMED, "external_data offset or length is not an integer", where) from exc
        size = path.stat().st_size
        if length is None:
            length = size - offset
        if offset < 0 or length != nbytes or offset + length > size:
            raise refuse(
                Reason.TENSOR_SIZE_MISMATCH,
                f"external data {location!r} [{offset}, +{length}) for {nbytes} declared bytes, file holds {size}",
                where,
            )
        self.summary.external_files.add(location)
        return location

    def check_domains(self) -> None:
        local = {domain for domain, _ in self.summary.functions}
        for domain in self.summary.opsets:
            if domain not in self.limits.domains and domain not in local:
                raise refuse(Reason.OPERATOR_DOMAIN_REFUSED, f"opset domain {domain!r} is not allowed", "opset_import")
        for domain, op_type in self.summary.operators:
            self.summary.domains.add(domain)
            if (domain, op_type) in self.summary.functions:
                continue
            if domain not in self.limits.domains:
                raise refuse(Reason.OPERATOR_DOMAIN_REFUSED, f"operator {domain}::{op_type} is not allowed", "graph")
            if domain not in self.summary.opsets and not (domain == "ai.onnx" and "" in self.summary.opsets):
                raise refuse(Reason.MALFORMED, f"operator domain {domain!r} is not imported", "graph")


def safe_location(location: str, directory: Path | None, where: str = "external data") -> Path:
    """The file an external-data `location` names, if it is inside `directory` and reached by no link."""
    if directory is None:
        raise refuse(Reason.EXTERNAL_DATA_OUTSIDE, f"{location!r}: the model was given without its directory", where)
    pure = PurePosixPath(location)
    if (
        not location
        or "\x00" in location
        or "\\" in location
        or ":" in location
        or pure.is_absolute()
        or any(part in ("..", "") for part in location.split("/"))
    ):
        raise refuse(Reason.EXTERNAL_DATA_OUTSIDE, f"location {location!r} is not a plain relative path", where)
    current = directory
    for part in pure.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError as exc:
            raise refuse(Reason.EXTERNAL_DATA_OUTSIDE, f"location {location!r} does not exist", where) from exc
        if stat.S_ISLNK(mode):
            raise refuse(Reason.EXTERNAL_DATA_OUTSIDE, f"location {location!r} goes through a link", where)
    if not stat.S_ISREG(os.lstat(current).st_mode):
        raise refuse(Reason.EXTERNAL_DATA_OUTSIDE, f"location {location!r} is not a regular file", where)
    return current


def read_onnx_wire(
    data: bytes | memoryview, directory: Path | None = None, limits: OnnxLimits | None = None
) -> OnnxSummary:
    """Checks an ONNX ModelProto's bytes (see the module docstring); `directory` holds its external data."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    if len(view) > PROTOBUF_LIMIT:
        raise refuse(Reason.TENSOR_TOO_LARGE, f"{len(view)} bytes: protobuf reads no message over 2 GiB", "model")
    return _Walker(directory, limits or OnnxLimits()).model(view)


def read_onnx_file(path: Path, limits: OnnxLimits | None = None) -> OnnxSummary:
    size = path.stat().st_size
    if size > PROTOBUF_LIMIT:
        raise refuse(Reason.TENSOR_TOO_LARGE, f"{size} bytes: protobuf reads no message over 2 GiB", "model")
    return read_onnx_wire(path.read_bytes(), path.parent, limits)
