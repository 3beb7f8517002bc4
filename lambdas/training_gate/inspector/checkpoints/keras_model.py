"""Keras models (`.keras` zips and `.h5` files) and the weights of TensorFlow checkpoints in HDF5.

A `.keras` file is a zip (Keras writes it with Python's zipfile) of `config.json` (the model to rebuild),
`metadata.json` (the Keras version) and `model.weights.h5` (`layers/<name>/vars/<i>`, the optimizer's
`optimizer/vars/<i>`). An `.h5` model keeps its configuration in the root attribute `model_config`
(and `training_config`) and its weights under `model_weights/<layer>/`, named by each layer's
`weight_names`. Both configurations are checked against the allowlist (`keras_config`), every weight is
read by the gate's own HDF5 reader, the layers that hold weights must be layers of the configuration,
and the shapes of dense, convolution and embedding layers must be the ones their configuration builds.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from training_gate.inspector.checkpoints.errors import Reason, Refused, refuse
from training_gate.inspector.checkpoints.hdf5 import Dataset, Group, datasets, read_hdf5
from training_gate.inspector.checkpoints.keras_config import LOOKUPS, check_config
from training_gate.inspector.checkpoints.numeric import TensorPlace
from training_gate.inspector.checkpoints.safetensors import no_duplicates
from training_gate.inspector.checkpoints.zipread import DEFLATED, STORED, ZipArchive

MAX_CONFIG = 64 << 20
_KERAS_ENTRIES = {"config.json", "metadata.json", "model.weights.h5"}


class KerasRead:
    def __init__(self) -> None:
        self.places: list[TensorPlace] = []
        self.layers: list[str] = []
        self.version: str | None = None
        self.format = ""
        self.notes: list[str] = []
        self.warnings: list[str] = []


def _json(raw: bytes, what: str, where: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise refuse(Reason.CONFIG_INVALID, f"{what} is not valid JSON: {exc}", where) from exc


def _places(group: Group, path: Path, base: int, prefix: str, read: KerasRead) -> dict[str, Dataset]:
    found = {}
    for name, dataset in datasets(group):
        label = f"{prefix}{name}"
        found[name] = dataset
        if dataset.address is None:
            read.warnings.append(f"{label} holds no data (HDF5 fill value)")
            continue
        assert dataset.datatype.dtype is not None
        read.places.append(
            TensorPlace.dense(label, path, base + dataset.address, dataset.size, dataset.datatype.dtype, dataset.shape)
        )
    return found


def _config_layers(config: Any) -> dict[str, dict[str, Any]]:
    """Top-level layers of a Sequential or Functional configuration, by name."""
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    found = {}
    for layer in layers if isinstance(layers, list) else []:
        settings = layer.get("config") if isinstance(layer, dict) else None
        if isinstance(settings, dict) and isinstance(settings.get("name"), str):
            found[settings["name"]] = {"class_name": layer.get("class_name"), **settings}
    return found


def _expected(layer: dict[str, Any]) -> dict[str, Any]:
    """What a layer's configuration says about its weights: kernel's last axis, bias length, table shape."""
    kind = layer.get("class_name")
    if kind == "Dense" and type(layer.get("units")) is int:
        return {"kernel_last": layer["units"], "bias": (layer["units"],)}
    if isinstance(kind, str) and kind.startswith(("Conv1D", "Conv2D", "Conv3D")) and type(layer.get("filters")) is int:
        return {"kernel_last": layer["filters"], "bias": (layer["filters"],)}
    if kind == "Embedding" and type(layer.get("input_dim")) is int and type(layer.get("output_dim")) is int:
        return {"table": (layer["input_dim"], layer["output_dim"])}
    return {}


def _check_shapes(layer_name: str, layer: dict[str, Any], shapes: list[tuple[str, tuple[int, ...]]], where: str) -> int:
    expected = _expected(layer)
    checked = 0
    for name, shape in shapes if expected else []:
        leaf = name.rsplit("/", 1)[-1].split(":", 1)[0]
        role = {"0": "kernel", "1": "bias", "embeddings": "kernel"}.get(leaf, leaf)
        if role == "kernel" and "table" in expected:
            wanted, ok = list(expected["table"]), shape == expected["table"]
        elif role == "kernel" and "kernel_last" in expected:
            wanted, ok = [..., expected["kernel_last"]], shape[-1:] == (expected["kernel_last"],)
        elif role == "bias" and "bias" in expected:
            wanted, ok = list(expected["bias"]), shape == expected["bias"]
        else:
            continue
        if not ok:
            raise refuse(
                Reason.WEIGHTS_MISMATCH,
                f"{layer_name} ({layer.get('class_name')}): {name} is {list(shape)}, its configuration builds {wanted}",
                where,
            )
        checked += 1
    return checked


def snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: how Keras 3 names a layer's group in model.weights.h5."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _by_class_order(layers: dict[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Keras 3 saves a model's layers under their class's snake-case name, numbered in order
    (saving_lib._save_container_state): dense, dense_1... Input layers hold nothing and are not saved."""
    used: dict[str, int] = {}
    found = {}
    for name, layer in layers.items():
        kind = str(layer.get("class_name"))
        if kind == "InputLayer":
            continue
        base = snake_case(kind)
        count = used.get(base)
        used[base] = 0 if count is None else count + 1
        found[base if count is None else f"{base}_{used[base]}"] = (name, layer)
    return found


def _consistent(
    config: Any, weights: dict[str, list[tuple[str, tuple[int, ...]]]], read: KerasRead, where: str, keras3: bool
) -> None:
    layers = _config_layers(config)
    if not layers:
        read.notes.append("the configuration's layers are nested: layer shapes not compared with it")
        return
    saved = _by_class_order(layers) if keras3 else {name: (name, layer) for name, layer in layers.items()}
    strangers = sorted(set(weights) - set(saved))
    if strangers:
        read.warnings.append(f"weights for layers the configuration does not have: {', '.join(strangers[:5])}")
    missing = sorted(
        saved[key][0] for key in saved if key not in weights and _expected(saved[key][1]) and key not in strangers
    )
    if missing:
        raise refuse(
            Reason.WEIGHTS_MISMATCH, f"no weights for layers {', '.join(missing[:5])}: Keras cannot load it", where
        )
    checked = sum(
        _check_shapes(saved[key][0], saved[key][1], shapes, where) for key, shapes in weights.items() if key in saved
    )
    read.notes.append(f"{checked} weight shapes match their layers' configuration")


def read_keras_zip(path: Path, where: str, scratch: Path) -> KerasRead:
    read = KerasRead()
    read.format = "Keras v3 (.keras)"
    archive = ZipArchive(path, where, frozenset({STORED, DEFLATED}))
    names = {e.name for e in archive.entries}
    missing = {"config.json", "model.weights.h5"} - names
    if missing:
        kind = "model.weights.npz" if "model.weights.npz" in names else None
        if kind:
            raise refuse(Reason.UNSUPPORTED, "weights stored as model.weights.npz", where)
        raise refuse(Reason.MALFORMED, f"a .keras file without {', '.join(sorted(missing))}", where)
    others = sorted(n for n in names if n not in _KERAS_ENTRIES and not n.startswith("assets/"))
    if others:
        read.notes.append(f"entries Keras does not read: {', '.join(others[:5])}")
    config = _json(archive.read(archive.by_name["config.json"], MAX_CONFIG), "config.json", where)
    read.layers = check_config(config, f"{where}: config.json")
    if "metadata.json" in names:
        metadata = _json(archive.read(archive.by_name["metadata.json"], 1 << 20), "metadata.json", where)
        if isinstance(metadata, dict) and isinstance(metadata.get("keras_version"), str):
            read.version = f"keras {metadata['keras_version']}"
    entry = archive.by_name["model.weights.h5"]
    for _ in archive.chunks(entry):  # its CRC, as Keras's zipfile checks it
        pass
    if entry.method == STORED:
        weights_path, base, length = path, entry.data_offset, entry.size
    else:
        weights_path, base, length = scratch / "model.weights.h5", 0, None
        archive.extract(entry, weights_path)
    root = read_hdf5(weights_path, f"{where}: model.weights.h5", base, length)
    found = _places(root, weights_path, base, "", read)
    by_layer: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for name, dataset in found.items():
        parts = name.split("/")
        if len(parts) == 4 and parts[0] == "layers" and parts[2] == "vars":
            by_layer.setdefault(parts[1], []).append((name, dataset.shape))
    for shapes in by_layer.values():
        shapes.sort(key=lambda item: int(item[0].rsplit("/", 1)[1]) if item[0].rsplit("/", 1)[1].isdigit() else 0)
    _consistent(config, by_layer, read, where, keras3=True)
    return read


def read_keras_h5(path: Path, where: str) -> KerasRead:
    read = KerasRead()
    root = read_hdf5(path, where)
    config_text = root.attrs.get("model_config")
    weights_root = root.children.get("model_weights")
    if config_text is None:
        read.format = "HDF5 weights"
        weights_root = root
        config = None
    else:
        read.format = "Keras HDF5 (.h5)"
        if not isinstance(config_text, str):
            raise refuse(Reason.CONFIG_INVALID, "model_config is not a string", where)
        config = _json(config_text.encode("utf-8"), "model_config", where)
        read.layers = check_config(config, f"{where}: model_config")
        _h5_lookups(config, root.attrs.get("keras_version"), where)
        training = root.attrs.get("training_config")
        if isinstance(training, str):
            check_config(_json(training.encode("utf-8"), "training_config", where), f"{where}: training_config")
        if not isinstance(weights_root, Group):
            raise refuse(Reason.MALFORMED, "a model_config without model_weights", where)
    version = root.attrs.get("keras_version")
    read.version = f"keras {version}" if isinstance(version, str) else None
    _places(root, path, 0, "", read)
    assert isinstance(weights_root, Group)
    names = weights_root.attrs.get("layer_names")
    by_layer: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    if isinstance(names, list):
        for layer in names:
            group = weights_root.children.get(layer)
            if not isinstance(group, Group):
                raise refuse(Reason.WEIGHTS_MISMATCH, f"layer_names lists {layer!r}, which has no group", where)
            weight_names = group.attrs.get("weight_names") or []
            held = dict(datasets(group))
            shapes = []
            for weight in weight_names if isinstance(weight_names, list) else []:
                if weight not in held:
                    raise refuse(
                        Reason.WEIGHTS_MISMATCH, f"layer {layer!r} names weight {weight!r}, which is missing", where
                    )
                shapes.append((weight, held[weight].shape))
            by_layer[layer] = shapes
    if config is not None:
        _consistent(config, {k: v for k, v in by_layer.items() if v}, read, where, keras3=False)
    return read


def _h5_lookups(config: Any, version: Any, where: str) -> None:
    """A lookup layer in an .h5 model is broken: tf.keras refuses to load it (its vocabulary is not a
    variable: legacy hdf5_format._legacy_weights raises NotImplementedError), Keras 3 loads an adapted one
    with an empty vocabulary. Only Keras 3 with the vocabulary in the configuration loads as saved."""
    stack, tf_keras = [config], not (isinstance(version, str) and version.startswith("3."))
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            settings = node.get("config")
            if node.get("class_name") in LOOKUPS and isinstance(settings, dict):
                if tf_keras or settings.get("vocabulary") is None:
                    why = "tf.keras cannot load it" if tf_keras else "Keras loads it with an empty vocabulary"
                    raise refuse(
                        Reason.MALFORMED,
                        f"{node['class_name']} {settings.get('name')!r} in an .h5 model: {why} (save as .keras or "
                        "a SavedModel)",
                        where,
                    )
            stack.extend(node.values())


def parameters(places: list[TensorPlace]) -> int:
    return sum(math.prod(p.size) for p in places)


__all__ = ["KerasRead", "Refused", "parameters", "read_keras_h5", "read_keras_zip"]
