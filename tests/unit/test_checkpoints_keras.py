"""Keras configurations against the gate's class allowlist, `.keras` and `.h5` files, and the Python HDF5
reader: hostile layers and modules refused by name, weights that do not fit the configuration refused,
HDF5 structures a C parser would follow (external files, cycles, addresses past the end) refused."""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from training_gate.inspector.checkpoints import judge_artifact
from training_gate.inspector.checkpoints.errors import Reason, Refused
from training_gate.inspector.checkpoints.hdf5 import _File, read_hdf5
from training_gate.inspector.checkpoints.keras_config import check_config
from training_gate.inspector.checkpoints.keras_model import _h5_lookups

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checkpoints"


def layer(class_name: str, module: str | None = "keras.layers", registered: str | None = None, **config) -> dict:
    return {
        "module": module,
        "class_name": class_name,
        "config": {"name": "x", **config},
        "registered_name": registered,
    }


def model(*layers: dict) -> dict:
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "m", "layers": list(layers)},
        "registered_name": None,
    }


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (model(layer("Lambda", function={"class_name": "__lambda__", "config": {"code": "YWJj"}})), "Lambda layer"),
        (model(layer("TFSMLayer", filepath="/tmp/m")), "TFSMLayer"),
        (model(layer("TorchModuleWrapper")), "TorchModuleWrapper"),
        (model(layer("StringLookup", vocabulary="/etc/passwd")), "vocabulary is str"),
        (model(layer("TextVectorization", idf_weights="/etc/passwd")), "idf_weights is str"),
        (model(layer("TextVectorization", standardize="os.system")), "standardize is 'os.system'"),
        (model(layer("Exec", module="keras.src.ops.numpy", registered="Exec")), "operation 'Exec'"),
        (model(layer("Cond", module="keras.src.ops.core", registered="Cond")), "operation 'Cond'"),
        (model(layer("Add", module="keras.src.ops.numpy", registered="acme>Add")), "operation 'Add'"),
        (model(layer("TFOpLambda", module=None, function="io.read_file")), "TFOpLambda calling 'io.read_file'"),
        (model(layer("TFOpLambda", module=None, function="compat.v1.py_func")), "'compat.v1.py_func'"),
        (model(layer("TFOpLambda", module=None, function="keras.utils.get_file")), "'keras.utils.get_file'"),
        (model(layer("SlicingOpLambda", module=None, function="strings.format")), "'strings.format'"),
        (model(layer("TFOpLambda", module=None, function="math.add", registered="acme>X")), "TFOpLambda"),
        (model(layer("ClassMethod", module=None, cls_symbol="RaggedTensor.from_tensor")), "'ClassMethod'"),
        (model(layer("Dense", module="os")), "module 'os'"),
        (model(layer("Dense", module="keras.src.utils.file_utils")), "module 'keras.src.utils.file_utils'"),
        (model(layer("get_file", module="keras.utils")), "'get_file'"),
        (model(layer("Scale", module=None, registered="acme>Scale")), "acme>Scale"),
        (model(layer("Dense", registered="acme>Dense")), "registered as 'acme>Dense'"),
        (
            model(
                layer(
                    "Dense",
                    activation={
                        "module": "os",
                        "class_name": "function",
                        "config": "system",
                        "registered_name": "system",
                    },
                )
            ),
            "function 'system'",
        ),
        (
            model(
                layer("Dense", activation={"module": "keras.activations", "class_name": "function", "config": "eval"})
            ),
            "function 'eval'",
        ),
        (model(layer("Bidirectional", layer=layer("Lambda"))), "Lambda"),
        (model(layer("TimeDistributed", layer=layer("Dense", module="subprocess"))), "subprocess"),
        (model(layer("RNN", cell={"class_name": "EvilCell", "config": {}})), "EvilCell"),
        (model(layer("Dense", kernel_initializer={"class_name": "Custom>Evil", "config": {}})), "Custom>Evil"),
        (
            model(layer("Dense", anything={"function": ["YWJj", None, None], "function_type": "lambda"})),
            "serialized Python function",
        ),
    ],
)
def test_objects_outside_the_allowlist_are_refused_wherever_they_nest(config: dict, words: str):
    with pytest.raises(Refused) as caught:
        check_config(config, "config.json")
    assert caught.value.reason is Reason.LAYER_REFUSED and words in str(caught.value)


def test_what_keras_itself_writes_passes():
    config = model(
        layer("InputLayer", batch_shape=[None, 4]),
        layer(
            "Dense",
            units=3,
            activation="relu",
            kernel_initializer={"module": "keras.initializers", "class_name": "GlorotUniform", "config": {}},
        ),
        {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": {"layers": []},
            "registered_name": "Functional",
        },
    )
    config["compile_config"] = {"optimizer": {"class_name": "Custom>Adam", "config": {}}, "loss": "mse"}
    assert check_config(config, "config.json").count("Dense") == 1


def test_operations_lookups_and_tensorflow_arithmetic_keras_writes_pass():
    config = model(
        layer("Multiply", module="keras.src.ops.numpy", registered="Multiply"),
        layer("Cast", module="keras.src.ops.core", registered=None),
        layer("StringLookup", vocabulary=None, idf_weights=None),
        layer("IntegerLookup", vocabulary=[3, 5, 7]),
        layer("TextVectorization", standardize="lower_and_strip_punctuation", split="whitespace", vocabulary=None),
        layer("TFOpLambda", module=None, function="__operators__.add"),
        layer("TFOpLambda", module=None, function="compat.v1.nn.relu"),
        layer("TFOpLambda", module=None, function="math.multiply"),
        layer("SlicingOpLambda", module=None, function="__operators__.getitem"),
        layer("TFOpLambda", module=None, function="reshape"),
    )
    assert "StringLookup" in check_config(config, "config.json")


@pytest.mark.parametrize(
    ("version", "vocabulary", "words"),
    [("2.21.0", ["a", "b"], "tf.keras cannot load it"), ("3.15.1", None, "an empty vocabulary")],
)
def test_a_lookup_layer_in_an_h5_model_is_broken(version: str, vocabulary, words: str):
    config = model(layer("StringLookup", vocabulary=vocabulary))
    with pytest.raises(Refused, match=words):
        _h5_lookups(config, version, "model.h5")
    _h5_lookups(model(layer("StringLookup", vocabulary=["a", "b"])), "3.15.1", "model.h5")  # loads as saved


def test_a_configuration_nested_past_any_model_is_refused():
    deep: dict = {"class_name": "Dense", "config": {}}
    for _ in range(300):
        deep = {"class_name": "TimeDistributed", "config": {"layer": deep}}
    with pytest.raises(Refused, match="too deep"):
        check_config(deep, "config.json")


# -- .keras files -----------------------------------------------------------------------------------------------


def rewrite(source: Path, target: Path, change) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        entries = {info.filename: old.read(info.filename) for info in old.infolist()}
        for name, data in change(entries).items():
            new.writestr(name, data)


def judge_keras(tmp_path: Path, change, fixture: str = "keras-sequential"):
    rewrite(FIXTURES / fixture / "model.keras", tmp_path / "model.keras", change)
    return judge_artifact("Keras", tmp_path, "model.keras", ["model.keras"], tmp_path)


def with_config(edit):
    def change(entries: dict[str, bytes]) -> dict[str, bytes]:
        config = json.loads(entries["config.json"])
        edit(config)
        return {**entries, "config.json": json.dumps(config).encode()}

    return change


def test_a_dense_layer_whose_weights_do_not_fit_its_units_is_refused(tmp_path: Path):
    judgement = judge_keras(tmp_path, with_config(lambda c: c["config"]["layers"][1]["config"].update(units=9)))
    assert "WEIGHTS_MISMATCH" in judgement.rejects[0] and "its configuration builds" in judgement.rejects[0]


def test_a_layer_whose_weights_are_missing_is_refused(tmp_path: Path):
    def drop(entries: dict[str, bytes]) -> dict[str, bytes]:
        config = json.loads(entries["config.json"])
        config["config"]["layers"].append(layer("Dense", units=2))
        return {**entries, "config.json": json.dumps(config).encode()}

    assert "no weights for layers" in judge_keras(tmp_path, drop).rejects[0]


def test_a_keras_file_without_its_weights_or_config_is_refused(tmp_path: Path):
    judgement = judge_keras(tmp_path, lambda e: {k: v for k, v in e.items() if k != "model.weights.h5"})
    assert "without model.weights.h5" in judgement.rejects[0]
    other = tmp_path / "npz"
    other.mkdir()
    judgement = judge_keras(
        other, lambda e: {**{k: v for k, v in e.items() if k != "model.weights.h5"}, "model.weights.npz": b"PK"}
    )
    assert judgement.inconclusive and "npz" in judgement.inconclusive[0]


def test_a_config_with_duplicate_keys_or_invalid_json_is_refused(tmp_path: Path):
    judgement = judge_keras(
        tmp_path, lambda e: {**e, "config.json": b'{"class_name": "Sequential", "class_name": "Lambda"}'}
    )
    assert "duplicate key" in judgement.rejects[0]


def test_a_deflated_keras_file_is_read_like_a_stored_one(tmp_path: Path):
    source = FIXTURES / "keras-sequential" / "model.keras"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(tmp_path / "model.keras", "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info.filename))
    judgement = judge_artifact("Keras", tmp_path, "model.keras", ["model.keras"], tmp_path)
    assert not judgement.rejects and judgement.tensors == 14


# -- the HDF5 reader against hostile structures -----------------------------------------------------------------


def h5(tmp_path: Path, fixture: str = "keras-sequential-h5") -> tuple[Path, bytearray]:
    path = tmp_path / "model.h5"
    shutil.copy(FIXTURES / fixture / "model.h5", path)
    return path, bytearray(path.read_bytes())


def first_dataset_messages(
    path: Path, route: tuple[str, ...] = ("model_weights", "dense", "sequential", "dense", "kernel")
):
    """The object header messages of the dataset at `route`, found with the reader's own primitives."""
    reader = _File(path, "model.h5")
    try:
        _name, address = struct.unpack_from("<2Q", reader.read(0, 96, "the superblock"), 56)
        for name in route:
            table = next(data for kind, data, _at in reader.header(address) if kind == 0x11)
            btree, heap = struct.unpack_from("<2Q", table)
            address = dict(reader.symbols(btree, reader.local_heap(heap), 0))[name]
        return reader.header(address)
    finally:
        reader.handle.close()


def refused_h5(path: Path, data: bytearray) -> Refused:
    path.write_bytes(bytes(data))
    with pytest.raises(Refused) as caught:
        read_hdf5(path, "model.h5")
    return caught.value


def test_a_dataset_whose_data_lives_in_an_external_file_is_refused(tmp_path: Path):
    path, data = h5(tmp_path)
    layout = next(at for kind, _d, at in first_dataset_messages(path) if kind == 0x08)
    data[layout - 8 : layout - 6] = struct.pack("<H", 0x07)
    error = refused_h5(path, data)
    assert error.reason is Reason.MALFORMED and "external file" in str(error)


def test_a_dataset_pointing_past_the_end_of_the_file_is_refused(tmp_path: Path):
    path, data = h5(tmp_path)
    layout = next(at for kind, _d, at in first_dataset_messages(path) if kind == 0x08)
    data[layout + 2 : layout + 10] = struct.pack("<Q", len(data) - 4)
    assert refused_h5(path, data).reason in (Reason.MALFORMED, Reason.TRUNCATED)


def test_chunked_filtered_and_newer_formats_are_not_read_and_say_so(tmp_path: Path):
    path, data = h5(tmp_path)
    layout = next(at for kind, _d, at in first_dataset_messages(path) if kind == 0x08)
    chunked = bytearray(data)
    chunked[layout + 1] = 2
    assert refused_h5(path, chunked).reason is Reason.UNSUPPORTED
    newer = bytearray(data)
    newer[8] = 2
    assert refused_h5(path, newer).reason is Reason.UNSUPPORTED
    shared = bytearray(data)
    shared[layout - 4] |= 0x02
    assert refused_h5(path, shared).reason is Reason.UNSUPPORTED


def test_a_group_linked_into_itself_is_refused(tmp_path: Path):
    path, data = h5(tmp_path)
    head = bytes(data[: 24 + 72])
    _name, root_header = struct.unpack_from("<2Q", head, 24 + 32)
    at = data.find(b"SNOD")
    data[at + 8 + 8 : at + 8 + 16] = struct.pack("<Q", root_header)  # the first symbol now names the root
    assert "linked a second time" in str(refused_h5(path, data))


def test_a_btree_that_loops_is_refused(tmp_path: Path):
    path, data = h5(tmp_path)
    at = data.find(b"TREE")
    data[at + 5] = 1  # level 1: its child is read as a B-tree node, which is itself
    data[at + 24 + 8 : at + 24 + 16] = struct.pack("<Q", at)
    assert refused_h5(path, data).reason is Reason.MALFORMED


def test_a_string_naming_a_missing_global_heap_object_is_refused(tmp_path: Path):
    path, data = h5(tmp_path)
    at = data.find(b"GCOL")
    data[at + 16 : at + 18] = struct.pack("<H", 999)  # renumber the first heap object
    assert "global heap object" in str(refused_h5(path, data))


def test_hdf5_user_blocks_and_truncations_are_refused(tmp_path: Path):
    path, data = h5(tmp_path)
    assert refused_h5(path, bytearray(b"\0" * 512) + data).reason is Reason.MALFORMED
    assert refused_h5(path, data[: len(data) // 2]).reason in (Reason.TRUNCATED, Reason.MALFORMED)


def test_an_h5_model_whose_configuration_and_weights_disagree_is_refused(tmp_path: Path):
    path, data = h5(tmp_path, "tf-keras-h5")
    at = data.find(b"dense_1", data.find(b"GCOL"))
    data[at : at + 7] = b"dense_9"
    path.write_bytes(bytes(data))
    judgement = judge_artifact("Keras", tmp_path, "model.h5", ["model.h5"], tmp_path)
    assert "WEIGHTS_MISMATCH" in judgement.rejects[0] and "dense_9" in judgement.rejects[0]
