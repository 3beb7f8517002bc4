"""The one exception the native readers raise: a refusal naming what is wrong with the bytes.

Every parser and validator in this package turns whatever it meets (a short file, a length past the
end, a cycle, an unknown objective) into a `NativeRefusal` with a stable reason code and a sentence;
a test feeds random byte flips and truncations to each parser and accepts no other exception.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why bytes were refused, stable across releases: reports and tests name these."""

    TRUNCATED = "TRUNCATED"
    TRAILING_BYTES = "TRAILING_BYTES"
    LENGTH_TOO_LARGE = "LENGTH_TOO_LARGE"
    NOT_THIS_FORMAT = "NOT_THIS_FORMAT"
    MALFORMED = "MALFORMED"
    UNSUPPORTED = "UNSUPPORTED"
    UNKNOWN_OBJECTIVE = "UNKNOWN_OBJECTIVE"
    INCONSISTENT = "INCONSISTENT"
    NOT_FINITE = "NOT_FINITE"
    CHILD_OUT_OF_RANGE = "CHILD_OUT_OF_RANGE"
    NOT_A_TREE = "NOT_A_TREE"
    FEATURE_OUT_OF_RANGE = "FEATURE_OUT_OF_RANGE"
    CATEGORY_OUT_OF_RANGE = "CATEGORY_OUT_OF_RANGE"
    PICKLE_GLOBAL_REFUSED = "PICKLE_GLOBAL_REFUSED"
    PICKLE_SHAPE = "PICKLE_SHAPE"
    TENSOR_TOO_LARGE = "TENSOR_TOO_LARGE"
    TENSOR_SIZE_MISMATCH = "TENSOR_SIZE_MISMATCH"
    EXTERNAL_DATA_OUTSIDE = "EXTERNAL_DATA_OUTSIDE"
    OPERATOR_DOMAIN_REFUSED = "OPERATOR_DOMAIN_REFUSED"
    ONNX_CHECK_FAILED = "ONNX_CHECK_FAILED"
    INPUT_WIDTH = "INPUT_WIDTH"
    PREDICTION_INVALID = "PREDICTION_INVALID"


class NativeRefusal(ValueError):
    """The bytes are not a model the gate lets a C parser see. `reason` is a `Reason`; `where` says
    which part of the file (a tree, a field, a tensor), `detail` what is wrong with it."""

    def __init__(self, reason: Reason, detail: str, where: str = "") -> None:
        self.reason = reason
        self.detail = detail
        self.where = where
        super().__init__(f"{reason}: {where + ': ' if where else ''}{detail}")


def refuse(reason: Reason, detail: str, where: str = "") -> NativeRefusal:
    return NativeRefusal(reason, detail, where)
