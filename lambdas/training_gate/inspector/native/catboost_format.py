"""CatBoost's `.cbm`: recognised by its magic, never parsed by the gate.

CatBoost documents no schema for the binary model (a `CBM1` magic, a flatbuffers core and blobs), so
the gate cannot validate it; its C loader runs only inside the contained child, and the report says
the bytes were not validated first. CatBoost's exports of Python or C++ code are never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from training_gate.inspector.native import pickle_data
from training_gate.inspector.native.errors import Reason, refuse

MAGIC = b"CBM1"
NOT_VALIDATED = "CatBoost's binary model has no documented schema: the bytes were not validated before its loader"
# A pickled estimator holds the .cbm bytes under `__model` (CatBoost.__getstate__); the rest is parameters.
PICKLED_CLASSES = frozenset(
    f"catboost.core.{name}" for name in ("CatBoost", "CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker")
)


@dataclass(frozen=True)
class CatBoostFile:
    size: int
    validated: bool = False
    note: str = NOT_VALIDATED
    blob: bytes = field(default=b"", repr=False)
    source_format: str = "cbm"
    estimator: str | None = None

    def describe(self) -> dict[str, object]:
        facts: dict[str, Any] = {"framework": "catboost", "format": self.source_format}
        if self.estimator:
            facts["estimator"] = self.estimator
        return {**facts, "bytes_validated": self.validated, "note": self.note}


def is_catboost(head: bytes) -> bool:
    return head[:4] == MAGIC


def recognise_catboost(data: bytes) -> CatBoostFile:
    """A .cbm file, or a pickled CatBoost estimator read as data for the .cbm bytes it holds."""
    if data[:1] == b"\x80":
        value = pickle_data.read_pickle(data, PICKLED_CLASSES, "catboost pickle", arrays=True)
        if not isinstance(value, pickle_data.PickledObject) or value.cls not in PICKLED_CLASSES:
            raise refuse(Reason.PICKLE_SHAPE, "the pickle holds no CatBoost estimator", "catboost pickle")
        blob = value.state.get("__model")
        if not isinstance(blob, bytes) or not is_catboost(blob):
            raise refuse(Reason.PICKLE_SHAPE, "the estimator's state holds no CBM1 model under __model", "pickle")
        return CatBoostFile(len(blob), blob=blob, source_format="pickle", estimator=value.cls.rsplit(".", 1)[-1])
    if not is_catboost(data):
        raise refuse(Reason.NOT_THIS_FORMAT, "no CBM1 magic", "catboost")
    return CatBoostFile(size=len(data), blob=bytes(data))
