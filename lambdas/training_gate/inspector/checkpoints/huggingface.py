"""A Hugging Face model directory: config.json, its weights, and the architecture's shapes.

`config.json` is read as data: `auto_map` names modules that `from_pretrained(trust_remote_code=True)`
imports and runs; the gate never runs them and reports them (the policy may refuse them). For the
architectures named here, each weight's shape is computed from the config the way the modeling code
builds the layer, and the number of layers from the highest layer index; a tensor of another shape, or
layers missing (from_pretrained would initialise them at random), rejects. Other architectures are
loaded by code the gate does not model: their shapes are not checked, which the report says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training_gate.inspector.checkpoints.errors import Reason, refuse
from training_gate.inspector.checkpoints.safetensors import _finite_json

MAX_CONFIG = 4 << 20
Dim = Callable[[dict[str, Any]], int]


def key(name: str, *fallbacks: str) -> Dim:
    def read(config: dict[str, Any]) -> int:
        for candidate in (name, *fallbacks):
            value = config.get(candidate)
            if type(value) is int:
                return value
        raise KeyError(name)

    return read


def _labels(config: dict[str, Any]) -> int:
    labels = config.get("id2label")
    if isinstance(labels, dict) and labels:
        return len(labels)
    return config["num_labels"] if type(config.get("num_labels")) is int else 2


def _head_dim(config: dict[str, Any]) -> int:
    if type(config.get("head_dim")) is int:
        return int(config["head_dim"])
    return key("hidden_size")(config) // key("num_attention_heads")(config)


def _kv(config: dict[str, Any]) -> int:
    heads = config.get("num_key_value_heads")
    return (heads if type(heads) is int else key("num_attention_heads")(config)) * _head_dim(config)


def _gpt2_inner(config: dict[str, Any]) -> int:
    inner = config.get("n_inner")
    return inner if type(inner) is int else 4 * key("n_embd")(config)


@dataclass(frozen=True)
class Architecture:
    layers: str  # the regex of a layer's prefix, its index in group 1
    count: Dim
    shapes: tuple[tuple[str, tuple[Dim, ...]], ...]


H, V = key("hidden_size"), key("vocab_size")
_BERT_LIKE = (
    (r"embeddings\.word_embeddings\.weight", (V, H)),
    (r"embeddings\.position_embeddings\.weight", (key("max_position_embeddings"), H)),
    (r"embeddings\.token_type_embeddings\.weight", (key("type_vocab_size"), H)),
    (r"encoder\.layer\.\d+\.attention\.self\.(query|key|value)\.weight", (H, H)),
    (r"encoder\.layer\.\d+\.attention\.output\.dense\.weight", (H, H)),
    (r"encoder\.layer\.\d+\.intermediate\.dense\.weight", (key("intermediate_size"), H)),
    (r"encoder\.layer\.\d+\.output\.dense\.weight", (H, key("intermediate_size"))),
    (r"classifier\.weight", (_labels, H)),
)
_LLAMA = (
    (r"model\.embed_tokens\.weight", (V, H)),
    (r"model\.layers\.\d+\.self_attn\.q_proj\.weight", (lambda c: key("num_attention_heads")(c) * _head_dim(c), H)),
    (r"model\.layers\.\d+\.self_attn\.(k|v)_proj\.weight", (_kv, H)),
    (r"model\.layers\.\d+\.self_attn\.o_proj\.weight", (H, lambda c: key("num_attention_heads")(c) * _head_dim(c))),
    (r"model\.layers\.\d+\.mlp\.(gate|up)_proj\.weight", (key("intermediate_size"), H)),
    (r"model\.layers\.\d+\.mlp\.down_proj\.weight", (H, key("intermediate_size"))),
    (r"lm_head\.weight", (V, H)),
    (r"score\.weight", (_labels, H)),
)
ARCHITECTURES: dict[str, Architecture] = {
    "bert": Architecture(r"encoder\.layer\.(\d+)\.", key("num_hidden_layers"), _BERT_LIKE),
    "roberta": Architecture(r"encoder\.layer\.(\d+)\.", key("num_hidden_layers"), _BERT_LIKE),
    "distilbert": Architecture(
        r"transformer\.layer\.(\d+)\.",
        key("n_layers"),
        (
            (r"embeddings\.word_embeddings\.weight", (V, key("dim"))),
            (r"embeddings\.position_embeddings\.weight", (key("max_position_embeddings"), key("dim"))),
            (r"transformer\.layer\.\d+\.attention\.(q|k|v|out)_lin\.weight", (key("dim"), key("dim"))),
            (r"transformer\.layer\.\d+\.ffn\.lin1\.weight", (key("hidden_dim"), key("dim"))),
            (r"transformer\.layer\.\d+\.ffn\.lin2\.weight", (key("dim"), key("hidden_dim"))),
            (r"classifier\.weight", (_labels, key("dim"))),
        ),
    ),
    "gpt2": Architecture(
        r"h\.(\d+)\.",
        key("n_layer"),
        (
            (r"wte\.weight", (V, key("n_embd"))),
            (r"wpe\.weight", (key("n_positions"), key("n_embd"))),
            (r"h\.\d+\.attn\.c_attn\.weight", (key("n_embd"), lambda c: 3 * key("n_embd")(c))),
            (r"h\.\d+\.attn\.c_proj\.weight", (key("n_embd"), key("n_embd"))),
            (r"h\.\d+\.mlp\.c_fc\.weight", (key("n_embd"), _gpt2_inner)),
            (r"h\.\d+\.mlp\.c_proj\.weight", (_gpt2_inner, key("n_embd"))),
            (r"lm_head\.weight", (V, key("n_embd"))),
        ),
    ),
    "llama": Architecture(r"model\.layers\.(\d+)\.", key("num_hidden_layers"), _LLAMA),
    "mistral": Architecture(r"model\.layers\.(\d+)\.", key("num_hidden_layers"), _LLAMA),
    "qwen2": Architecture(r"model\.layers\.(\d+)\.", key("num_hidden_layers"), _LLAMA),
}
# Prefixes a task head puts before the base model's names (BertForSequenceClassification: "bert.").
_PREFIXES = r"(?:(?:bert|roberta|distilbert|transformer|model\.model)\.)?"


@dataclass
class HFConfig:
    model_type: str | None
    architectures: list[str]
    auto_map: dict[str, Any]
    document: dict[str, Any] = field(default_factory=dict)


def read_config(path: Path, where: str) -> HFConfig:
    if path.stat().st_size > MAX_CONFIG:
        raise refuse(Reason.CONFIG_INVALID, f"config.json is over {MAX_CONFIG} bytes", where)
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(Reason.CONFIG_INVALID, "config.json is not UTF-8", where) from exc
    document = _finite_json(text, where)
    if not isinstance(document, dict):
        raise refuse(Reason.CONFIG_INVALID, "config.json is not a JSON object", where)
    model_type = document.get("model_type")
    architectures = document.get("architectures") or []
    auto_map = document.get("auto_map") or {}
    if model_type is not None and not isinstance(model_type, str):
        raise refuse(Reason.CONFIG_INVALID, "model_type is not a string", where)
    if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
        raise refuse(Reason.CONFIG_INVALID, "architectures is not a list of names", where)
    if not isinstance(auto_map, dict):
        raise refuse(Reason.CONFIG_INVALID, "auto_map is not an object", where)
    return HFConfig(model_type, architectures, auto_map, document)


# Files beside config.json whose own `auto_map` makes AutoTokenizer / AutoProcessor / AutoImageProcessor /
# AutoFeatureExtractor import code with trust_remote_code=True.
SIDE_CONFIGS = ("tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


def side_auto_maps(directory: Path, names: list[str], where: str) -> dict[str, Any]:
    """The auto_map entries of the tokenizer and processor configurations beside config.json, by file."""
    found: dict[str, Any] = {}
    for name in SIDE_CONFIGS:
        if name not in names:
            continue
        document = read_config(directory / name, f"{where}/{name}" if where else name).document
        auto_map = document.get("auto_map")
        if auto_map:
            if not isinstance(auto_map, dict):
                raise refuse(Reason.CONFIG_INVALID, f"{name}'s auto_map is not an object", where)
            found.update({f"{name} {kind}": target for kind, target in auto_map.items()})
    return found


def remote_code(config: HFConfig, python_files: list[str], side: dict[str, Any] | None = None) -> str | None:
    """A sentence naming the code from_pretrained would import, or None."""
    maps = {**config.auto_map, **(side or {})}
    if not maps and not python_files:
        return None
    named = [f"{kind}: {target}" for kind, target in list(maps.items())[:4]]
    files = f"; Python files beside it: {', '.join(python_files[:5])}" if python_files else ""
    mapping = f"auto_map names code ({'; '.join(named)})" if named else "no auto_map"
    return f"{mapping}{files}: from_pretrained(trust_remote_code=True) imports and runs it; the gate did not run it"


def check_shapes(config: HFConfig, shapes: dict[str, tuple[int, ...]], where: str) -> tuple[bool, str]:
    """Rejects a weight whose shape the architecture would not build, or missing layers; returns whether
    shapes were checked and a sentence for the report."""
    architecture = ARCHITECTURES.get(config.model_type or "")
    if architecture is None:
        return (
            False,
            f"shapes not checked against config.json: model_type {config.model_type!r} is not one the gate models",
        )
    checked = 0
    layers: set[int] = set()
    layer_pattern = re.compile(_PREFIXES + architecture.layers)
    for name, shape in shapes.items():
        found = layer_pattern.match(name)
        if found:
            layers.add(int(found.group(1)))
        for pattern, dims in architecture.shapes:
            if not re.fullmatch(_PREFIXES + pattern, name):
                continue
            try:
                expected = tuple(dim(config.document) for dim in dims)
            except (KeyError, ZeroDivisionError):
                continue
            if tuple(shape) != expected:
                raise refuse(
                    Reason.WEIGHTS_MISMATCH,
                    f"{name} is {list(shape)}, config.json ({config.model_type}) builds {list(expected)}",
                    where,
                )
            checked += 1
    try:
        count = architecture.count(config.document)
    except KeyError:
        count = None
    if count is not None and layers and layers != set(range(count)):
        missing = sorted(set(range(count)) - layers)[:5]
        extra = sorted(layers - set(range(count)))[:5]
        raise refuse(
            Reason.WEIGHTS_MISMATCH,
            f"config.json ({config.model_type}) has {count} layers; the weights hold layers "
            f"{len(layers)} (missing {missing}, beyond {extra})",
            where,
        )
    if not checked:
        return False, f"no weight matched the {config.model_type} layout: shapes not checked (named differently?)"
    return True, f"{checked} weight shapes and {len(layers)} layers match config.json ({config.model_type})"
