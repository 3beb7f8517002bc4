"""The checkpoint of one framework, from its model file to the files its format spans.

- PyTorch: a torch file (zip, legacy, tar), a safetensors file, or a sharded checkpoint's index.
- Hugging Face: its directory's `config.json` (auto_map reported as code not run), the weights
  (`model.safetensors`, `pytorch_model.bin`, shards and index, `tf_model.h5`), their shapes against the
  configuration for the architectures the gate models.
- TensorFlow: a SavedModel (`saved_model.pb`: every op of every graph and function against the
  allowlist; `keras_metadata.pb` against the Keras allowlist; `variables/` present, its index read and
  its tensors checked) or a bare checkpoint (`<prefix>.index` and its shards).
- Keras: `.keras` and `.h5`.

Then every other torch file of the artifact is read by the restricted reader as an auxiliary.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path, PurePosixPath

from training_gate.inspector.checkpoints import keras_config
from training_gate.inspector.checkpoints.errors import Reason, Refused, refuse
from training_gate.inspector.checkpoints.huggingface import check_shapes, read_config, remote_code, side_auto_maps
from training_gate.inspector.checkpoints.judge import (
    REMOTE_CODE,
    SHARD,
    Judgement,
    judge_index,
    judge_safetensors,
    judge_torch,
    scan_auxiliaries,
    spanned_shards,
)
from training_gate.inspector.checkpoints.keras_model import read_keras_h5, read_keras_zip
from training_gate.inspector.checkpoints.tf_bundle import read_bundle
from training_gate.inspector.checkpoints.tf_savedmodel import check_graph, read_saved_model
from training_gate.inspector.checkpoints.wire import fields, message, text

FRAMEWORKS = ("PyTorch", "Hugging Face", "TensorFlow", "Keras")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def judge_artifact(framework: str, workdir: Path, model_file: str, files: list[str], scratch: Path) -> Judgement:
    judgement = Judgement(framework, model_file=model_file)
    spanned = {model_file}
    try:
        if framework == "PyTorch":
            spanned |= _pytorch(judgement, workdir, model_file, files, scratch)
        elif framework == "Hugging Face":
            spanned |= _hugging_face(judgement, workdir, model_file, files, scratch)
        elif framework == "TensorFlow":
            spanned |= _tensorflow(judgement, workdir, model_file, files)
        elif framework == "Keras":
            _keras(judgement, workdir, model_file, scratch)
        else:
            raise refuse(Reason.UNSUPPORTED, f"no checkpoint reader for {framework}", model_file)
    except Refused as exc:
        judgement.refused(exc, model_file)
    else:
        if judgement.tensors == 0 and framework != "TensorFlow":
            judgement.rejects.append(f"{model_file} holds no tensors: there are no weights to serve")
    scan_auxiliaries(judgement, workdir, files, spanned, scratch)
    _serving_code(judgement, files)
    return judgement


def _serving_code(judgement: Judgement, files: list[str]) -> None:
    """SageMaker's serving containers (PyTorch, TensorFlow, Hugging Face) import `code/inference.py` from the
    model archive and pip-install `code/requirements.txt` when the model is deployed: code the gate never runs
    nor judges, named in the report so a person knows it ships with the model."""
    code = sorted(f for f in files if f.startswith("code/") and f.endswith((".py", "requirements.txt")))
    if not code:
        return
    judgement.serving_code = code
    shown = ", ".join(code[:5]) + (f" and {len(code) - 5} more" if len(code) > 5 else "")
    hook = (
        "; code/inference.py is SageMaker's serving hook (model_fn, input_fn, predict_fn, output_fn)"
        if "code/inference.py" in code
        else ""
    )
    judgement.notes.append(
        f"serving code in the archive ({shown}): the serving container imports or installs it when the model is "
        f"deployed{hook}; the gate neither ran nor judged it"
    )


def _pytorch(judgement: Judgement, workdir: Path, name: str, files: list[str], scratch: Path) -> set[str]:
    if name.endswith(".index.json"):
        judge_index(judgement, workdir, name, scratch)
        return spanned_shards(files, name)
    if name.endswith(".safetensors"):
        judge_safetensors(judgement, workdir, name)
        return set()
    judge_torch(judgement, workdir, name, scratch)
    return set()


def _hugging_face(judgement: Judgement, workdir: Path, name: str, files: list[str], scratch: Path) -> set[str]:
    directory = PurePosixPath(name).parent
    here = [f for f in files if PurePosixPath(f).parent == directory]
    config_name = str(directory / "config.json") if str(directory) != "." else "config.json"
    spanned: set[str] = set()
    config = read_config(workdir / config_name, config_name)
    judgement.files.append(config_name)
    python_files = sorted(PurePosixPath(f).name for f in here if f.endswith(".py"))
    side = side_auto_maps(workdir / directory, [PurePosixPath(f).name for f in here], str(directory).strip("."))
    code = remote_code(config, python_files, side)
    if code:
        judgement.warnings.append(code)
        judgement.findings.append((REMOTE_CODE, code))
    base = PurePosixPath(name).name
    indexes = [f for f in here if PurePosixPath(f).name in INDEXES]
    index = indexes[0] if indexes else None
    if (SHARD.fullmatch(base) or base in INDEXES) and index is not None:
        shapes = judge_index(judgement, workdir, index, scratch)
        spanned = spanned_shards(files, index) | {index}
    elif base.endswith(".safetensors"):
        shapes = judge_safetensors(judgement, workdir, name)
    elif base == "tf_model.h5":
        read = read_keras_h5(workdir / name, name)
        judgement.format = "Hugging Face TensorFlow weights (tf_model.h5)"
        judgement.add_places(read.places)
        shapes = {}
    elif base.endswith(".msgpack"):
        raise refuse(Reason.UNSUPPORTED, "Flax weights (msgpack)", name)
    else:
        torch = judge_torch(judgement, workdir, name, scratch)
        shapes = {label: tensor.size for label, tensor in torch.tensors}
    judgement.format = f"Hugging Face {config.model_type or 'model'}: {judgement.format}"
    if shapes:
        checked, sentence = check_shapes(config, shapes, name)
        (judgement.notes if checked else judgement.warnings).append(sentence)
    return spanned


def _tensorflow(judgement: Judgement, workdir: Path, name: str, files: list[str]) -> set[str]:
    if name.endswith(".index"):
        bundle = read_bundle(workdir / name, name)
        judgement.format = "TensorFlow checkpoint"
        judgement.files.append(name)
        judgement.notes += bundle.notes
        judgement.add_places(bundle.places)
        prefix = name[: -len(".index")]
        return {f for f in files if f.startswith(prefix + ".data-")}
    if name.endswith(".pbtxt"):
        raise refuse(Reason.UNSUPPORTED, "a SavedModel in protobuf text format (saved_model.pbtxt)", name)
    directory = PurePosixPath(name).parent
    root = "" if str(directory) == "." else f"{directory}/"
    graphs = read_saved_model(workdir / name, name)
    judgement.files.append(name)
    ops: Counter[str] = Counter()
    for graph in graphs:
        ops.update(check_graph(graph, name))
    versions = sorted({g.version for g in graphs if g.version})
    judgement.writer = f"tensorflow {versions[0]}" if versions else None
    judgement.format = "TensorFlow SavedModel"
    judgement.notes.append(
        f"{len(graphs)} graph(s), {sum(len(g.functions) for g in graphs)} function(s), "
        f"{sum(ops.values())} operations of {len(ops)} kinds, all in the allowlist"
    )
    for graph in graphs:
        for metadata in graph.user_metadata:
            _keras_metadata_json(metadata, name)
    metadata_name = f"{root}keras_metadata.pb"
    if metadata_name in files:
        _keras_metadata(workdir / metadata_name, metadata_name)
        judgement.files.append(metadata_name)
    index = f"{root}variables/variables.index"
    if index not in files:
        if any(g.saver for g in graphs):
            raise refuse(Reason.MALFORMED, "the SavedModel has a saver but no variables/variables.index", name)
        judgement.notes.append("no variables (a graph of constants)")
        return set()
    bundle = read_bundle(workdir / index, index)
    judgement.files.append(index)
    judgement.notes += bundle.notes
    judgement.add_places(bundle.places)
    return {f for f in files if f.startswith(f"{root}variables/")} | {metadata_name}


def _keras_metadata(path: Path, where: str) -> None:
    """keras_metadata.pb (tf_keras saved_metadata.proto): 1 nodes, SavedObject 5 metadata (JSON)."""
    data = memoryview(path.read_bytes())
    for num, _wire, value in fields(data, where):
        if num != 1:
            continue
        for node_num, _w, item in fields(message(value, where), where):
            if node_num == 5:
                _keras_metadata_json(text(item, where), where)


def _keras_metadata_json(raw: str, where: str) -> None:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise refuse(Reason.CONFIG_INVALID, f"Keras metadata that is not JSON: {exc}", where) from exc
    keras_config.check_config(document, where)


def _keras(judgement: Judgement, workdir: Path, name: str, scratch: Path) -> None:
    with open(workdir / name, "rb") as handle:
        head = handle.read(8)
    read = (
        read_keras_zip(workdir / name, name, scratch) if head.startswith(b"PK") else read_keras_h5(workdir / name, name)
    )
    judgement.format = read.format
    judgement.writer = read.version
    judgement.files.append(name)
    judgement.notes += read.notes
    judgement.warnings += read.warnings
    layers = sorted({layer for layer in read.layers if not layer.startswith("__")})
    if layers:
        judgement.notes.append(f"layers, all in the allowlist: {', '.join(layers[:12])}")
    judgement.add_places(read.places)
