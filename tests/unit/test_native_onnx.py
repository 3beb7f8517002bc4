"""ONNX models read at the wire level before onnx and onnxruntime: tensor sizes, external data, operator domains."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.support.native_fixtures import NATIVE, fixtures, probe
from training_gate.inspector.native import onnx_runtime
from training_gate.inspector.native.errors import NativeRefusal, Reason
from training_gate.inspector.native.onnx_wire import OnnxLimits, read_onnx_file, read_onnx_wire

ONNX = fixtures("onnx")


@pytest.mark.parametrize("fixture", ONNX, ids=[f["path"] for f in ONNX])
def test_every_fixture_passes_the_wire_reader_the_checker_and_predicts_like_onnxruntime(fixture):
    path = NATIVE / fixture["path"]
    summary = onnx_runtime.check_model(path)
    outputs = onnx_runtime.predict(path, probe(missing=0.0))

    assert summary.describe()["format"] == fixture["format"]
    assert summary.graph_inputs and summary.graph_outputs
    assert len(outputs) == len(fixture["outputs"])
    for output, expected in zip(outputs, fixture["outputs"], strict=True):
        np.testing.assert_allclose(np.asarray(output, dtype=np.float64), expected, atol=1e-5)


def test_zipmap_probabilities_come_out_as_rows_that_sum_to_one():
    path = NATIVE / "onnx" / "binary-logistic-zipmap.onnx"
    _, probabilities = onnx_runtime.predict(path, probe(missing=0.0))
    onnx_runtime.check_probabilities(probabilities)
    with pytest.raises(NativeRefusal) as caught:
        onnx_runtime.check_probabilities(np.asarray(probabilities) * 1.5)
    assert caught.value.reason == Reason.PREDICTION_INVALID


def test_a_sample_of_the_wrong_width_is_refused_before_onnxruntime_runs():
    with pytest.raises(NativeRefusal) as caught:
        onnx_runtime.predict(NATIVE / "onnx" / "binary-by-hand.onnx", [[1.0, 2.0, 3.0]])
    assert caught.value.reason == Reason.INPUT_WIDTH


# ---------------------------------------------------------------------------------------------------
# Hostile models, built here with onnx.helper (the protobuf is what an attacker writes byte for byte).


def _graph(initializers: list[TensorProto], nodes: list | None = None, width: int = 2) -> onnx.GraphProto:
    nodes = nodes or [helper.make_node("MatMul", ["x", initializers[0].name], ["y"])]
    return helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        initializers,
    )


def _model(graph: onnx.GraphProto, opsets: list | None = None) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _weights(name: str = "w") -> TensorProto:
    return numpy_helper.from_array(np.ones((2, 1), dtype=np.float32), name)


def refused(model: onnx.ModelProto | bytes, reason: Reason, directory: Path | None = None, **limits) -> NativeRefusal:
    payload = model if isinstance(model, bytes) else model.SerializeToString()
    with pytest.raises(NativeRefusal) as caught:
        read_onnx_wire(payload, directory, OnnxLimits(**limits) if limits else None)
    assert caught.value.reason == reason, caught.value
    return caught.value


def test_a_benign_hand_built_model_passes():
    summary = read_onnx_wire(_model(_graph([_weights()])).SerializeToString())
    assert [t.nbytes for t in summary.tensors] == [8]


def test_a_claimed_100_gb_initializer_is_refused_before_anything_is_allocated():
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[25_000_000_000, 1])
    tensor.raw_data = b"\x00" * 8
    error = refused(_model(_graph([tensor])), Reason.TENSOR_TOO_LARGE)
    assert "100000000000 bytes" in str(error)


def test_dims_whose_product_overflows_64_bits_are_refused():
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 62, 1 << 62, 1 << 62])
    refused(_model(_graph([tensor])), Reason.TENSOR_TOO_LARGE)


def test_raw_data_shorter_than_the_dims_declare_is_refused():
    tensor = _weights()
    tensor.raw_data = tensor.raw_data[:4]
    refused(_model(_graph([tensor])), Reason.TENSOR_SIZE_MISMATCH)


def test_typed_data_shorter_than_the_dims_declare_is_refused():
    tensor = helper.make_tensor("w", TensorProto.FLOAT, [2, 1], [1.0, 2.0])
    del tensor.float_data[1:]
    refused(_model(_graph([tensor])), Reason.TENSOR_SIZE_MISMATCH)


def test_a_tensor_inside_a_subgraph_is_checked_too():
    huge = TensorProto(name="c", data_type=TensorProto.FLOAT, dims=[1 << 40])
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], value=huge)],
        "branch",
        [],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)],
    )
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)
    refused(_model(_graph([_weights()], nodes=[node])), Reason.TENSOR_TOO_LARGE)


def test_a_custom_operator_domain_is_refused_unless_configured():
    node = helper.make_node("Evil", ["x", "w"], ["y"], domain="com.attacker")
    model = _model(
        _graph([_weights()], nodes=[node]), [helper.make_opsetid("", 17), helper.make_opsetid("com.attacker", 1)]
    )
    error = refused(model, Reason.OPERATOR_DOMAIN_REFUSED)
    assert "com.attacker" in str(error)
    allowed = OnnxLimits(domains=frozenset({"", "com.attacker"}))
    assert ("com.attacker", "Evil") in read_onnx_wire(model.SerializeToString(), None, allowed).operators


def test_a_model_local_function_may_use_its_own_domain():
    function = helper.make_function(
        "local", "Double", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])], [helper.make_opsetid("", 17)]
    )
    node = helper.make_node("Double", ["x"], ["y"], domain="local")
    model = _model(_graph([_weights()], nodes=[node]), [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    model.functions.append(function)
    assert ("local", "Double") in read_onnx_wire(model.SerializeToString()).functions


def _external(tmp_path: Path, location: str) -> onnx.ModelProto:
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 1])
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return _model(_graph([tensor]))


@pytest.mark.parametrize(
    "location",
    ["../outside.bin", "/etc/passwd", "sub/../../outside.bin", "C:\\weights.bin", "./", "a//b"],
    ids=["parent", "absolute", "climbs out", "drive path", "directory", "empty part"],
)
def test_external_data_outside_the_artifact_is_refused(tmp_path, location):
    (tmp_path / "outside.bin").write_bytes(b"\x00" * 8)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    refused(_external(model_dir, location), Reason.EXTERNAL_DATA_OUTSIDE, model_dir)


def test_external_data_through_a_link_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 8)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "weights.bin").symlink_to(tmp_path / "secret.bin")
    refused(_external(model_dir, "weights.bin"), Reason.EXTERNAL_DATA_OUTSIDE, model_dir)


def test_external_data_shorter_than_declared_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 4)
    refused(_external(tmp_path, "weights.bin"), Reason.TENSOR_SIZE_MISMATCH, tmp_path)


def test_missing_external_data_is_refused(tmp_path):
    refused(_external(tmp_path, "weights.bin"), Reason.EXTERNAL_DATA_OUTSIDE, tmp_path)


def test_the_fixture_with_external_data_is_read_where_it_lies(tmp_path):
    source = NATIVE / "onnx" / "binary-external-data"
    copy = tmp_path / "m"
    shutil.copytree(source, copy)
    summary = read_onnx_file(copy / "model.onnx")
    assert summary.external_files == {"weights.bin"}
    (copy / "weights.bin").write_bytes((copy / "weights.bin").read_bytes()[:-4])
    with pytest.raises(NativeRefusal) as caught:
        read_onnx_file(copy / "model.onnx")
    assert caught.value.reason == Reason.TENSOR_SIZE_MISMATCH


def test_a_length_past_the_end_is_refused():
    payload = _model(_graph([_weights()])).SerializeToString()
    # field 7 (graph), length-delimited, claiming 2^40 bytes
    refused(payload + b"\x3a\x80\x80\x80\x80\x80\x20", Reason.LENGTH_TOO_LARGE)


@pytest.mark.parametrize("cut", [1, 5, 20, -30, -1])
def test_truncated_models_are_refused(cut):
    payload = _model(_graph([_weights()])).SerializeToString()
    with pytest.raises(NativeRefusal) as caught:
        read_onnx_wire(payload[:cut])
    assert caught.value.reason in (
        Reason.TRUNCATED,
        Reason.LENGTH_TOO_LARGE,
        Reason.MALFORMED,
        Reason.TENSOR_SIZE_MISMATCH,
    )


def test_two_graph_fields_are_refused_because_protobuf_would_merge_them():
    payload = _model(_graph([_weights()])).SerializeToString()
    graph = _graph([_weights("other")]).SerializeToString()
    refused(payload + b"\x3a" + bytes([len(graph)]) + graph, Reason.MALFORMED)


def test_onnx_checker_failures_are_named(tmp_path):
    # The wire is well formed, but the graph uses an undefined input: onnx.checker says so.
    node = helper.make_node("MatMul", ["x", "undefined"], ["y"])
    path = tmp_path / "broken.onnx"
    path.write_bytes(_model(_graph([_weights()], nodes=[node])).SerializeToString())
    with pytest.raises(NativeRefusal) as caught:
        onnx_runtime.check_model(path)
    assert caught.value.reason == Reason.ONNX_CHECK_FAILED


def test_the_wire_reader_refuses_a_file_over_protobufs_limit_by_size(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(_model(_graph([_weights()])).SerializeToString())
    monkeypatch.setattr("training_gate.inspector.native.onnx_wire.PROTOBUF_LIMIT", 10)
    with pytest.raises(NativeRefusal) as caught:
        read_onnx_file(path)
    assert caught.value.reason == Reason.TENSOR_TOO_LARGE


def test_the_writer_is_the_producer_name_and_version_the_model_records():
    model = helper.make_model(
        _graph([numpy_helper.from_array(np.ones((2, 1), np.float32), "w")]),
        producer_name="skl2onnx",
        producer_version="1.17.0",
    )
    described = read_onnx_wire(model.SerializeToString()).describe()
    assert (described["producer"], described["writer_version"]) == ("skl2onnx", "skl2onnx 1.17.0")
    bare = helper.make_model(_graph([numpy_helper.from_array(np.ones((2, 1), np.float32), "w")]))
    assert read_onnx_wire(bare.SerializeToString()).describe()["writer_version"] is None
