"""safetensors headers as the reference implementation validates them, sharded indexes, and Hugging Face
directories: config.json's shapes for the architectures the gate models, auto_map reported as code."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.support.torch_writer import safetensors_file
from training_gate.inspector.checkpoints import judge_artifact
from training_gate.inspector.checkpoints.errors import Reason, Refused
from training_gate.inspector.checkpoints.safetensors import MAX_HEADER, read_safetensors

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checkpoints"
TENSORS = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, dtype=np.float16)}


def header(**overrides) -> dict:
    built = {
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "b": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]},
    }
    built.update(overrides)
    return built


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    return path


def refused(tmp_path: Path, data: bytes) -> Refused:
    with pytest.raises(Refused) as caught:
        read_safetensors(write(tmp_path, data), "model.safetensors")
    return caught.value


def test_a_valid_file_gives_each_tensor_its_place(tmp_path: Path):
    read = read_safetensors(write(tmp_path, safetensors_file(TENSORS, {"format": "pt"})), "model.safetensors")
    assert [(p.name, p.size, p.dtype.name) for p in read.places] == [("a", (2, 3), "float32"), ("b", (4,), "float16")]
    assert read.metadata == {"format": "pt"}


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"b": {"dtype": "F16", "shape": [4], "data_offsets": [28, 36]}}, "leaves a hole"),
        ({"b": {"dtype": "F16", "shape": [4], "data_offsets": [20, 28]}}, "overlaps"),
        ({"b": {"dtype": "F16", "shape": [5], "data_offsets": [24, 32]}}, "float16 [5]"),
        ({"b": {"dtype": "F128", "shape": [4], "data_offsets": [24, 32]}}, "dtype 'F128'"),
        ({"b": {"dtype": "F16", "shape": [-4], "data_offsets": [24, 32]}}, "shape [-4]"),
        ({"b": {"dtype": "F16", "shape": [4.0], "data_offsets": [24, 32]}}, "shape [4.0]"),
        ({"b": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32], "extra": 1}}, "not exactly"),
        ({"__metadata__": {"n": 1}}, "map of strings"),
        ({"b": {"dtype": "F16", "shape": [4], "data_offsets": [32, 24]}}, "[32, 24)"),
    ],
)
def test_each_header_rule_of_the_reference_implementation(tmp_path: Path, overrides: dict, words: str):
    error = refused(tmp_path, safetensors_file(TENSORS, header=header(**overrides)))
    assert error.reason is Reason.SAFETENSORS_HEADER and words in str(error)


def test_the_header_must_start_with_a_brace_and_be_json_with_no_duplicate_keys(tmp_path: Path):
    body = b' {"a": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}'
    assert "start with '{'" in str(refused(tmp_path, struct.pack("<Q", len(body)) + body))
    entry = b'{"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}'
    twice = b'{"a": ' + entry + b', "a": ' + entry + b"}"
    assert "duplicate key 'a'" in str(refused(tmp_path, struct.pack("<Q", len(twice)) + twice))
    nan = b'{"a": {"dtype": "U8", "shape": [NaN], "data_offsets": [0, 0]}}'
    assert "not valid JSON" in str(refused(tmp_path, struct.pack("<Q", len(nan)) + nan))


def test_a_header_length_past_the_cap_or_the_file_is_refused_before_it_is_read(tmp_path: Path):
    assert f"up to {MAX_HEADER}" in str(refused(tmp_path, struct.pack("<Q", 99_000_000) + b"{}"))
    assert "in a file of" in str(refused(tmp_path, struct.pack("<Q", 1000) + b"{}"))
    assert "shorter than" in str(refused(tmp_path, b"\x01\x00"))


def test_data_must_end_where_the_file_does(tmp_path: Path):
    data = safetensors_file(TENSORS)
    assert "the file at" in str(refused(tmp_path, data + b"\0" * 8))
    assert "the file at" in str(refused(tmp_path, data[:-2]))


# -- shards ---------------------------------------------------------------------------------------------------


def sharded(tmp_path: Path) -> Path:
    directory = tmp_path / "gpt2"
    shutil.copytree(FIXTURES / "hf-gpt2-sharded", directory)
    return directory


def judge_shards(directory: Path):
    files = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    return judge_artifact("Hugging Face", directory, "model.safetensors.index.json", files, directory.parent)


def edit_index(directory: Path, change) -> None:
    path = directory / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    change(index)
    path.write_text(json.dumps(index))


def test_a_sharded_checkpoint_reads_every_shard_and_matches_its_index(tmp_path: Path):
    judgement = judge_shards(sharded(tmp_path))
    assert not judgement.rejects and judgement.tensors == 28
    assert judgement.format == "Hugging Face gpt2: sharded safetensors (2 shards)"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda i: i["weight_map"].update({"transformer.h.0.ln_1.weight": "model-00002-of-00002.safetensors"}),
            "it is in",
        ),
        (lambda i: i["weight_map"].update({"ghost.weight": "model-00001-of-00002.safetensors"}), "no shard holds it"),
        (lambda i: i["weight_map"].pop("transformer.wpe.weight"), "does not name"),
        (lambda i: i["weight_map"].update({"transformer.wte.weight": "../../etc/passwd"}), "not a file beside it"),
        (
            lambda i: i["weight_map"].update({"transformer.wte.weight": "model-00003-of-00003.safetensors"}),
            "not in the artifact",
        ),
    ],
)
def test_an_index_that_disagrees_with_its_shards_is_refused(tmp_path: Path, change, words: str):
    directory = sharded(tmp_path)
    edit_index(directory, change)
    judgement = judge_shards(directory)
    assert judgement.rejects and words in judgement.rejects[0], judgement.rejects


def test_a_tensor_in_two_shards_is_refused(tmp_path: Path):
    directory = sharded(tmp_path)
    first = read_safetensors(directory / "model-00001-of-00002.safetensors", "x")
    second = {
        p.name: np.zeros(p.size, dtype=np.float32)
        for p in read_safetensors(directory / "model-00002-of-00002.safetensors", "y").places
    }
    second[first.places[0].name] = np.zeros(first.places[0].size, dtype=np.float32)
    (directory / "model-00002-of-00002.safetensors").write_bytes(safetensors_file(second))
    judgement = judge_shards(directory)
    assert "is in model-00001-of-00002.safetensors and in model-00002-of-00002.safetensors" in judgement.rejects[0]


# -- Hugging Face directories ------------------------------------------------------------------------------------


def hf(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    shutil.copytree(FIXTURES / name, directory)
    return directory


def judge_hf(directory: Path, model: str = "model.safetensors"):
    files = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    return judge_artifact("Hugging Face", directory, model, files, directory.parent)


def test_layers_missing_from_the_weights_reject(tmp_path: Path):
    directory = hf(tmp_path, "hf-bert")
    config = json.loads((directory / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (directory / "config.json").write_text(json.dumps(config))
    judgement = judge_hf(directory)
    assert "has 3 layers" in judgement.rejects[0] and "missing [2]" in judgement.rejects[0]


def test_an_architecture_the_gate_does_not_model_is_a_warning_not_a_pass_of_shapes(tmp_path: Path):
    directory = hf(tmp_path, "hf-bert")
    config = json.loads((directory / "config.json").read_text())
    config["model_type"] = "mystery"
    (directory / "config.json").write_text(json.dumps(config))
    judgement = judge_hf(directory)
    assert not judgement.rejects and any("shapes not checked" in w for w in judgement.warnings)


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ("[]", "not a JSON object"),
        ('{"auto_map": ["x"]}', "auto_map is not an object"),
        ('{"a": 1, "a": 2}', "duplicate key"),
    ],
)
def test_a_config_json_that_is_not_a_configuration_rejects(tmp_path: Path, document: str, words: str):
    directory = hf(tmp_path, "hf-bert")
    (directory / "config.json").write_text(document)
    judgement = judge_hf(directory)
    assert words in judgement.rejects[0]


def test_a_flax_checkpoint_is_inconclusive_not_passed_unread(tmp_path: Path):
    directory = hf(tmp_path, "hf-bert")
    (directory / "flax_model.msgpack").write_bytes(b"\x81\xa1a\x01")
    judgement = judge_hf(directory, "flax_model.msgpack")
    assert judgement.inconclusive and "Flax" in judgement.inconclusive[0]


def test_a_tokenizers_auto_map_is_remote_code_too(tmp_path: Path):
    # AutoTokenizer.from_pretrained(trust_remote_code=True) imports what tokenizer_config.json's auto_map names,
    # here from another repository of the Hub.
    directory = hf(tmp_path, "hf-bert")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": {"AutoTokenizer": ["acme/tools--tokenization_acme.AcmeTokenizer", None]}})
    )
    judgement = judge_hf(directory)
    assert not judgement.rejects
    ((code, sentence),) = judgement.findings
    assert code == "REMOTE_CODE" and "tokenizer_config.json AutoTokenizer" in sentence
    assert "acme/tools--tokenization_acme.AcmeTokenizer" in sentence
