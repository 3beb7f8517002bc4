"""The one exception the checkpoint readers raise: a refusal naming what is wrong with the bytes.

Every reader in this package turns whatever it meets (a length past the end, a global outside the
table, a storage shorter than its tensor, an operation outside the allowlist) into a `Refused` with a
stable reason code and a sentence; random byte flips and truncations of every fixture must give a
`Refused`, never another exception and never a hang.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a checkpoint was refused, stable across releases: reports and tests name these."""

    TRUNCATED = "TRUNCATED"
    MALFORMED = "MALFORMED"
    LIMIT = "LIMIT"
    UNSUPPORTED = "UNSUPPORTED"
    ZIP_AMBIGUOUS = "ZIP_AMBIGUOUS"
    PICKLE_GLOBAL_REFUSED = "PICKLE_GLOBAL_REFUSED"
    PICKLE_OPCODE_REFUSED = "PICKLE_OPCODE_REFUSED"
    PICKLE_SHAPE = "PICKLE_SHAPE"
    USER_CLASS = "USER_CLASS"
    STORAGE_MISMATCH = "STORAGE_MISMATCH"
    TENSOR_OUT_OF_BOUNDS = "TENSOR_OUT_OF_BOUNDS"
    SAFETENSORS_HEADER = "SAFETENSORS_HEADER"
    SHARDS_INCONSISTENT = "SHARDS_INCONSISTENT"
    OPERATION_REFUSED = "OPERATION_REFUSED"
    LAYER_REFUSED = "LAYER_REFUSED"
    WEIGHTS_MISMATCH = "WEIGHTS_MISMATCH"
    NOT_FINITE = "NOT_FINITE"
    CONFIG_INVALID = "CONFIG_INVALID"


class Refused(ValueError):
    """The checkpoint is not one the gate lets a serving container load. `reason` is a `Reason`;
    `where` names the file or part (a record, a tensor, a layer), `detail` what is wrong with it."""

    def __init__(self, reason: Reason, detail: str, where: str = "") -> None:
        self.reason = reason
        self.detail = detail
        self.where = where
        super().__init__(f"{reason}: {where + ': ' if where else ''}{detail}")


def refuse(reason: Reason, detail: str, where: str = "") -> Refused:
    return Refused(reason, detail, where)
