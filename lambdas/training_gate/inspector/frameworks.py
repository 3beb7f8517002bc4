"""The framework registry: one plug-in per model format, each recognising its files by content.

A plug-in implements one small protocol (`Framework`): `recognise` a file from its bytes and
structure (and its name, as weaker evidence), `validate` the bytes, `load` inside the child,
`predict` a smoke test, and `describe` what loaded (a dict: its `framework`, `format`, `reader`,
`reader_version` and `writer_version` keys reach the report, the decision event, the package's metadata
and the owners' message; any other key is kept as a detail). A judged plug-in may also say how the
model's writer and reader versions compare (`version_check`) and what object the reference predictions
and the holdout scoring call (`estimator`). scikit-learn, XGBoost, LightGBM, CatBoost and ONNX are judged
(the last four in `inspector/plugins`), and so are PyTorch, Hugging Face, TensorFlow and Keras checkpoints,
by their bytes (`plugins/checkpoint_plugins`); the other frameworks recognise and describe only, so an
artifact of theirs is `skipped` naming what was found. A judged framework whose reader the image lacks raises
`ReaderMissing` from `load`: the artifact is `skipped`, naming why. A later framework is judged by
completing its plug-in: nothing else changes.

Order in REGISTRY is the precedence between model candidates of different frameworks when neither
the configuration nor the training image decides (see `recognise.decide`).
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, ClassVar

from training_gate.domain.models import CheckStatus

# Bytes of each member kept for recognition: enough for every magic number and a zip's first entry.
HEAD_BYTES = 4096
# Zip directories are read from the unpacked file; a hostile one cannot make this list long.
ZIP_NAMES_MAX = 2000


@dataclass
class FileFacts:
    """One file of the artifact as the recogniser sees it: never executed, only read."""

    name: str
    size: int
    head: bytes
    path: Path | None = None  # on disk; None when a loader consumed it while it streamed
    pickle_module: str | None = None  # the first global a pickle names (see recognise.classify)
    _zip: list[str] | None = field(default=None, repr=False)

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix.lower()

    @property
    def basename(self) -> str:
        return PurePosixPath(self.name).name

    def zip_names(self) -> list[str]:
        """The entries of a zip file (torch.save, .keras, .skops), [] when it is none."""
        if self._zip is None:
            self._zip = []
            if (
                self.head.startswith(b"PK\x03\x04")
                and self.path is not None
                and _zip_entries(self.path) <= ZIP_NAMES_MAX
            ):
                try:
                    with zipfile.ZipFile(self.path) as archive:
                        self._zip = [info.filename for info in archive.infolist()[:ZIP_NAMES_MAX]]
                except (zipfile.BadZipFile, OSError, ValueError):
                    self._zip = []
            elif self.head.startswith(b"PK\x03\x04") and len(self.head) >= 30:
                length = int.from_bytes(self.head[26:28], "little")  # the first local header's name
                self._zip = [self.head[30 : 30 + length].decode("utf-8", "replace")]
        return self._zip


def _zip_entries(path: Path) -> int:
    """The entry count a zip's end record states (read before zipfile would parse the whole directory);
    more than ZIP_NAMES_MAX when it cannot be read or is a ZIP64 count."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - (1 << 16) - 22))
            tail = handle.read()
    except OSError:
        return ZIP_NAMES_MAX + 1
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) < end + 12:
        return ZIP_NAMES_MAX + 1
    return int.from_bytes(tail[end + 10 : end + 12], "little")


class NotJudged(Exception):
    """The gate recognises this framework but does not judge it yet."""


class ReaderMissing(NotJudged):
    """A judged framework whose reader this inspector image does not carry: the model is skipped, not judged."""


class Framework:
    """The plug-in protocol. Subclasses set `name`, `judged`, and override what they support."""

    name: ClassVar[str] = ""
    judged: ClassVar[bool] = False
    # Its estimators with scikit-learn's API (module.Class as pickle names them) that a scikit-learn pickle
    # may hold (a Pipeline ending in XGBClassifier). The loader refuses them by identity like any class it
    # does not know; a refusal at one of these exact names says the pickle is this framework's model.
    sklearn_api: ClassVar[frozenset[str]] = frozenset()

    @property
    def key(self) -> str:
        """The framework's name in policies, reports and metadata: lower case, words joined by `-`."""
        return self.name.lower().replace(" ", "-")

    def recognise(self, file: FileFacts, names: frozenset[str]) -> str | None:
        """Evidence that `file` is a model of this framework (a short sentence), or None. `names` are
        every file of the artifact: some formats are a set of files."""
        return None

    def by_name_only(self, file: FileFacts) -> bool:
        """Whether the evidence rests on the name alone (a weaker claim, reported as such)."""
        return False

    def validate(self, stream: BinaryIO, file: FileFacts) -> None:
        raise NotJudged(self.name)

    def load(self, stream: BinaryIO, file: FileFacts, config: Any) -> Any:
        raise NotJudged(self.name)

    def predict(self, model: Any, config: Any) -> tuple[CheckStatus, str]:
        raise NotJudged(self.name)

    def describe(self, model: Any) -> dict[str, Any]:
        return {"class": type(model).__name__}

    def loaded_detail(self, model: Any) -> tuple[CheckStatus, str]:
        """The load check's status and sentence once `load` returned."""
        return CheckStatus.PASS, f"loaded {self.name} {type(model).__name__}"

    def version_check(self, model: Any) -> tuple[CheckStatus, str]:
        """Whether the library that wrote the model and the one that read it agree on what it predicts."""
        return CheckStatus.SKIPPED, f"{self.name} records no writer version to compare"

    def estimator(self, model: Any) -> Any:
        """What the reference predictions and the holdout scoring call (predict, predict_proba, classes_)."""
        return model


def _json_head(file: FileFacts) -> Any:
    if not file.head.lstrip().startswith(b"{"):
        return None
    try:
        text = file.path.read_bytes()[: 1 << 20] if file.path is not None and file.size <= 1 << 20 else file.head
        return json.loads(text)
    except (OSError, ValueError):
        return None


# -- scikit-learn: judged ------------------------------------------------------------------------------------


class ScikitLearn(Framework):
    """Pickles, joblib files and skops files, loaded through the restricted loader and validated."""

    name = "scikit-learn"
    judged = True

    def recognise(self, file: FileFacts, names: frozenset[str]) -> str | None:
        return None  # decided by loading: every pickle goes through the loader (see recognise.decide)

    def validate(self, stream: BinaryIO, file: FileFacts) -> None:
        return None  # the loader validates while it loads: no object is built from unchecked state

    def load(self, stream: BinaryIO, file: FileFacts, config: Any) -> Any:
        from training_gate.inspector.loader import load_model_stream

        return load_model_stream(stream, file.name, config.extra_allowed_globals, config)

    def predict(self, model: Any, config: Any) -> tuple[CheckStatus, str]:
        from training_gate.inspector.smoke import smoke_prediction

        return smoke_prediction(model, config)

    def describe(self, model: Any) -> dict[str, Any]:
        return {
            "class": type(model.model).__name__,
            "sklearn_version": model.sklearn_version,
            "framework": self.key,
            "reader": "scikit-learn",
            "reader_version": model.runtime_sklearn_version,
            "writer_version": model.sklearn_version,
            "bytes_validated": True,
        }

    def estimator(self, model: Any) -> Any:
        return model.model


# -- recognised, not judged yet --------------------------------------------------------------------------------


class _Signatures(Framework):
    """A framework recognised by magic numbers, structure, the module its pickles name, and names."""

    modules: ClassVar[tuple[str, ...]] = ()  # a pickle whose first global is from one of these is this framework's
    names: ClassVar[tuple[str, ...]] = ()  # conventional file names (weak evidence)
    suffixes: ClassVar[tuple[str, ...]] = ()  # conventional suffixes (weak evidence)

    def content(self, file: FileFacts, names: frozenset[str]) -> str | None:
        return None

    def recognise(self, file: FileFacts, names: frozenset[str]) -> str | None:
        found = self.content(file, names)
        if found:
            return found
        module = (file.pickle_module or "").split(".")[0]
        if module and module in self.modules:
            return f"a pickle of {file.pickle_module}"
        if self.by_name_only(file):
            return f"named {file.basename} (its content matches no {self.name} format the gate knows)"
        return None

    def by_name_only(self, file: FileFacts) -> bool:
        return file.pickle_module is None and (file.basename in self.names or file.suffix in self.suffixes)


def _safetensors(head: bytes) -> bool:
    """8-byte little-endian header length, then a JSON header object."""
    if len(head) < 10:
        return False
    length = int.from_bytes(head[:8], "little")
    return 2 <= length <= 100 << 20 and head[8:10] in (b'{"', b"{ ", b"{\n")


class MXNet(_Signatures):
    name = "MXNet"
    modules = ("mxnet",)
    NDARRAY_MAGIC = b"\x12\x01\x00\x00\x00\x00\x00\x00"  # kMXAPINDArrayListMagic, little-endian uint64

    def content(self, file: FileFacts, names: frozenset[str]) -> str | None:
        # SageMaker's built-in algorithms name their model model_algo-<n>, whatever its layout.
        built_in = (
            ", the name SageMaker's built-in algorithms give their model"
            if file.basename.startswith("model_algo-")
            else ""
        )
        if file.head.startswith(self.NDARRAY_MAGIC):
            return f"an MXNet NDArray file (.params){built_in}"
        entries = [PurePosixPath(e).name for e in file.zip_names()]
        if any(e.endswith("-symbol.json") for e in entries) and any(e.endswith(".params") for e in entries):
            return f"an MXNet module zip (-symbol.json graph, .params weights){built_in}"
        if file.basename.endswith("-symbol.json"):
            graph = _json_head(file)
            if isinstance(graph, dict) and "nodes" in graph and "heads" in graph:
                return "an MXNet symbol graph (-symbol.json)"
        return None


class PMML(_Signatures):
    name = "PMML"
    suffixes = (".pmml",)

    def content(self, file: FileFacts, names: frozenset[str]) -> str | None:
        return "a PMML document (<PMML>)" if re.search(rb"<(\w+:)?PMML[\s>]", file.head[:HEAD_BYTES]) else None


# The judged plug-ins of XGBoost, LightGBM, CatBoost and ONNX, and the checkpoints' (PyTorch, Hugging Face,
# TensorFlow, Keras), build on the classes above.
from training_gate.inspector.plugins.catboost_plugin import CatBoost  # noqa: E402
from training_gate.inspector.plugins.checkpoint_plugins import HuggingFace, Keras, PyTorch, TensorFlow  # noqa: E402
from training_gate.inspector.plugins.lightgbm_plugin import LightGBM  # noqa: E402
from training_gate.inspector.plugins.onnx_plugin import ONNX  # noqa: E402
from training_gate.inspector.plugins.xgboost_plugin import XGBoost  # noqa: E402

SCIKIT_LEARN = ScikitLearn()
# Precedence between frameworks when nothing else decides: scikit-learn (judged) first, then the
# formats a container serves directly, more specific ones before the ones they contain (Hugging Face
# before PyTorch and TensorFlow; Keras before TensorFlow).
REGISTRY: tuple[Framework, ...] = (
    SCIKIT_LEARN,
    XGBoost(),
    LightGBM(),
    CatBoost(),
    HuggingFace(),
    PyTorch(),
    Keras(),
    TensorFlow(),
    ONNX(),
    MXNet(),
    PMML(),
)
BY_NAME = {framework.name: framework for framework in REGISTRY}
