"""Every checkpoint reader attacked with random bytes: flips, cuts, splices and insertions into real
fixtures give a reading or a named refusal (`Refused`), never another exception, and every loop is bounded
by the bytes present, so none can hang. The whole judgement never raises at all."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training_gate.inspector.checkpoints import judge_artifact
from training_gate.inspector.checkpoints.errors import Refused
from training_gate.inspector.checkpoints.hdf5 import read_hdf5
from training_gate.inspector.checkpoints.keras_model import read_keras_h5, read_keras_zip
from training_gate.inspector.checkpoints.safetensors import read_index, read_safetensors
from training_gate.inspector.checkpoints.tf_bundle import read_bundle
from training_gate.inspector.checkpoints.tf_savedmodel import check_graph, read_saved_model
from training_gate.inspector.checkpoints.torch_files import read_legacy, read_tar, read_zip

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checkpoints"
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _graph(path: Path, where: str) -> Any:
    return [check_graph(g, where) for g in read_saved_model(path, where)]


def _scratch(reader: Callable[..., Any]) -> Callable[[Path, str], Any]:
    def read(path: Path, where: str) -> Any:
        with tempfile.TemporaryDirectory() as scratch:
            return reader(path, where, Path(scratch))

    return read


SEEDS: dict[str, tuple[str, Callable[[Path, str], Any]]] = {
    "torch zip": ("torch-mixed-dtypes/model.pth", read_zip),
    "torch views": ("torch-views/model.pt", read_zip),
    "torchscript": ("torchscript/model.pt", read_zip),
    "torch legacy": ("torch-legacy/model.pth", read_legacy),
    "torch tar": ("torch-tar/model.pt", _scratch(read_tar)),
    "training arguments": ("hf-bert/training_args.bin", read_zip),
    "safetensors": ("hf-bert/model.safetensors", read_safetensors),
    "shard index": ("hf-gpt2-sharded/model.safetensors.index.json", read_index),
    "saved_model.pb": ("tf-keras3-export/saved_model.pb", _graph),
    "variables.index": ("tf-module/variables/variables.index", read_bundle),
    "keras zip": ("keras-sequential/model.keras", _scratch(read_keras_zip)),
    "keras h5": ("tf-keras-h5/model.h5", read_keras_h5),
    "weights h5": ("tf-keras-weights/model.weights.h5", read_hdf5),
}


@st.composite
def mutated(draw: st.DrawFn, names: list[str]) -> tuple[str, bytes]:
    name = draw(st.sampled_from(names))
    data = bytearray((FIXTURES / SEEDS[name][0]).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "splice", "insert"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif kind == "cut":
            data = data[:position]
        elif kind == "splice":
            data = data[:position] + data[draw(st.integers(position, len(data))) :]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return name, bytes(data)


def _read(name: str, data: bytes) -> None:
    relative, reader = SEEDS[name]
    with tempfile.TemporaryDirectory() as directory:
        source = FIXTURES / relative
        target = Path(directory) / relative
        # Files the format spans (a SavedModel's variables, an index's shards) come along unchanged.
        for sibling in source.parent.rglob("*"):
            if sibling.is_file():
                copy = Path(directory) / sibling.relative_to(FIXTURES)
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_bytes(sibling.read_bytes())
        target.write_bytes(data)
        try:
            reader(target, relative)
        except Refused:
            pass


@FUZZ
@given(mutated(["torch zip", "torch views", "torchscript", "torch legacy", "torch tar", "training arguments"]))
def test_torch_readers_refuse_by_name_or_read(case: tuple[str, bytes]):
    _read(*case)


@FUZZ
@given(mutated(["safetensors", "shard index"]))
def test_safetensors_readers_refuse_by_name_or_read(case: tuple[str, bytes]):
    _read(*case)


@FUZZ
@given(mutated(["saved_model.pb", "variables.index"]))
def test_tensorflow_readers_refuse_by_name_or_read(case: tuple[str, bytes]):
    _read(*case)


@FUZZ
@given(mutated(["keras zip", "keras h5", "weights h5"]))
def test_keras_and_hdf5_readers_refuse_by_name_or_read(case: tuple[str, bytes]):
    _read(*case)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(list(SEEDS)))
def test_the_whole_judgement_never_raises(case: tuple[str, bytes]):
    name, data = case
    relative = SEEDS[name][0]
    fixture = next(
        m for m in json.loads((FIXTURES / "manifest.json").read_text()) if relative.startswith(m["name"] + "/")
    )
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / fixture["name"]
        for file in fixture["files"]:
            (root / file).parent.mkdir(parents=True, exist_ok=True)
            (root / file).write_bytes((FIXTURES / fixture["name"] / file).read_bytes())
        (Path(directory) / relative).write_bytes(data)
        judgement = judge_artifact(fixture["framework"], root, fixture["model_file"], fixture["files"], Path(directory))
    assert isinstance(judgement.rejects, list)
