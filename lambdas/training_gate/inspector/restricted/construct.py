"""One load's construction: the three things a model file may ask for, each decided by the gate.

- `call(func, args)` (pickle REDUCE, a skops constructor): `func` must be an allowlisted object, found by
  identity, whose role has a call rule; the rule validates `args` and builds the result itself.
- `new(cls)` (NEWOBJ, scikit-learn's `newObj`, a skops ObjectNode): an allowlisted class whose role
  creates an empty instance; nothing of the file reaches it.
- `build(obj, state)` (BUILD, a skops node's content): only on an object this load created, once, with
  the handler its creator registered. The handler validates the state as data (the schema of the state
  the library writes, and the state-level invariants) and only then sets it.

`finish(root)` then gives the empty state to whatever was never built, checks the top level, and runs
the model-level invariants over the whole graph, before anything calls the model. The pickle and skops
readers share all of this, so they enforce the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from training_gate.inspector.restricted.errors import InvalidStructure, RefusedCall

if TYPE_CHECKING:
    from training_gate.inspector.restricted.environment import Environment
    from training_gate.inspector.restricted.table import Role

# A BUILD handler: (construction, the object, the state or None) -> the object now on the stack.
BuildHandler = Callable[["Construction", Any, Any], Any]


class Construction:
    def __init__(self, env: Environment):
        self.env = env
        self.table = env.table
        self.matcher = env.matcher()
        self.matcher.name_of = self.name_of
        # id -> (the object, its BUILD handler, whether it may stay unbuilt): objects this load created
        # that still wait for their state. The object is held, so its id cannot be reused meanwhile.
        self._awaiting: dict[int, tuple[Any, BuildHandler, bool]] = {}
        # The scikit-learn version each estimator's state says wrote it, in the order they were built.
        self.versions: list[str] = []

    # -- names --------------------------------------------------------------------------------------

    def name_of(self, obj: Any) -> str:
        """The allowlisted name of an object, for messages; never read from the object itself."""
        role = self.table.role_of(obj)
        if role is not None:
            return role.name
        role = self.table.role_of(type(obj))
        if role is not None:
            return f"an instance of {role.name}"
        return f"an object the allowlist does not name ({type(obj).__name__})"

    def role(self, obj: Any) -> Role | None:
        return self.table.role_of(obj)

    # -- the three operations -----------------------------------------------------------------------------

    def call(self, func: Any, args: Any) -> Any:
        role = self.table.role_of(func)
        if role is None or role.call is None:
            raise RefusedCall(f"{self.name_of(func)} may not be called while loading; nothing was run")
        if type(args) is not tuple:
            raise RefusedCall(f"a call of {role.name} without an argument tuple; nothing was run")
        return role.call(self, args)

    def new(self, cls: Any) -> Any:
        role = self.table.role_of(cls)
        if role is None or role.new is None:
            raise RefusedCall(f"{self.name_of(cls)} is not a class the gate builds instances of; nothing was run")
        return role.new(self, cls)

    def build(self, obj: Any, state: Any) -> Any:
        entry = self._awaiting.pop(id(obj), None)
        if entry is None or entry[0] is not obj:
            raise RefusedCall(
                f"BUILD on {self.name_of(obj)} refused: a state is given once, only to an object this load "
                "created for it; nothing was run"
            )
        return entry[1](self, obj, state)

    def awaiting(self, obj: Any) -> bool:
        entry = self._awaiting.get(id(obj))
        return entry is not None and entry[0] is obj

    # -- for the handlers --------------------------------------------------------------------------------

    def expect_build(self, obj: Any, handler: BuildHandler, optional: bool = False) -> Any:
        """Register `obj` (just created) as waiting for its state; `optional`: it may also stay as it is."""
        self._awaiting[id(obj)] = (obj, handler, optional)
        return obj

    def check_instance_state(self, cls: type, state: Any) -> None:
        """The state must be one the library writes for `cls`: its schema, then its state invariants."""
        schema = self.env.class_schema(cls, state.get("_sklearn_version") if type(state) is dict else None)
        if schema is None:
            raise InvalidStructure(
                cls.__name__, "state", f"has no schema for scikit-learn {self.env.version}: the gate cannot judge it"
            )
        found = schema.problem(state, self.matcher)
        if found is not None:
            raise InvalidStructure(cls.__name__, found[0], found[1])

    def check_items(self, obj: Any) -> None:
        """A dict subclass's own items (a Bunch's), against its schema's item pattern."""
        schema = self.env.class_schema(type(obj))
        if schema is None or schema.items is None:
            if len(obj):
                raise InvalidStructure(type(obj).__name__, "items", "are not items the library writes")
            return
        problem = self.matcher.problem(dict(obj), {"dict": schema.items})
        if problem:
            raise InvalidStructure(type(obj).__name__, "items", problem)
        self.matcher.sealed[id(obj)] = obj

    def check_state(self, obj: Any, state: Any) -> None:
        """The state-level invariants of `obj`'s class, before its own code sees `state`."""
        self.env.invariants.check_state(obj, state)

    def check_plain(self, owner: str, state: dict[str, Any]) -> None:
        from training_gate.inspector.restricted.environment import ROOT

        for key, value in state.items():
            problem = self.matcher.problem(value, ROOT)
            if problem:
                raise InvalidStructure(owner, key, problem)

    # -- the end -----------------------------------------------------------------------------------------

    def finish(self, root: Any) -> None:
        """An object created without a state gets the empty one, validated like any other (a class whose
        states have required attributes refuses it); then the top level and the model invariants."""
        from training_gate.inspector.restricted.environment import ROOT
        from training_gate.inspector.structures import validate_model

        for key, (obj, handler, optional) in list(self._awaiting.items()):
            del self._awaiting[key]
            if not optional:
                handler(self, obj, None)
        problem = self.matcher.problem(root, ROOT)
        if problem:
            raise InvalidStructure("model", "top level", problem)
        validate_model(root, self.env.invariants)

    def sealed(self, obj: Any) -> bool:
        return self.matcher.sealed.get(id(obj)) is obj
