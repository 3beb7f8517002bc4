"""What a load is judged against in this process: the allowlist table (the gate's fixed builders, the
classes and references of this scikit-learn's schema, the deployment's extra names), the schemas of the
supported versions, and the invariants. Built once per set of extra names; the sandbox's zygote builds
the default one before it forks, so each inspection starts with it ready."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import sklearn

from training_gate.inspector.invariants import Invariants
from training_gate.inspector.restricted import sklearn_builders as sb
from training_gate.inspector.restricted.table import Table, fixed_table, resolve_name
from training_gate.inspector.schema import ClassSchema, VersionSchema, available_versions, version_schema
from training_gate.inspector.schema.patterns import Matcher, Pattern

# What a model file's top level may be when it is not an estimator itself (a dict of a model and its
# metadata, say): plain data, and estimators held to their own schema. No function, class or partial.
_PLAIN: Pattern = {kind: True for kind in ("none", "bool", "int", "float", "complex", "str", "bytes")}
_ARRAYS = {kind: list(range(33)) for kind in ("bool", "int", "float", "complex", "str", "bytes")}
_ANY_ARRAY = {**_ARRAYS, "V": list(range(33)), "object": {"ndims": list(range(33)), "items": _PLAIN}}
ROOT: Pattern = {**_PLAIN, "array": _ANY_ARRAY, "masked": _ANY_ARRAY, "estimators": True}
for _container in ("list", "tuple", "set", "frozenset"):
    ROOT[_container] = ROOT
ROOT["dict"] = ROOT["odict"] = {"keys": _PLAIN, "values": ROOT}
ROOT["objects"] = ["scipy.sparse._csr.csr_matrix", "scipy.sparse._csc.csc_matrix", "scipy.sparse._coo.coo_matrix"]


@dataclass
class Environment:
    table: Table
    runtime: VersionSchema | None
    schemas: dict[str, VersionSchema]
    invariants: Invariants
    pattern_cache: dict[tuple[int, str], frozenset[int]] = field(default_factory=dict)
    extra: frozenset[str] = frozenset()
    # The states XGBoost and LightGBM write for their classes (inspector/plugins/pickled.py), by name.
    frameworks: dict[str, ClassSchema] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return sklearn.__version__

    def is_estimator(self, cls: type) -> bool:
        role = self.table.role_of(cls)
        return role is not None and role.estimator

    trusted_functions: frozenset[int] = frozenset()

    def matcher(self) -> Matcher:
        matcher = Matcher(self.table.lookup, self.is_estimator, self.pattern_cache)
        matcher.trusted_functions = self.trusted_functions
        return matcher

    def class_schema(self, cls: type, recorded: Any = None) -> ClassSchema | None:
        """The schema a state of `cls` is held to: the recording version's, if supported, else ours."""
        role = self.table.role_of(cls)
        if role is None:
            return None
        for version in (recorded, self.version):
            schema = self._schema_of(version) if isinstance(version, str) else None
            if schema is not None and role.name in schema.classes:
                return schema.classes[role.name]
        return self.frameworks.get(role.name)

    def _schema_of(self, version: str) -> VersionSchema | None:
        if version not in self.schemas and version in available_versions():
            found = version_schema(version)
            if found is not None:
                self.schemas[version] = found
        return self.schemas.get(version)


_LOCK = threading.Lock()
_BUILT: dict[frozenset[str], Environment] = {}


def environment(extra: frozenset[str] = frozenset()) -> Environment:
    # Building it imports every estimator module; two threads doing that at once can see a
    # half-imported module, so builds are serialised.
    with _LOCK:
        found = _BUILT.get(extra)
        if found is None:
            found = _BUILT[extra] = _build(extra)
        return found


def _build(extra: frozenset[str]) -> Environment:
    table = fixed_table()
    # Only this version's schema is read now; another supported version's, when a state says it wrote it.
    runtime = version_schema(sklearn.__version__)
    schemas = {sklearn.__version__: runtime} if runtime is not None else {}
    if runtime is not None:
        for name, spec in runtime.classes.items():
            table.add([name], new=sb.new_instance, estimator=spec.estimator)
        for name in runtime.references:
            table.add([name])
    from training_gate.inspector.plugins import pickled

    frameworks = pickled.register(table)
    trusted: set[int] = set()
    for name in sorted(extra):
        obj = resolve_name(name)
        if isinstance(obj, type):
            # The deployment named it: it may sit wherever any estimator may (a pipeline step, the model).
            table.add([name], new=sb.new_user_instance, estimator=True)
        elif obj is not None:
            table.add([name])  # a function: referenced, never called while loading
            trusted.add(id(obj))
    found = Environment(table, runtime, schemas, Invariants(table.lookup), extra=extra, frameworks=frameworks)
    found.trusted_functions = frozenset(trusted)
    return found
