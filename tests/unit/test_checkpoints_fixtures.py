"""Every committed checkpoint fixture judged by the gate's readers, and the readers against the libraries.

The fixtures come from scripts/make_checkpoint_fixtures.py (its pinned TensorFlow and Keras environment,
torch's layouts written by hand); its manifest records each one's expected verdict and what TensorFlow,
h5py and safetensors themselves read from it: the gate's readers must see the same operations,
variables, datasets and tensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training_gate.domain.models import CheckStatus
from training_gate.inspector.checkpoints import TORCHSCRIPT, judge_artifact
from training_gate.inspector.checkpoints.hdf5 import datasets, read_hdf5
from training_gate.inspector.checkpoints.safetensors import read_safetensors
from training_gate.inspector.checkpoints.tf_bundle import read_bundle
from training_gate.inspector.checkpoints.tf_savedmodel import read_saved_model
from training_gate.inspector.frameworks import BY_NAME

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "checkpoints"
MANIFEST = json.loads((ROOT / "manifest.json").read_text())
BY_FIXTURE = {m["name"]: m for m in MANIFEST}


def judged(name: str, tmp_path: Path):
    fixture = BY_FIXTURE[name]
    judgement = judge_artifact(fixture["framework"], ROOT / name, fixture["model_file"], fixture["files"], tmp_path)
    status, detail = BY_NAME[fixture["framework"]].loaded_detail(judgement)
    return judgement, status, detail


def verdict(judgement, status: CheckStatus) -> str:
    if status == CheckStatus.FAIL:
        return "reject"
    if status == CheckStatus.INCONCLUSIVE or any(code == TORCHSCRIPT for code, _ in judgement.findings):
        return "inconclusive"
    return "pass"


def test_the_fixtures_cover_every_format_and_framework():
    formats = {m["framework"] for m in MANIFEST}
    assert formats == {"PyTorch", "Hugging Face", "TensorFlow", "Keras"}
    assert {m["expect"] for m in MANIFEST} == {"pass", "reject", "inconclusive"}
    assert sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file()) < 2 << 20  # small enough to commit


@pytest.mark.parametrize("name", sorted(BY_FIXTURE))
def test_each_fixture_gets_its_verdict_with_its_reason(name: str, tmp_path: Path):
    fixture = BY_FIXTURE[name]
    judgement, status, detail = judged(name, tmp_path)
    assert verdict(judgement, status) == fixture["expect"], detail
    assert fixture.get("reason", "") in detail
    if "tensors" in fixture:
        assert judgement.tensors == fixture["tensors"], detail
    if "parameters" in fixture:
        assert judgement.parameters == fixture["parameters"]
    if "dtypes" in fixture:
        assert judgement.dtypes == fixture["dtypes"]


@pytest.mark.parametrize("name", sorted(n for n, m in BY_FIXTURE.items() if "ops" in m))
def test_the_graph_reader_sees_every_op_tensorflow_sees(name: str):
    graphs = read_saved_model(ROOT / name / "saved_model.pb", name)
    ops = {node.op for g in graphs for node in g.nodes}
    ops |= {node.op for g in graphs for f in g.functions.values() for node in f.nodes}
    assert ops == set(BY_FIXTURE[name]["ops"])


@pytest.mark.parametrize("name", sorted(n for n, m in BY_FIXTURE.items() if m.get("variables")))
def test_the_variables_reader_sees_every_variable_tensorflow_lists(name: str):
    bundle = read_bundle(ROOT / name / "variables" / "variables.index", name)
    seen = sorted([e.name, list(e.shape)] for e in bundle.entries if e.name != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert seen == BY_FIXTURE[name]["variables"]


@pytest.mark.parametrize("name", sorted(n for n, m in BY_FIXTURE.items() if m["model_file"].endswith(".h5")))
def test_the_hdf5_reader_sees_every_dataset_h5py_sees(name: str):
    fixture = BY_FIXTURE[name]
    root = read_hdf5(ROOT / name / fixture["model_file"], name)
    assert fixture.get("library") or fixture["expect"] == "reject"
    if fixture.get("library"):
        found = sorted([path, list(d.shape), "<" + d.datatype.dtype.numpy[1:]] for path, d in datasets(root))
        assert found == sorted(fixture["library"])


def test_the_safetensors_reader_sees_every_tensor_the_library_sees():
    fixture = BY_FIXTURE["hf-bert"]
    read = read_safetensors(ROOT / "hf-bert" / "model.safetensors", "model.safetensors")
    assert {p.name: list(p.size) for p in read.places} == fixture["library"]


def test_a_hugging_face_training_directory_reads_every_auxiliary_file(tmp_path: Path):
    _, status, detail = judged("hf-bert", tmp_path)
    assert status == CheckStatus.PASS, detail
    for name in ("optimizer.pt", "rng_state.pth", "scheduler.pt", "training_args.bin"):
        assert name in detail
    assert "16 weight shapes and 2 layers match config.json (bert)" in detail


def test_remote_code_is_reported_as_code_not_run_and_found_for_the_policy(tmp_path: Path):
    judgement, status, detail = judged("hf-remote-code", tmp_path)
    assert status == CheckStatus.WARN
    assert "modeling_custom.CustomModel" in detail and "the gate did not run it" in detail
    assert [code for code, _ in judgement.findings] == ["REMOTE_CODE"]


def test_an_attention_mask_with_infinities_warns_and_is_found_for_the_policy(tmp_path: Path):
    judgement, status, _ = judged("torch-inf-mask", tmp_path)
    assert status == CheckStatus.WARN
    assert [code for code, _ in judgement.findings] == ["INFINITE_VALUES"]


def test_torchscript_weights_are_read_and_its_code_is_reported(tmp_path: Path):
    judgement, _, detail = judged("torchscript", tmp_path)
    assert judgement.tensors == 2 and not judgement.rejects
    assert [code for code, _ in judgement.findings] == [TORCHSCRIPT]
    assert "code/__torch__.py" in detail


def test_describe_gives_framework_format_parameters_dtypes_and_size(tmp_path: Path):
    judgement, _, _ = judged("hf-llama-bin", tmp_path)
    described = BY_NAME["Hugging Face"].describe(judgement)
    assert described["framework"] == "hugging-face"
    assert described["format"] == "torch-zip"
    assert described["parameters"] == 1704 and described["dtypes"] == "bfloat16=1704"
    assert (described["reader"], described["bytes_validated"]) == ("training-gate", True)
    assert described["tensor_bytes"] == 3408
    assert described["smoke_prediction"].startswith("not run")
    judgement, _, _ = judged("tf-keras3-export", tmp_path / "tf")
    described = BY_NAME["TensorFlow"].describe(judgement)
    assert (described["format"], described["writer_version"]) == ("saved-model", "tensorflow 2.21.0")
