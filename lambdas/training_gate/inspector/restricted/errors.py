"""What a refused model file raises. Each is an UnpicklingError or a ValueError, so a caller that treats
a corrupt file and a refused one alike needs no list of its own."""

from __future__ import annotations

import pickle


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, name: str):
        super().__init__(f"refused global {name!r}: not on the allowlist, nothing from the file was run")
        self.name = name


class RefusedCall(pickle.UnpicklingError):
    """REDUCE/NEWOBJ/BUILD asked for something the allowlist admits only as a reference, or with
    arguments or a state its rule refuses."""


class CapExceeded(pickle.UnpicklingError):
    """A length claimed inside the file is more than the file (or the cap) can hold."""

    def __init__(self, cap: str, detail: str):
        super().__init__(f"{detail} ({cap})")
        self.cap = cap


class UntrustedTypes(pickle.UnpicklingError):
    def __init__(self, names: list[str]):
        super().__init__(f"refused untrusted types in the skops file: {', '.join(names)}; nothing was loaded")
        self.names = names


class InvalidStructure(ValueError):
    """An object's state is not one the library writes, or would make C code read or write outside its
    arrays, or loop."""

    def __init__(self, cls: str, field: str, problem: str):
        super().__init__(f"invalid {cls}: {field} {problem}")
        self.cls = cls
        self.field = field
