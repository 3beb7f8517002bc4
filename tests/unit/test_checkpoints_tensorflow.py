"""SavedModel graphs against the op allowlist, in the graph, in every library function and in every
function-valued attribute; the checkpoint ops only where the SaverDef uses them; variables checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support import tf_writer as tfw
from training_gate.inspector.checkpoints import judge_artifact
from training_gate.inspector.checkpoints.errors import Reason, Refused
from training_gate.inspector.checkpoints.tf_bundle import read_bundle
from training_gate.inspector.checkpoints.tf_savedmodel import check_graph, read_saved_model

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checkpoints"
SERVE = [
    tfw.node("x", "Placeholder"),
    tfw.node("w", "Const"),
    tfw.node("y", "MatMul", ("x", "w")),
    tfw.node("out", "Identity", ("y",)),
]


def check(tmp_path: Path, data: bytes):
    path = tmp_path / "saved_model.pb"
    path.write_bytes(data)
    return [check_graph(g, "saved_model.pb") for g in read_saved_model(path, "saved_model.pb")]


def refused(tmp_path: Path, data: bytes) -> Refused:
    with pytest.raises(Refused) as caught:
        check(tmp_path, data)
    assert caught.value.reason in (Reason.OPERATION_REFUSED, Reason.MALFORMED)
    return caught.value


def test_a_graph_of_computation_with_its_saver_passes(tmp_path: Path):
    graph, functions, saver = tfw.tf2_saver()
    (ops,) = check(tmp_path, tfw.saved_model(SERVE + graph, functions, saver))
    assert ops["SaveV2"] == 1 and ops["RestoreV2"] == 1 and ops["MatMul"] == 1


@pytest.mark.parametrize(
    ("op", "words"),
    [
        ("ReadFile", "a file op"),
        ("WriteFile", "a file op"),
        ("MatchingFiles", "a file op"),
        ("ImmutableConst", "a file op"),
        ("PyFunc", "a Python-function op"),
        ("EagerPyFunc", "a Python-function op"),
        ("_Send", "a system or network op"),
        ("CollectiveGatherV2", "a system or network op"),
        ("DebugIdentityV2", "a system or network op"),
        ("TFRecordDataset", "an input-pipeline op"),
        ("MapDataset", "an input-pipeline op"),
        ("AnonymousIteratorV3", "an input-pipeline op"),
        ("MakeIterator", "an input-pipeline op"),
        ("SomeCustomOp", "outside the gate's allowlist"),
    ],
)
def test_an_op_outside_the_allowlist_is_refused_by_name_in_the_graph(tmp_path: Path, op: str, words: str):
    error = refused(tmp_path, tfw.saved_model([*SERVE, tfw.node("bad", op, ("x",))]))
    assert op in str(error) and words in str(error)


@pytest.mark.parametrize("op", ["CudnnRNNBackpropV3", "IteratorGetNext", "LookupTableImportV2", "Einsum"])
def test_ops_tensorflow_writes_for_keras_layers_pass(tmp_path: Path, op: str):
    # A cuDNN recurrent layer's saved backward function; tf.keras's saved adapt_step of a lookup layer takes
    # the next element of an iterator it is given (every op that could make one from a file is refused).
    (ops,) = check(tmp_path, tfw.saved_model([*SERVE, tfw.node("op", op, ("x",))]))
    assert ops[op] == 1


def test_every_library_function_is_checked_even_one_nothing_calls(tmp_path: Path):
    unused = tfw.function("__inference_unused_9", ("p",), [tfw.node("r", "ReadFile", ("p",))])
    assert "function __inference_unused_9: op ReadFile" in str(refused(tmp_path, tfw.saved_model(SERVE, [unused])))


@pytest.mark.parametrize(
    "attr",
    [
        tfw.attr_func("ReadFile"),
        tfw.attr_funcs("__inference_ok_1", "WriteFile"),
        tfw.attr_func("__inference_ok_1", {"then_branch": tfw.attr_func("PyFunc")}),
        tfw.attr_func("__inference_missing_7"),
    ],
)
def test_a_function_valued_attribute_must_name_a_library_function_or_an_allowed_op(tmp_path: Path, attr: bytes):
    ok = tfw.function("__inference_ok_1", ("a",), [tfw.node("i", "Identity", ("a",))])
    call = tfw.node("call", "StatefulPartitionedCall", ("x",), {"f": attr})
    error = refused(tmp_path, tfw.saved_model([*SERVE, call], [ok]))
    assert "as a function" in str(error)


def test_a_function_valued_attribute_naming_an_allowed_op_passes(tmp_path: Path):
    call = tfw.node("call", "PartitionedCall", ("x",), {"f": tfw.attr_func("Relu")})
    check(tmp_path, tfw.saved_model([*SERVE, call]))


def test_checkpoint_ops_in_a_serving_function_are_refused(tmp_path: Path):
    graph, functions, saver = tfw.tf2_saver()
    leak = tfw.function("__inference_serve_5", ("x", "p"), [tfw.node("s", "SaveV2", ("p", "n", "sl", "x"))])
    serve = tfw.node("serving", "StatefulPartitionedCall", ("x",), {"f": tfw.attr_func("__inference_serve_5")})
    error = refused(tmp_path, tfw.saved_model([*SERVE, *graph, serve], [*functions, leak], saver))
    assert "SaveV2" in str(error) and "save path" in str(error)


def test_the_saver_functions_may_not_be_called_from_serving(tmp_path: Path):
    graph, functions, saver = tfw.tf2_saver()
    serve = tfw.node("serving", "StatefulPartitionedCall", ("x",), {"f": tfw.attr_func("__inference__traced_save_1")})
    assert "SaveV2" in str(refused(tmp_path, tfw.saved_model([*SERVE, *graph, serve], functions, saver)))


def test_a_restore_that_writes_or_reads_a_path_of_its_own_is_refused(tmp_path: Path):
    graph, functions, saver = tfw.tf2_saver()
    writes = tfw.function(
        "__inference__traced_restore_2",
        ("file_prefix", "v"),
        [tfw.node("s", "SaveV2", ("file_prefix", "n", "sl", "v"))],
    )
    assert "save path" in str(refused(tmp_path, tfw.saved_model(SERVE + graph, [functions[0], writes], saver)))
    reads = tfw.function(
        "__inference__traced_restore_2",
        ("file_prefix", "v"),
        [tfw.node("c", "Const"), tfw.node("r", "RestoreV2", ("c:output:0", "n", "sl"))],
    )
    assert "not the path the loader feeds" in str(
        refused(tmp_path, tfw.saved_model(SERVE + graph, [functions[0], reads], saver))
    )


def test_a_tf1_saver_in_the_graph_is_allowed_only_on_its_own_nodes(tmp_path: Path):
    saver_nodes = [
        tfw.node("save/Const", "Const"),
        tfw.node("v", "VariableV2"),
        tfw.node("save/SaveV2", "SaveV2", ("save/Const", "names", "slices", "v")),
        tfw.node("save/control_dependency", "Identity", ("save/Const", "^save/SaveV2")),
        tfw.node("save/RestoreV2", "RestoreV2", ("save/Const", "names", "slices")),
        tfw.node("save/Assign", "Assign", ("v", "save/RestoreV2")),
        tfw.node("save/restore_all", "NoOp", ("^save/Assign",)),
    ]
    saver = ("save/Const:0", "save/control_dependency:0", "save/restore_all")
    check(tmp_path, tfw.saved_model(SERVE + saver_nodes, saver=saver))
    rogue = tfw.node("leak/SaveV2", "SaveV2", ("x", "names", "slices", "v"))
    assert "SaveV2" in str(refused(tmp_path, tfw.saved_model([*SERVE, *saver_nodes, rogue], saver=saver)))


def test_printing_is_allowed_to_the_log_never_to_a_file(tmp_path: Path):
    check(
        tmp_path,
        tfw.saved_model([*SERVE, tfw.node("p", "PrintV2", ("x",), {"output_stream": tfw.attr_string("stderr")})]),
    )
    error = refused(
        tmp_path,
        tfw.saved_model(
            [*SERVE, tfw.node("p", "PrintV2", ("x",), {"output_stream": tfw.attr_string("file:///etc/cron.d/x")})]
        ),
    )
    assert "writes a file" in str(error)


def test_a_gradient_naming_no_library_function_is_refused(tmp_path: Path):
    ok = tfw.function("__inference_ok_1", ("a",), [tfw.node("i", "Identity", ("a",))])
    assert "gradient" in str(
        refused(tmp_path, tfw.saved_model(SERVE, [ok], gradients=[("__inference_ok_1", "WriteFile")]))
    )


def test_two_library_functions_of_one_name_are_refused(tmp_path: Path):
    ok = tfw.function("f", ("a",), [tfw.node("i", "Identity", ("a",))])
    bad = tfw.function("f", ("a",), [tfw.node("r", "ReadFile", ("a",))])
    assert "two library functions named f" in str(refused(tmp_path, tfw.saved_model(SERVE, [ok, bad])))


# -- the SavedModel directory: variables and Keras metadata ----------------------------------------------------


def copy(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    shutil.copytree(FIXTURES / name, directory)
    return directory


def judge(directory: Path, model: str = "saved_model.pb"):
    files = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    return judge_artifact("TensorFlow", directory, model, files, directory.parent)


def test_a_changed_variable_byte_fails_its_crc(tmp_path: Path):
    directory = copy(tmp_path, "tf-module")
    data = directory / "variables" / "variables.data-00000-of-00001"
    bundle = read_bundle(directory / "variables" / "variables.index", "index")
    weight = next(e for e in bundle.entries if e.dtype == 1)
    raw = bytearray(data.read_bytes())
    raw[weight.offset + 1] ^= 0x40
    data.write_bytes(bytes(raw))
    assert "fails its CRC32C" in judge(directory).rejects[0]


def test_missing_or_short_variable_shards_are_refused(tmp_path: Path):
    directory = copy(tmp_path, "tf-module")
    data = directory / "variables" / "variables.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:10])
    assert "outside its shard" in judge(directory).rejects[0]
    data.unlink()
    assert "missing" in judge(directory).rejects[0]


def test_a_savedmodel_with_a_saver_needs_its_variables_index(tmp_path: Path):
    directory = copy(tmp_path, "tf-module")
    shutil.rmtree(directory / "variables")
    assert "no variables/variables.index" in judge(directory).rejects[0]


def test_a_lambda_in_keras_metadata_is_refused(tmp_path: Path):
    directory = copy(tmp_path, "tf-keras-savedmodel")
    lam = {"class_name": "Lambda", "config": {"function": ["YWJj", None, None], "function_type": "lambda"}}
    entry = tfw.field(1, tfw.field(2, 1) + tfw.field(4, "_tf_keras_layer") + tfw.field(5, json.dumps(lam)))
    (directory / "keras_metadata.pb").write_bytes(entry)
    assert "Lambda" in judge(directory).rejects[0]


def test_a_bare_checkpoint_reads_its_variables(tmp_path: Path):
    judgement = judge(copy(tmp_path, "tf-checkpoint"), "ckpt.index")
    assert (judgement.format, judgement.tensors, judgement.rejects) == ("TensorFlow checkpoint", 2, [])


def test_a_text_format_savedmodel_is_inconclusive_not_refused_unread(tmp_path: Path):
    (tmp_path / "saved_model.pbtxt").write_text("saved_model_schema_version: 1\nmeta_graphs {\n}\n")
    judgement = judge_artifact("TensorFlow", tmp_path, "saved_model.pbtxt", ["saved_model.pbtxt"], tmp_path)
    assert not judgement.rejects and "protobuf text format" in judgement.inconclusive[0]


def test_a_table_filled_from_a_file_is_inconclusive_unless_something_else_is_refused(tmp_path: Path):
    table = tfw.function(
        "__inference_initializer_3", ("t", "f"), [tfw.node("i", "InitializeTableFromTextFileV2", ("t", "f"))]
    )
    with pytest.raises(Refused) as caught:
        check(tmp_path, tfw.saved_model(SERVE, [table]))
    assert caught.value.reason is Reason.UNSUPPORTED and "fills a lookup table from a file" in str(caught.value)
    reader = tfw.function("__inference_z_9", ("p",), [tfw.node("r", "ReadFile", ("p",))])
    error = refused(tmp_path, tfw.saved_model(SERVE, [table, reader]))
    assert error.reason is Reason.OPERATION_REFUSED and "ReadFile" in str(error)
