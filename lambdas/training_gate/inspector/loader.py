"""Load a joblib/pickle model without running code the file chooses.

Unpickling resolves every global through `find_class`; ours admits only exact, listed classes and
functions (scikit-learn estimators and their internals, numpy, scipy.sparse). Anything else is
refused before it is imported, so a payload never runs. Allowed classes still run their own
`__setstate__` on the data: this narrows the risk, it does not remove it, which is why the function
that calls this runs least-privileged.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import sklearn
from joblib import numpy_pickle
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.utils import all_estimators

# Internal classes that estimators pickle alongside themselves. Every class defined in these
# modules is admitted by its exact name; nothing else from them is.
_INTERNAL_CLASS_MODULES = (
    "sklearn.tree._tree",
    "sklearn._loss.loss",
    "sklearn._loss.link",
    "sklearn._loss._loss",
    "sklearn.ensemble._hist_gradient_boosting.binning",
    "sklearn.ensemble._hist_gradient_boosting.predictor",
    "sklearn.metrics._dist_metrics",
    "sklearn.neighbors._kd_tree",
    "sklearn.neighbors._ball_tree",
    "sklearn.utils._bunch",
    "numpy.random._mt19937",
    "numpy.random._pcg64",
    "numpy.random._philox",
    "numpy.random._sfc64",
    "numpy.random.bit_generator",
    "numpy.random.mtrand",
    "scipy.sparse._csr",
    "scipy.sparse._csc",
    "scipy.sparse._coo",
)

# Reconstructors, by exact name, under both numpy 1.x (numpy.core) and 2.x (numpy._core) spellings.
_FIXED_GLOBALS = frozenset(
    {
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._generator.Generator",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        "sklearn._loss._loss.__pyx_unpickle_CyHalfBinomialLoss",
        "sklearn._loss._loss.__pyx_unpickle_CyHalfMultinomialLoss",
        "sklearn._loss._loss.__pyx_unpickle_CyHalfSquaredError",
        "sklearn.metrics._dist_metrics.newObj",
        "sklearn.neighbors._kd_tree.newObj",
        "sklearn.neighbors._ball_tree.newObj",
        "builtins.slice",
        "builtins.complex",
        "collections.OrderedDict",
    }
)


class LoadCaps(Protocol):
    """The caps a load honours (InspectConfig has them)."""

    max_member_bytes: int
    max_ratio: int


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, name: str):
        super().__init__(f"refused global {name!r}: not on the allowlist, nothing from the file was run")
        self.name = name


_ALLOWLIST_LOCK = threading.Lock()


@cache
def default_allowlist() -> frozenset[str]:
    # Building it imports every estimator module; two threads doing that at once can see a
    # half-imported module, so the first build is serialised.
    with _ALLOWLIST_LOCK:
        return _build_allowlist()


def _build_allowlist() -> frozenset[str]:
    names = set(_FIXED_GLOBALS)
    for _, estimator in all_estimators():
        names.add(f"{estimator.__module__}.{estimator.__qualname__}")
    for module_name in _INTERNAL_CLASS_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == module_name:
                names.add(f"{module_name}.{attr}")
    return frozenset(names)


def _read_array_in_place(wrapper: numpy_pickle.NumpyArrayWrapper, handle: Any, native: bool) -> np.ndarray:
    """joblib's array body read straight into the array with `readinto`: one copy of the bytes,
    where joblib's own reader copies each 256 KiB piece twice. Same layout rules as joblib's
    `read_array` (alignment padding, C or Fortran order, byte order); the tests compare the two."""
    count = int(np.prod(wrapper.shape, dtype=np.int64)) if len(wrapper.shape) else 1
    if wrapper.safe_get_numpy_array_alignment_bytes() is not None:
        padding = handle.read(1)
        if padding and padding[0]:
            handle.read(padding[0])
    array = np.empty(count, dtype=wrapper.dtype)
    target = memoryview(array).cast("B")
    filled = 0
    while filled < len(target):
        got = handle.readinto(target[filled:])
        if not got:
            raise pickle.UnpicklingError(f"EOF: array data ends after {filled} of {len(target)} bytes")
        filled += got
    array = array.reshape(wrapper.shape[::-1]).transpose() if wrapper.order == "F" else array.reshape(wrapper.shape)
    return numpy_pickle._ensure_native_byte_order(array) if native else array


class _AllowlistUnpickler(numpy_pickle.NumpyUnpickler):
    allowed: frozenset[str] = frozenset()
    dispatch = numpy_pickle.NumpyUnpickler.dispatch.copy()

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified not in self.allowed:
            raise RefusedGlobal(qualified)
        return super().find_class(module, name)

    def load_build(self) -> None:
        """Plain numeric arrays are read in place; anything else (object arrays, subclasses, a
        handle without readinto) the way joblib reads it."""
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]  # joblib's base is the Python unpickler
        wrapper = self.stack[-1]
        if isinstance(wrapper, numpy_pickle.NDArrayWrapper):  # joblib <= 0.9 files, if allowlisted
            self.compat_mode = True
            self.stack[-1] = wrapper.read(self)
            return
        if not isinstance(wrapper, numpy_pickle.NumpyArrayWrapper):
            return
        self.stack.pop()
        in_place = (
            not wrapper.dtype.hasobject
            and wrapper.subclass is np.ndarray
            and self.mmap_mode is None
            and hasattr(self.file_handle, "readinto")
        )
        if in_place:
            self.stack.append(_read_array_in_place(wrapper, self.file_handle, self.ensure_native_byte_order))
        else:
            self.stack.append(wrapper.read(self, self.ensure_native_byte_order))

    dispatch[pickle.BUILD[0]] = load_build


@dataclass
class LoadedModel:
    model: Any
    sklearn_version: str
    runtime_sklearn_version: str
    version_warnings: list[str] = field(default_factory=list)

    @property
    def version_skew(self) -> bool:
        return self.sklearn_version != self.runtime_sklearn_version


class UntrustedTypes(pickle.UnpicklingError):
    def __init__(self, names: list[str]):
        super().__init__(f"refused untrusted types in the skops file: {', '.join(names)}; nothing was loaded")
        self.names = names


def _load_skops(data: bytes, allowed: frozenset[str]) -> Any:
    import skops.io

    types = skops.io.get_untrusted_types(data=data)
    untrusted = [name for name in types if name not in allowed]
    if untrusted:
        raise UntrustedTypes(sorted(untrusted))
    return skops.io.loads(data, trusted=sorted(types))


def load_model_stream(
    handle: BinaryIO, name: str, extra_allowed: Iterable[str] = (), caps: LoadCaps | None = None
) -> LoadedModel:
    """Load a model from a sequential stream (a tar member as it inflates: no copy on disk).
    joblib (compressed or not) and plain pickle go through the allowlist; skops through its
    trusted-type check."""
    allowed = default_allowlist() | frozenset(extra_allowed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        if name.endswith(".skops"):
            model = _load_skops(handle.read(), allowed)
        else:
            unpickler_class = type("Unpickler", (_AllowlistUnpickler,), {"allowed": allowed})
            with numpy_pickle._validate_fileobject_and_memmap(handle, name, None) as (stream, _):
                if isinstance(stream, str):
                    raise pickle.UnpicklingError("joblib < 0.10 file format is not supported")
                model = unpickler_class(name, stream, True).load()
    return _loaded(model, caught)


def load_model(path: Path, extra_allowed: Iterable[str] = (), caps: LoadCaps | None = None) -> LoadedModel:
    with open(path, "rb") as handle:
        return load_model_stream(handle, path.name, extra_allowed, caps)


def _loaded(model: Any, caught: list[warnings.WarningMessage]) -> LoadedModel:
    """The version a model was pickled with is only visible in scikit-learn's warning about it."""
    version = sklearn.__version__
    recorded: list[str] = []
    for warning in caught:
        if isinstance(warning.message, InconsistentVersionWarning):
            version = warning.message.original_sklearn_version
            recorded.append(str(warning.message))
    return LoadedModel(
        model=model,
        sklearn_version=version,
        runtime_sklearn_version=sklearn.__version__,
        version_warnings=recorded,
    )
