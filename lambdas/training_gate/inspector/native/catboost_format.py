"""CatBoost's `.cbm`: recognised by its magic, never parsed by the gate.

CatBoost documents no schema for the binary model (a `CBM1` magic, a flatbuffers core and blobs), so
the gate cannot validate it; its C loader runs only inside the contained child, and the report says
the bytes were not validated first. CatBoost's exports of Python or C++ code are never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from training_gate.inspector.native.errors import Reason, refuse

MAGIC = b"CBM1"
NOT_VALIDATED = "CatBoost's binary model has no documented schema: the bytes were not validated before its loader"


@dataclass(frozen=True)
class CatBoostFile:
    size: int
    validated: bool = False
    note: str = NOT_VALIDATED

    def describe(self) -> dict[str, object]:
        return {"framework": "catboost", "format": "cbm", "bytes_validated": self.validated, "note": self.note}


def is_catboost(head: bytes) -> bool:
    return head[:4] == MAGIC


def recognise_catboost(data: bytes) -> CatBoostFile:
    if not is_catboost(data):
        raise refuse(Reason.NOT_THIS_FORMAT, "no CBM1 magic", "catboost")
    return CatBoostFile(size=len(data))
