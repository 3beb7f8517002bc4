"""The allowlist: every name a model file may use, resolved once to the object it means, with what the gate
does with that object (its role). The readers look a file's (module, name) up here and get the object
this table resolved; what happens next is decided by the role found for that object by identity.

Nothing here reads a name off an object: names come from this module's lists and from the schema data,
and each is imported once, when the table is built.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from training_gate.inspector.restricted import numpy_builders as nb
from training_gate.inspector.restricted import sklearn_builders as sb
from training_gate.inspector.restricted.errors import RefusedGlobal

LOSS_NAMES = (
    "AbsoluteError",
    "ExponentialLoss",
    "HalfBinomialLoss",
    "HalfGammaLoss",
    "HalfMultinomialLoss",
    "HalfPoissonLoss",
    "HalfSquaredError",
    "HalfTweedieLoss",
    "HalfTweedieLossIdentity",
    "HuberLoss",
    "PinballLoss",
)
SGD_LOSSES = (
    "Hinge",
    "Log",
    "ModifiedHuber",
    "SquaredLoss",
    "Huber",
    "EpsilonInsensitive",
    "SquaredEpsilonInsensitive",
    "SquaredHinge",
)
METRICS = (
    "EuclideanDistance",
    "ManhattanDistance",
    "ChebyshevDistance",
    "MinkowskiDistance",
    "WMinkowskiDistance",
    "SEuclideanDistance",
    "MahalanobisDistance",
    "HaversineDistance",
    "HammingDistance",
    "CanberraDistance",
    "BrayCurtisDistance",
    "JaccardDistance",
    "MatchingDistance",
    "DiceDistance",
    "KulsinskiDistance",
    "RogersTanimotoDistance",
    "RussellRaoDistance",
    "SokalMichenerDistance",
    "SokalSneathDistance",
)
BIT_GENERATORS = (
    ("_mt19937", "MT19937"),
    ("_pcg64", "PCG64"),
    ("_pcg64", "PCG64DXSM"),
    ("_philox", "Philox"),
    ("_sfc64", "SFC64"),
)
# Types a model may hold as a value (an estimator's dtype parameter); none is ever called while loading.
SCALAR_TYPES = (
    *(
        f"numpy.{name}"
        for name in (
            "float64",
            "float32",
            "float16",
            "int64",
            "int32",
            "int16",
            "int8",
            "uint64",
            "uint32",
            "uint16",
            "uint8",
            "bool_",
            "bool",  # numpy 2's name of bool_
            "complex128",
            "complex64",
            "str_",
            "bytes_",
            "object_",
            "number",  # make_column_selector(dtype_include=np.number)
        )
    ),
    "builtins.float",
    "builtins.int",
    "builtins.bool",
    "builtins.str",
)


def _both_numpy(path: str) -> tuple[str, str]:
    """numpy 1.x pickles name numpy.core.*, numpy 2.x numpy._core.*."""
    return (f"numpy.core.{path}", f"numpy._core.{path}")


@dataclass(frozen=True)
class Role:
    name: str  # the allowlisted name, for messages
    obj: Any
    call: Callable[[Any, tuple], Any] | None = None  # REDUCE: validates the arguments, builds the result
    new: Callable[[Any, type], Any] | None = None  # NEWOBJ: creates an empty instance awaiting its state
    estimator: bool = False  # an estimator class: may sit wherever the schema admits any estimator


def resolve_name(name: str) -> Any:
    """The object a dotted name means in this environment, or None (another numpy or scikit-learn)."""
    module, _, attr = name.rpartition(".")
    module = {"__builtin__": "builtins"}.get(module, module)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy.core under numpy 2, deprecated modules
            return getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None


class Table:
    def __init__(self) -> None:
        self._by_name: dict[tuple[str, str], Any] = {}
        self._by_id: dict[int, Role] = {}

    def add(self, names: Iterable[str], call: Any = None, new: Any = None, estimator: bool = False) -> Any:
        """Allow every spelling in `names` that exists here; all must mean one object. Returns it."""
        found = [(name, resolve_name(name)) for name in names]
        return self._add([(name, obj) for name, obj in found if obj is not None], call, new, estimator)

    def add_object(self, names: Iterable[str], obj: Any, call: Any = None, new: Any = None) -> Any:
        """Allow `names` as `obj`, an object of the gate's own standing for one this environment's library no
        longer defines."""
        return self._add([(name, obj) for name in names], call, new, False)

    def _add(self, found: list[tuple[str, Any]], call: Any, new: Any, estimator: bool) -> Any:
        if not found:
            return None
        obj = found[0][1]
        if any(other is not obj for _name, other in found):
            raise ValueError(f"{[n for n, _ in found]} name different objects")
        role = self._by_id.get(id(obj))
        if role is None or role.obj is not obj:
            role = Role(found[0][0], obj, call, new, estimator)
        else:  # a second entry for the same object adds to its role
            role = Role(role.name, obj, role.call or call, role.new or new, role.estimator or estimator)
        self._by_id[id(obj)] = role
        for name, _obj in found:
            module, _, attr = name.rpartition(".")
            self._by_name[(module, attr)] = obj
        return obj

    def resolve(self, module: str, name: str) -> Any:
        obj = self._by_name.get((module, name))
        if obj is None:
            raise RefusedGlobal(f"{module}.{name}")
        return obj

    def lookup(self, name: str) -> Any:
        module, _, attr = name.rpartition(".")
        return self._by_name.get((module, attr))

    def role_of(self, obj: Any) -> Role | None:
        role = self._by_id.get(id(obj))
        return role if role is not None and role.obj is obj else None

    def names(self) -> list[str]:
        return sorted(f"{module}.{name}" for module, name in self._by_name)

    def add_pickled_spellings(self) -> None:
        """Also admit, for each allowlisted object, the name pickle writes for it when that differs from
        the listed ones (scikit-learn 1.5's wheels define the Cython losses in a module named `_loss`).
        Added only when that name resolves to this very object."""
        for role in list(self._by_id.values()):
            module = getattr(role.obj, "__module__", None)
            qualname = getattr(role.obj, "__qualname__", None)
            if type(module) is str and type(qualname) is str and (module, qualname) not in self._by_name:
                spelling = f"{module}.{qualname}"
                if resolve_name(spelling) is role.obj:
                    self._by_name[(module, qualname)] = role.obj


def fixed_table() -> Table:
    """Everything the gate builds with its own code: numpy, the core types, scikit-learn's Cython objects."""
    table = Table()
    add = table.add
    add(["numpy.dtype"], call=nb.call_dtype)
    add(["numpy.ndarray"])
    add(["numpy.ma.core.MaskedArray", "numpy.ma.MaskedArray"])
    add(["numpy.matrix", "numpy.matrixlib.defmatrix.matrix"])
    add(_both_numpy("multiarray._reconstruct"), call=nb.call_reconstruct)
    add(_both_numpy("multiarray.scalar"), call=nb.call_scalar)
    add(_both_numpy("numeric._frombuffer"), call=nb.call_frombuffer)
    add(["numpy.ma.core._mareconstruct"], call=nb.call_mareconstruct)
    add(["joblib.numpy_pickle.NumpyArrayWrapper"], new=nb.new_wrapper)
    add(["numpy.random._pickle.__bit_generator_ctor"], call=nb.call_bit_generator)
    add(["numpy.random._pickle.__generator_ctor"], call=nb.call_generator)
    add(["numpy.random._pickle.__randomstate_ctor"], call=nb.call_random_state)
    add(["numpy.random.bit_generator.__pyx_unpickle_SeedSequence"], call=nb.call_seed_sequence)
    add(["numpy.random.bit_generator.SeedSequence", "numpy.random.SeedSequence"])
    add(["numpy.random.mtrand.RandomState", "numpy.random.RandomState"])
    add(["numpy.random._generator.Generator", "numpy.random.Generator"])
    for module, name in BIT_GENERATORS:
        add([f"numpy.random.{module}.{name}", f"numpy.random.{name}"])
    for name in SCALAR_TYPES:
        add([name])
    for spelling in ("builtins", "__builtin__"):  # protocol 2 names builtins so (Python 2 spelling)
        add([f"{spelling}.slice"], call=sb.call_slice)
        add([f"{spelling}.complex"], call=sb.call_complex)
        add([f"{spelling}.bytes"], call=sb.call_bytes)
        add([f"{spelling}.set"], call=sb.call_set)
        add([f"{spelling}.frozenset"], call=sb.call_frozenset)
    add(["collections.OrderedDict"], call=sb.call_ordered_dict)
    add(["_codecs.encode"], call=sb.call_encode)
    add(["functools.partial"], call=sb.call_partial)
    add(["sklearn.utils.validation.check_array"])
    add(["sklearn.tree._tree.Tree"], call=sb.call_tree)
    for module in ("sklearn.metrics._dist_metrics", "sklearn.neighbors._kd_tree", "sklearn.neighbors._ball_tree"):
        add([f"{module}.newObj"], call=sb.call_new_object)
    for kind in ("KDTree", "BallTree"):
        module = f"sklearn.neighbors._{kind[:-4].lower()}_tree"
        for suffix in ("", "64", "32"):
            add([f"{module}.{kind}{suffix}"], new=sb.new_cython)
    for name in METRICS:
        for suffix in ("", "64", "32"):
            add([f"sklearn.metrics._dist_metrics.{name}{suffix}"], new=sb.new_cython)
    for name in LOSS_NAMES:
        cls = resolve_name(f"sklearn._loss._loss.Cy{name}")
        if cls is not None:
            add([f"sklearn._loss._loss.Cy{name}"], call=sb.scalar_loss(cls))
            add([f"sklearn._loss._loss.__pyx_unpickle_Cy{name}"], call=sb.loss_unpickle(cls))
    for name in SGD_LOSSES:
        cls = resolve_name(f"sklearn.linear_model._sgd_fast.{name}")
        if cls is not None:
            add([f"sklearn.linear_model._sgd_fast.{name}"], call=sb.scalar_loss(cls))
    table.add_pickled_spellings()
    return table
