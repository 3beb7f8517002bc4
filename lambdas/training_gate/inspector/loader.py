"""Load a joblib/pickle/skops model without running code the file chooses.

The file names classes and functions; the gate resolves each name through its allowlist table and from
then on knows every object by identity. It builds every object itself (`restricted.construct`): a state
the file supplies is checked as data first (the schema of the states scikit-learn writes, then the
invariants the C code relies on), and only then set. The readers (`restricted.unpickler`,
`restricted.skops_reader`) only translate a file into those steps, so both formats meet the same rules.
Every length a file claims is checked against what is left of it before anything is allocated, and
compressed joblib and skops files get the tar's inflated-bytes and ratio caps.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import sklearn
from joblib import numpy_pickle_utils

from training_gate.archive import RATIO_FLOOR
from training_gate.inspector.restricted.construct import Construction
from training_gate.inspector.restricted.environment import Environment, environment
from training_gate.inspector.restricted.errors import (
    CapExceeded,
    InvalidStructure,
    RefusedCall,
    RefusedGlobal,
    UntrustedTypes,
)
from training_gate.inspector.restricted.skops_reader import load_skops
from training_gate.inspector.restricted.unpickler import GateUnpickler

__all__ = [
    "CapExceeded",
    "InvalidStructure",
    "LoadCaps",
    "LoadedModel",
    "RefusedCall",
    "RefusedGlobal",
    "UntrustedTypes",
    "default_allowlist",
    "load_model",
    "load_model_stream",
]

DEFAULT_MAX_BYTES = 2 << 30
DEFAULT_MAX_RATIO = 1_100


class LoadCaps(Protocol):
    """The caps a load honours (InspectConfig has them)."""

    max_member_bytes: int
    max_ratio: int


def default_allowlist() -> frozenset[str]:
    """Every name a model file may use in this environment. Building it imports every estimator module
    and reads the schemas: the sandbox's zygote calls this once before it forks."""
    return frozenset(environment().table.names())


@dataclass
class LoadedModel:
    model: Any
    sklearn_version: str
    runtime_sklearn_version: str
    version_warnings: list[str] = field(default_factory=list)

    @property
    def version_skew(self) -> bool:
        return self.sklearn_version != self.runtime_sklearn_version


class _CappedStream(io.RawIOBase):
    """A joblib inner decompressor's output, counted: the same inflated-bytes and ratio caps as the tar."""

    def __init__(self, inner: Any, cap: int, max_ratio: int, compressed: Callable[[], int]):
        self._inner = inner
        self._cap = cap
        self._max_ratio = max_ratio
        self._compressed = compressed
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._cap - self.produced + 1)
        data = self._inner.read(want)
        view[: len(data)] = data
        self.produced += len(data)
        if self.produced > self._cap:
            raise CapExceeded("max_member_bytes", f"the model file inflates past {self._cap} bytes")
        if self.produced > RATIO_FLOOR and self.produced > self._max_ratio * max(self._compressed(), 1):
            raise CapExceeded("max_ratio", f"the model file inflates more than {self._max_ratio}:1")
        return len(data)

    def left(self) -> int:
        return self._cap - self.produced + _BUFFER


_BUFFER = 1 << 18


def _remaining_of(handle: Any) -> Callable[[], int]:
    """What is left of the model file: a tar member knows; a file on disk has a size."""
    if hasattr(handle, "remaining"):
        return lambda: int(handle.remaining)
    if isinstance(handle, io.BytesIO):
        size = handle.getbuffer().nbytes
        return lambda: size - handle.tell()
    try:
        size = os.fstat(handle.fileno()).st_size
        return lambda: size - handle.tell()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return lambda: 1 << 62


def _open_pickle(handle: BinaryIO, caps: LoadCaps | None) -> tuple[Any, Callable[[], int]]:
    compressor = numpy_pickle_utils._detect_compressor(handle)
    if compressor == "compat":
        raise pickle.UnpicklingError("joblib < 0.10 file format is not supported")
    remaining = _remaining_of(handle)
    if compressor not in numpy_pickle_utils._COMPRESSORS:
        return handle, remaining
    total = remaining()
    cap = caps.max_member_bytes if caps else DEFAULT_MAX_BYTES
    inner = numpy_pickle_utils._COMPRESSORS[compressor].decompressor_file(handle)
    capped = _CappedStream(inner, cap, caps.max_ratio if caps else DEFAULT_MAX_RATIO, lambda: total - remaining())
    return io.BufferedReader(capped, buffer_size=_BUFFER), capped.left


def load_model_stream(
    handle: BinaryIO, name: str, extra_allowed: Iterable[str] = (), caps: LoadCaps | None = None
) -> LoadedModel:
    """Load a model from a sequential stream (a tar member as it inflates: no copy on disk): joblib
    (compressed or not), plain pickle, or skops. Every object is built by the gate from checked state,
    and the finished model is checked against the invariants before it is returned."""
    env = environment(frozenset(extra_allowed))
    _require_schema(env)
    build = Construction(env)
    with warnings.catch_warnings():
        # scikit-learn's own __setstate__ warns when versions differ; the gate records the versions itself.
        warnings.simplefilter("ignore", UserWarning)
        if name.endswith(".skops"):
            max_bytes = caps.max_member_bytes if caps else DEFAULT_MAX_BYTES
            model = load_skops(handle.read(), build, max_bytes, caps.max_ratio if caps else DEFAULT_MAX_RATIO)
        else:
            stream, remaining = _open_pickle(handle, caps)
            model = GateUnpickler.create(name, stream, build, remaining).load()
        build.finish(model)
    return _loaded(model, build.versions)


def _require_schema(env: Environment) -> None:
    if env.runtime is None:
        from training_gate.inspector.schema import available_versions

        raise InvalidStructure(
            "model",
            "scikit-learn version",
            f"{env.version} has no state schema (the gate has {', '.join(available_versions()) or 'none'}): "
            "generate it with scripts/generate_inspector_schema.py",
        )


def load_model(path: Path, extra_allowed: Iterable[str] = (), caps: LoadCaps | None = None) -> LoadedModel:
    with open(path, "rb") as handle:
        return load_model_stream(handle, path.name, extra_allowed, caps)


def _loaded(model: Any, versions: list[str]) -> LoadedModel:
    """The version that wrote the model: the one the outermost estimator records (states are built inner
    first, so it is the last one recorded), and a line for each estimator written by another version."""
    runtime = sklearn.__version__
    differing = [v for v in versions if v != runtime]
    recorded = [
        f"an estimator in the file was pickled with scikit-learn {v}; this is {runtime}"
        for v in dict.fromkeys(differing)
    ]
    return LoadedModel(
        model=model,
        sklearn_version=versions[-1] if versions else runtime,
        runtime_sklearn_version=runtime,
        version_warnings=recorded,
    )
