"""A TensorFlow SavedModel's graph read without TensorFlow, every operation checked against the allowlist.

`saved_model.pb` is a SavedModel message (tensorflow/core/protobuf/saved_model.proto: 1 schema version,
2 MetaGraphDef) around MetaGraphDefs (meta_graph.proto: 1 meta_info_def, 2 graph_def, 3 saver_def,
7 object_graph_def), each with a GraphDef (graph.proto: 1 node, 2 library) whose NodeDefs (node_def.proto:
1 name, 2 op, 3 input, 5 attr) and FunctionDefLibrary (function.proto: 1 function, 2 gradient;
FunctionDef: 1 signature, 3 node_def) hold the operations. Attribute values (attr_value.proto: 1 list,
2 s, 10 func; ListValue: 9 func; NameAttrList: 1 name, 2 attr) may name functions, which TensorFlow
instantiates, or ops, which it wraps as functions: every name must be a function of the library or an
allowed op.

The checkpoint ops are allowed only where the SaverDef puts them (3: SaverDef 1 filename_tensor_name,
2 save_tensor_name, 3 restore_op_name): in the nodes those names reach and in the functions those nodes
call, never in anything else's, so loading (restore) and serving never write; restore's RestoreV2 reads
from the prefix the loader feeds, not a constant path.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from training_gate.inspector.checkpoints import tf_ops
from training_gate.inspector.checkpoints.errors import Reason, refuse
from training_gate.inspector.checkpoints.wire import fields, message, number, text

MAX_DEPTH = 24
MAX_GRAPH_BYTES = (1 << 31) - 1  # protobuf's own limit on a message


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    functions: list[str]
    strings: dict[str, str]


@dataclass
class Function:
    name: str
    args: set[str]
    nodes: list[Node]


@dataclass
class MetaGraph:
    tags: list[str] = field(default_factory=list)
    version: str = ""
    nodes: list[Node] = field(default_factory=list)
    functions: dict[str, Function] = field(default_factory=dict)
    gradients: list[str] = field(default_factory=list)
    saver: tuple[str, str, str] | None = None
    user_metadata: list[str] = field(default_factory=list)


def _attr_functions(data: memoryview, where: str, depth: int, found: list[str]) -> None:
    """Function names an AttrValue names (func, list.func, and inside their NameAttrLists' attrs)."""
    if depth > MAX_DEPTH:
        raise refuse(Reason.LIMIT, "attributes nest too deeply", where)
    for num, _wire, value in fields(data, where):
        if num == 10:
            _name_attr_list(message(value, where), where, depth + 1, found)
        elif num == 1:
            for inner, _w, item in fields(message(value, where), where):
                if inner == 9:
                    _name_attr_list(message(item, where), where, depth + 1, found)


def _name_attr_list(data: memoryview, where: str, depth: int, found: list[str]) -> None:
    for num, _wire, value in fields(data, where):
        if num == 1:
            found.append(text(value, where))
        elif num == 2:
            for entry_num, _w, entry in fields(message(value, where), where):
                if entry_num == 2:
                    _attr_functions(message(entry, where), where, depth + 1, found)


def _node(data: memoryview, where: str) -> Node:
    node = Node("", "", [], [], {})
    for num, _wire, value in fields(data, where):
        if num == 1:
            node.name = text(value, where)
        elif num == 2:
            node.op = text(value, where)
        elif num == 3:
            node.inputs.append(text(value, where))
        elif num == 5:
            key, attr = "", None
            for entry_num, _w, entry in fields(message(value, where), where):
                if entry_num == 1:
                    key = text(entry, where)
                elif entry_num == 2:
                    attr = message(entry, where)
            if attr is not None:
                _attr_functions(attr, where, 0, node.functions)
                for attr_num, _w2, item in fields(attr, where):
                    if attr_num == 2 and isinstance(item, memoryview):
                        node.strings[key] = bytes(item).decode("utf-8", "replace")
    if not node.op:
        raise refuse(Reason.MALFORMED, f"node {node.name!r} has no op", where)
    return node


def _function(data: memoryview, where: str) -> Function:
    function = Function("", set(), [])
    for num, _wire, value in fields(data, where):
        if num == 1:  # the signature, an OpDef: 1 name, 2 input_arg (ArgDef: 1 name)
            for sig_num, _w, item in fields(message(value, where), where):
                if sig_num == 1:
                    function.name = text(item, where)
                elif sig_num == 2:
                    for arg_num, _w2, arg in fields(message(item, where), where):
                        if arg_num == 1:
                            function.args.add(text(arg, where))
        elif num == 3:
            function.nodes.append(_node(message(value, where), where))
    if not function.name:
        raise refuse(Reason.MALFORMED, "a library function without a name", where)
    return function


def _graph(data: memoryview, graph: MetaGraph, where: str) -> None:
    for num, _wire, value in fields(data, where):
        if num == 1:
            graph.nodes.append(_node(message(value, where), where))
        elif num == 2:
            for lib_num, _w, item in fields(message(value, where), where):
                if lib_num == 1:
                    function = _function(message(item, where), where)
                    if function.name in graph.functions:
                        raise refuse(Reason.MALFORMED, f"two library functions named {function.name}", where)
                    graph.functions[function.name] = function
                elif lib_num == 2:  # GradientDef: 1 function_name, 2 gradient_func
                    for grad_num, _w2, name in fields(message(item, where), where):
                        if grad_num == 2:
                            graph.gradients.append(text(name, where))


def _object_graph(data: memoryview, graph: MetaGraph, where: str) -> None:
    """SavedObjectGraph (saved_object_graph.proto): 1 nodes; SavedObject 4 user_object; SavedUserObject
    3 metadata, the JSON a Keras loader revives layers from."""
    for num, _wire, value in fields(data, where):
        if num != 1:
            continue
        for obj_num, _w, item in fields(message(value, where), where):
            if obj_num != 4:
                continue
            for user_num, _w2, entry in fields(message(item, where), where):
                if user_num == 3 and isinstance(entry, memoryview) and len(entry):
                    graph.user_metadata.append(text(entry, where))


def read_saved_model(path: Path, where: str) -> list[MetaGraph]:
    size = path.stat().st_size
    if size > MAX_GRAPH_BYTES:
        raise refuse(Reason.LIMIT, "saved_model.pb is larger than protobuf reads (2 GiB)", where)
    data = memoryview(path.read_bytes())
    graphs = []
    schema = None
    for num, _wire, value in fields(data, where):
        if num == 1:
            schema = number(value, where)
        elif num == 2:
            graphs.append(_meta_graph(message(value, where), where))
    if schema not in (None, 1) or not graphs:
        raise refuse(Reason.MALFORMED, "not a SavedModel (schema version 1 with a MetaGraphDef)", where)
    return graphs


def _meta_graph(data: memoryview, where: str) -> MetaGraph:
    graph = MetaGraph()
    for num, _wire, value in fields(data, where):
        if num == 1:
            for info_num, _w, item in fields(message(value, where), where):
                if info_num == 4:
                    graph.tags.append(text(item, where))
                elif info_num == 5:
                    graph.version = text(item, where)
        elif num == 2:
            _graph(message(value, where), graph, where)
        elif num == 3:
            names = {1: "", 2: "", 3: ""}
            for saver_num, _w, item in fields(message(value, where), where):
                if saver_num in names:
                    names[saver_num] = text(item, where)
            graph.saver = (names[1], names[2], names[3])
        elif num == 7:
            _object_graph(message(value, where), graph, where)
    return graph


def _node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":", 1)[0]


def _closure(roots: set[str], graph: MetaGraph) -> set[str]:
    seen: set[str] = set()
    stack = [r for r in roots if r in graph.functions]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in graph.functions[name].nodes:
            for called in (*node.functions, node.op):
                if called in graph.functions and called not in seen:
                    stack.append(called)
    return seen


def _ancestors(roots: list[str], by_name: dict[str, Node]) -> set[str]:
    found: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in found or name not in by_name:
            continue
        found.add(name)
        stack.extend(_node_name(i) for i in by_name[name].inputs)
    return found


WRITES = frozenset({"SaveV2", "MergeV2Checkpoints", "Save", "SaveSlices"})


def check_graph(graph: MetaGraph, where: str) -> Counter[str]:
    """Refuses any op outside the allowlist, any function name that is neither a library function nor
    an allowed op, and checkpoint ops outside the saver (writes only on its save path, reads only on its
    restore path from the prefix the loader feeds); returns the ops counted."""
    counts: Counter[str] = Counter()
    unverified: list[str] = []
    library = graph.functions
    by_name = {node.name: node for node in graph.nodes}
    filename_node, save_nodes, restore_nodes = "", set(), set()
    if graph.saver is not None:
        filename_node = _node_name(graph.saver[0])
        save_nodes = _ancestors([_node_name(graph.saver[1])], by_name)
        restore_nodes = _ancestors([_node_name(graph.saver[2])], by_name)
    saver_nodes = save_nodes | restore_nodes
    save_functions = _closure({f for n in save_nodes for f in by_name[n].functions}, graph)
    restore_functions = _closure({f for n in restore_nodes for f in by_name[n].functions}, graph)
    saver_functions = save_functions | restore_functions
    elsewhere = {f for n in graph.nodes if n.name not in saver_nodes for f in (*n.functions, n.op)}
    for name, function in library.items():
        if name not in saver_functions:
            elsewhere |= {f for n in function.nodes for f in (*n.functions, n.op)}
    elsewhere |= set(graph.gradients)
    reached_elsewhere = _closure(elsewhere, graph)

    def saver_op(node: Node, context: str, args: set[str] | None, save: bool, restore: bool) -> None:
        if node.op in WRITES and not (save and not restore):
            raise refuse(
                Reason.OPERATION_REFUSED,
                f"{context}: {node.op} ({tf_ops.category(node.op)}) outside the SaverDef's save path",
                where,
            )
        if node.op not in WRITES:
            prefix = _node_name(node.inputs[0]) if node.inputs else ""
            fed = prefix in args if args is not None else prefix == filename_node
            if not restore or not fed:
                raise refuse(
                    Reason.OPERATION_REFUSED,
                    f"{context}: {node.op} reads {prefix!r}, not the path the loader feeds the SaverDef's restore",
                    where,
                )

    def check(node: Node, context: str, args: set[str] | None, save: bool, restore: bool) -> None:
        counts[node.op] += 1
        for name in node.functions:
            if name not in library and name not in tf_ops.ALLOWED:
                raise refuse(
                    Reason.OPERATION_REFUSED,
                    f"{context}: node {node.name!r} names {name!r} as a function: no library function has that "
                    f"name and as an op it is {tf_ops.category(name)}",
                    where,
                )
        if node.op in library:
            return
        if node.op in tf_ops.SAVER:
            saver_op(node, context, args, save, restore)
            return
        if node.op in tf_ops.CONDITIONAL:
            attribute, allowed = tf_ops.CONDITIONAL[node.op]
            if node.strings.get(attribute, "stderr") in allowed:
                return
            raise refuse(
                Reason.OPERATION_REFUSED,
                f"{context}: {node.op} with {attribute}={node.strings.get(attribute)!r} (writes a file)",
                where,
            )
        if node.op in tf_ops.FILE_TABLES:
            unverified.append(f"{context}: {node.op}")
            return
        if node.op not in tf_ops.ALLOWED:
            raise refuse(Reason.OPERATION_REFUSED, f"{context}: op {node.op} is {tf_ops.category(node.op)}", where)

    for node in graph.nodes:
        check(node, "the graph", None, node.name in save_nodes, node.name in restore_nodes)
    for name, function in library.items():
        alone = name not in reached_elsewhere
        save, restore = alone and name in save_functions, alone and name in restore_functions
        for node in function.nodes:
            check(node, f"function {name}", function.args, save, restore)
    for name in graph.gradients:
        if name not in library and name not in tf_ops.ALLOWED:
            raise refuse(Reason.OPERATION_REFUSED, f"a gradient names {name!r}, which is no library function", where)
    if unverified:
        # Only once every other op passed: a refusal anywhere outranks this.
        raise refuse(
            Reason.UNSUPPORTED,
            f"{unverified[0]} fills a lookup table from a file (a vocabulary among the SavedModel's assets, or any "
            "path): the gate does not follow which file",
            where,
        )
    return counts
