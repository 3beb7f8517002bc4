"""PyTorch, Hugging Face, TensorFlow and Keras: judged by the gate's own readers (`inspector/checkpoints`)
inside the child, from the bytes; no framework is imported and nothing from the artifact runs, so nothing
predicts. The load check carries the verdict; `describe` gives the framework, the format, the gate as the
reader, the writer's version, and what the readers counted (tensors, parameters, dtypes, bytes)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, ClassVar

from training_gate.domain.models import NO_SMOKE_PREDICTION_DETAIL, CheckStatus
from training_gate.inspector.frameworks import FileFacts, NotJudged, _safetensors, _Signatures

# Files of a training run that are not the model (transformers' Trainer, Lightning): read as auxiliaries.
AUXILIARY_TORCH = re.compile(
    r"(training_args|optimizer|scheduler|scaler|trainer_state)(_\d+)?\.(bin|pt|pth)|rng_state(_\d+)?\.pth"
)
SHARD = re.compile(r"(.+)-\d{5}-of-\d{5}\.(safetensors|bin)")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# Each checkpoint format's name in reports and policies (`ModelInfo.format`, `FRAMEWORK_FORMATS`), by the
# name its reader gives it.
CHECKPOINT_FORMATS = {
    "torch zip": "torch-zip",
    "torch legacy": "torch-legacy",
    "torch tar": "torch-tar",
    "TorchScript zip": "torchscript",
    "safetensors": "safetensors",
    "sharded safetensors": "sharded-safetensors",
    "sharded torch": "sharded-torch",
    "TensorFlow SavedModel": "saved-model",
    "TensorFlow checkpoint": "tf-checkpoint",
    "Keras v3 (.keras)": "keras-v3",
    "Keras HDF5 (.h5)": "keras-h5",
    "HDF5 weights": "h5-weights",
    "Hugging Face TensorFlow weights (tf_model.h5)": "tf-h5",
}


def format_key(described: str) -> str | None:
    """`Hugging Face bert: sharded safetensors (2 shards)` -> `sharded-safetensors`; None when nothing was read."""
    name = re.sub(r" \(\d+ shards\)$", "", described.rsplit(": ", 1)[-1]) if described else ""
    return CHECKPOINT_FORMATS.get(name, name) or None


def _sibling(file: FileFacts, name: str) -> str:
    parent = PurePosixPath(file.name).parent
    return name if str(parent) == "." else str(parent / name)


def _indexed(file: FileFacts, names: frozenset[str]) -> bool:
    """A shard whose index lies beside it: the index is the model, the shard part of it."""
    return bool(SHARD.fullmatch(file.basename)) and any(_sibling(file, index) in names for index in INDEXES)


class _Checkpoint(_Signatures):
    """A checkpoint judged by the gate's own readers (`inspector/checkpoints`): the framework's code never
    runs, so nothing predicts; the load check carries the verdict and the numbers."""

    judged = True
    checkpoint: ClassVar[bool] = True

    def validate(self, stream: BinaryIO, file: FileFacts) -> None:
        return None  # the readers validate while they read

    def load(self, stream: BinaryIO, file: FileFacts, config: Any) -> Any:
        from training_gate.inspector.checkpoints import judge_artifact

        if file.path is None:
            raise NotJudged(f"{file.name} was consumed while the artifact streamed")
        workdir = Path(*file.path.parts[: len(file.path.parts) - len(PurePosixPath(file.name).parts)])
        files = sorted(str(p.relative_to(workdir).as_posix()) for p in workdir.rglob("*") if p.is_file())
        scratch = Path(tempfile.mkdtemp(prefix="checkpoint-"))  # the child's TMPDIR, removed with it
        return judge_artifact(self.name, workdir, file.name, files, scratch)

    def describe(self, model: Any) -> dict[str, Any]:
        details = model.describe()
        dtypes = " ".join(f"{name}={count}" for name, count in details["dtypes"].items())
        return {
            "framework": self.key,
            "format": format_key(model.format),
            "reader": "training-gate",
            "writer_version": model.writer,
            "bytes_validated": True,
            "format_name": model.format or None,
            "tensors": details["tensors"],
            "parameters": details["parameters"],
            "dtypes": dtypes or None,  # parameters per element type
            "tensor_bytes": details["tensor_bytes"],
            "files_read": details["files_read"],
            "serving_code": details["serving_code"] or None,
            "smoke_prediction": details["smoke_prediction"],
        }

    def loaded_detail(self, model: Any) -> tuple[CheckStatus, str]:
        summary = model.summary()
        if model.rejects:
            read = f" ({summary})" if model.tensors else ""
            return CheckStatus.FAIL, f"{model.model_file} refused: {'; '.join(model.rejects[:5])}{read}"
        parts = [*([summary] if model.format else []), *model.notes]
        if model.inconclusive:
            return CheckStatus.INCONCLUSIVE, "; ".join([*model.inconclusive, *parts, *model.warnings])
        if model.warnings:
            return CheckStatus.WARN, "; ".join([*parts, *(f"warning: {w}" for w in model.warnings)])
        return CheckStatus.PASS, "; ".join(parts)

    def version_check(self, model: Any) -> tuple[CheckStatus, str]:
        written = f" (written by {model.writer})" if model.writer else ""
        return CheckStatus.SKIPPED, f"not applicable: the gate's own reader read the bytes{written}"

    def predict(self, model: Any, config: Any) -> tuple[CheckStatus, str]:
        return CheckStatus.SKIPPED, f"{NO_SMOKE_PREDICTION_DETAIL}: {self.name} checkpoints are judged by their bytes"

    def estimator(self, model: Any) -> Any:
        return None


class HuggingFace(_Checkpoint):
    """A transformers directory: config.json naming an architecture, beside its weights."""

    name = "Hugging Face"
    modules = ("transformers",)
    WEIGHTS = ("model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")

    def content(self, file: FileFacts, names: frozenset[str]) -> str | None:
        base = file.basename
        if _indexed(file, names):
            return None
        weights = base in self.WEIGHTS or base in INDEXES or SHARD.fullmatch(base)
        if not weights:
            return None
        config = _sibling(file, "config.json")
        return f"transformers weights beside {config}" if config in names else None


class PyTorch(_Checkpoint):
    name = "PyTorch"
    modules = ("torch",)
    suffixes = (".pt", ".pth", ".ckpt")
    LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."  # torch.save < 1.6: a pickled magic number

    def content(self, file: FileFacts, names: frozenset[str]) -> str | None:
        if AUXILIARY_TORCH.fullmatch(file.basename) or _indexed(file, names):
            return None  # read as an auxiliary, or as part of its index's checkpoint
        if file.basename in INDEXES:
            return "a sharded checkpoint's index"
        if file.head.startswith(self.LEGACY_MAGIC):
            return "the legacy torch.save format (magic number)"
        entries = file.zip_names()
        if any(e == "data.pkl" or e.endswith("/data.pkl") for e in entries):
            script = any("/code/" in e or e.startswith("code/") for e in entries)
            return "a TorchScript zip (code/, data.pkl)" if script else "a torch.save zip (data.pkl)"
        if _safetensors(file.head):
            return "safetensors weights"
        if file.suffix in self.suffixes and len(file.head) > 262 and file.head[257:262] == b"ustar":
            return "the pre-0.4 torch.save tar"
        return None

    def recognise(self, file: FileFacts, names: frozenset[str]) -> str | None:
        if AUXILIARY_TORCH.fullmatch(file.basename):
            return None
        return super().recognise(file, names)


class TensorFlow(_Checkpoint):
    name = "TensorFlow"
    modules = ("tensorflow",)
    names = ("saved_model.pb", "saved_model.pbtxt")

    def content(self, file: FileFacts, names: frozenset[str]) -> str | None:
        base = file.basename
        if base == "saved_model.pb" and file.head[:1] == b"\x08" and b"\x12" in file.head[:4]:
            return "a SavedModel (saved_model.pb)"
        if base.endswith(".index") and any(n.startswith(file.name[: -len(".index")] + ".data-") for n in names):
            saved = str(PurePosixPath(file.name).parent.parent / "saved_model.pb")
            if saved in names:
                return None  # a SavedModel's variables: part of it
            return "a checkpoint (.index with its data shards)"
        return None


class Keras(_Checkpoint):
    name = "Keras"
    modules = ("keras",)
    suffixes = (".keras", ".h5", ".hdf5")

    def content(self, file: FileFacts, names: frozenset[str]) -> str | None:
        if file.head.startswith(b"\x89HDF\r\n\x1a\n") and file.suffix in (".h5", ".hdf5", ".keras"):
            return "an HDF5 model"
        entries = file.zip_names()
        if {"config.json", "metadata.json"} & set(entries) and file.suffix == ".keras":
            return "a Keras v3 zip (config.json, metadata.json)"
        return None
