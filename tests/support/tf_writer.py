"""SavedModel messages written at the protobuf wire level, for graphs TensorFlow would write and for
hostile ones it never would (field numbers from tensorflow/core/protobuf/saved_model.proto, meta_graph.proto,
framework/graph.proto, node_def.proto, function.proto, attr_value.proto)."""

from __future__ import annotations


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes | int | str) -> bytes:
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def attr_func(name: str, attrs: dict[str, bytes] | None = None) -> bytes:
    """An AttrValue whose `func` (10) is a NameAttrList naming `name`."""
    return field(10, field(1, name) + b"".join(field(2, field(1, k) + field(2, v)) for k, v in (attrs or {}).items()))


def attr_funcs(*names: str) -> bytes:
    """An AttrValue whose `list` (1) holds `func` entries (9)."""
    return field(1, b"".join(field(9, field(1, n)) for n in names))


def attr_string(value: str) -> bytes:
    return field(2, value)


def node(name: str, op: str, inputs: tuple[str, ...] = (), attrs: dict[str, bytes] | None = None) -> bytes:
    body = field(1, name) + field(2, op) + b"".join(field(3, i) for i in inputs)
    body += b"".join(field(5, field(1, k) + field(2, v)) for k, v in (attrs or {}).items())
    return body


def function(name: str, args: tuple[str, ...], nodes: list[bytes]) -> bytes:
    signature = field(1, name) + b"".join(field(2, field(1, a)) for a in args)
    return field(1, signature) + b"".join(field(3, n) for n in nodes)


def saved_model(
    nodes: list[bytes],
    functions: list[bytes] = (),  # type: ignore[assignment]
    saver: tuple[str, str, str] | None = None,
    gradients: list[tuple[str, str]] = (),  # type: ignore[assignment]
    tags: tuple[str, ...] = ("serve",),
) -> bytes:
    library = b"".join(field(1, f) for f in functions) + b"".join(
        field(2, field(1, a) + field(2, b)) for a, b in gradients
    )
    graph = b"".join(field(1, n) for n in nodes) + (field(2, library) if library else b"")
    meta = field(1, b"".join(field(4, t) for t in tags) + field(5, "2.21.0")) + field(2, graph)
    if saver is not None:
        meta += field(3, field(1, saver[0]) + field(2, saver[1]) + field(3, saver[2]))
    return field(1, 1) + field(2, meta)


def tf2_saver() -> tuple[list[bytes], list[bytes], tuple[str, str, str]]:
    """The saver a TF2 SavedModel carries: graph nodes calling a save and a restore function."""
    save = function(
        "__inference__traced_save_1",
        ("file_prefix", "v"),
        [
            node("StringJoin", "StringJoin", ("file_prefix", "Const")),
            node("ShardedFilename", "ShardedFilename", ("StringJoin:output:0",)),
            node("SaveV2", "SaveV2", ("ShardedFilename:filename:0", "names", "slices", "v")),
            node("MergeV2Checkpoints", "MergeV2Checkpoints", ("Pack:output:0", "file_prefix")),
        ],
    )
    restore = function(
        "__inference__traced_restore_2",
        ("file_prefix", "v"),
        [
            node("RestoreV2", "RestoreV2", ("file_prefix", "names", "slices")),
            node("Assign", "AssignVariableOp", ("v", "RestoreV2")),
        ],
    )
    graph = [
        node("saver_filename", "Placeholder"),
        node("v", "VarHandleOp"),
        node(
            "StatefulPartitionedCall_1",
            "StatefulPartitionedCall",
            ("saver_filename", "v"),
            {"f": attr_func("__inference__traced_save_1")},
        ),
        node(
            "StatefulPartitionedCall_2",
            "StatefulPartitionedCall",
            ("saver_filename", "v"),
            {"f": attr_func("__inference__traced_restore_2")},
        ),
    ]
    return graph, [save, restore], ("saver_filename:0", "StatefulPartitionedCall_1:0", "StatefulPartitionedCall_2")
