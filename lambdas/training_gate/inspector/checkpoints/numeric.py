"""The numbers of every tensor, read in bounded windows of the file, and the rules that judge them.

A tensor is a place in a file (the byte where its storage starts), a dtype, and the size, stride and
offset a framework will index with; the readers check those against the storage's bytes before this
module reads anything (`check_bounds`). Reading maps one window of at most `WINDOW` bytes at a time,
so resident memory stays bounded whatever the checkpoint's size, and counts NaN, infinities and zeros,
the minimum, maximum and largest magnitude.

The rules (`judge`): a NaN anywhere rejects, naming the tensors; an infinity warns (attention masks
hold -inf) and the policy may reject it; an all-zero or constant floating tensor of more than one
element and a magnitude above `EXTREME` warn.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training_gate.inspector.checkpoints.dtypes import DType, as_numbers
from training_gate.inspector.checkpoints.errors import Reason, refuse

WINDOW = 64 << 20
EXTREME = 1e6
NAMES_SHOWN = 5


@dataclass(frozen=True)
class TensorPlace:
    """Where a tensor's elements are: `path` from byte `base` (its storage's first element), `storage_bytes`
    long; element (i, j, ...) is at `offset + i*stride[0] + j*stride[1] + ...` elements of `dtype`."""

    name: str
    path: Path
    base: int
    storage_bytes: int
    dtype: DType
    size: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int = 0

    @property
    def numel(self) -> int:
        return math.prod(self.size)

    @property
    def contiguous(self) -> bool:
        expected = 1
        for extent, step in zip(reversed(self.size), reversed(self.stride), strict=True):
            if extent != 1 and step != expected:
                return False
            expected *= extent
        return True

    @classmethod
    def dense(cls, name: str, path: Path, base: int, nbytes: int, dtype: DType, shape: tuple[int, ...]) -> TensorPlace:
        stride, step = [], 1
        for extent in reversed(shape):
            stride.append(step)
            step *= extent
        return cls(name, path, base, nbytes, dtype, tuple(shape), tuple(reversed(stride)))


def check_bounds(place: TensorPlace, where: str) -> None:
    """Every element the size, stride and offset reach lies inside the storage (what C code indexes)."""
    if len(place.size) != len(place.stride) or any(v < 0 for v in (*place.size, *place.stride, place.offset)):
        raise refuse(Reason.TENSOR_OUT_OF_BOUNDS, f"{place.name}: malformed size {place.size} / stride", where)
    if place.dtype.itemsize and place.offset * place.dtype.itemsize > place.storage_bytes:
        # Even an empty tensor's data pointer is its storage's plus the offset: it may end the storage,
        # never pass it (torch writes a slice past the end as an offset at the end).
        raise refuse(
            Reason.TENSOR_OUT_OF_BOUNDS,
            f"{place.name} starts at element {place.offset}, past its storage of "
            f"{place.storage_bytes // place.dtype.itemsize}",
            where,
        )
    if place.numel == 0:
        return
    last = place.offset + sum((extent - 1) * step for extent, step in zip(place.size, place.stride, strict=True))
    if place.dtype.itemsize and (last + 1) * place.dtype.itemsize > place.storage_bytes:
        raise refuse(
            Reason.TENSOR_OUT_OF_BOUNDS,
            f"{place.name} reads element {last} of its storage ({place.dtype.name}, size {list(place.size)}, "
            f"stride {list(place.stride)}, offset {place.offset}), which holds "
            f"{place.storage_bytes // place.dtype.itemsize}",
            where,
        )


@dataclass
class Stats:
    count: int = 0
    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    zeros: int = 0
    minimum: float = math.inf
    maximum: float = -math.inf
    read: bool = True  # False when the dtype has no numeric reading here

    def add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        if np.iscomplexobj(values):
            self.add(np.ascontiguousarray(values.real))
            self.add(np.ascontiguousarray(values.imag))
            self.count -= values.size  # each complex element counted once
            return
        self.count += values.size
        if values.dtype.kind == "f":
            nan = np.isnan(values)
            self.nan += int(nan.sum())
            infinite = np.isinf(values)
            if infinite.any():
                self.posinf += int((infinite & (values > 0)).sum())
                self.neginf += int((infinite & (values < 0)).sum())
            finite = values[~(nan | infinite)] if (self.nan or infinite.any()) else values
        else:
            finite = values
        if finite.size:
            self.zeros += int(finite.size - np.count_nonzero(finite))
            self.minimum = min(self.minimum, float(finite.min()))
            self.maximum = max(self.maximum, float(finite.max()))

    @property
    def magnitude(self) -> float:
        return max(abs(self.minimum), abs(self.maximum)) if self.minimum <= self.maximum else 0.0


def _windows(place: TensorPlace) -> Iterator[np.ndarray]:
    """The tensor's elements as raw uint8 arrays of whole elements, one bounded window at a time."""
    size = place.dtype.itemsize
    if place.numel == 0:
        return
    if place.contiguous:
        start = place.base + place.offset * size
        total = place.numel * size
        step = max(size, WINDOW - WINDOW % size)
        for begin in range(0, total, step):
            length = min(step, total - begin)
            yield np.array(np.memmap(place.path, dtype=np.uint8, mode="r", offset=start + begin, shape=(length,)))
        return
    # A strided view (a transposed slice saved with its whole storage): rows of the first axis at a time.
    rows = max(1, WINDOW // max(1, size * math.prod(place.size[1:])))
    inner = sum((e - 1) * s for e, s in zip(place.size[1:], place.stride[1:], strict=True))
    for row in range(0, place.size[0], rows):
        count = min(rows, place.size[0] - row)
        first = place.offset + row * place.stride[0]
        last = first + (count - 1) * place.stride[0] + inner
        mapped = np.memmap(
            place.path, dtype=np.uint8, mode="r", offset=place.base + first * size, shape=(size * (last - first + 1),)
        )
        records = mapped.view(np.dtype((np.void, size)))
        view = np.lib.stride_tricks.as_strided(
            records, shape=(count, *place.size[1:]), strides=[s * size for s in (place.stride[0], *place.stride[1:])]
        )
        yield np.ascontiguousarray(view).view(np.uint8).reshape(-1)


def scan(place: TensorPlace) -> Stats:
    stats = Stats()
    for raw in _windows(place):
        values = as_numbers(raw, place.dtype)
        if values is None:
            stats.read = False
            return stats
        stats.add(values)
    return stats


@dataclass
class Verdicts:
    """What the numbers say about a model: rejections, warnings, and the infinities the policy weighs."""

    rejects: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    infinite: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


def judge(results: list[tuple[TensorPlace, Stats]]) -> Verdicts:
    verdicts = Verdicts()
    nan = [(p.name, s.nan) for p, s in results if s.nan]
    infinite = [p.name for p, s in results if s.posinf or s.neginf]
    zero = [p.name for p, s in results if p.dtype.floating and s.count > 1 and s.zeros == s.count]
    constant = [
        p.name
        for p, s in results
        if p.dtype.floating and s.count > 1 and s.zeros != s.count and s.minimum == s.maximum and not s.nan
    ]
    extreme = [p.name for p, s in results if p.dtype.floating and s.magnitude > EXTREME]
    if nan:
        detail = ", ".join(f"{name} ({count})" for name, count in nan[:NAMES_SHOWN])
        more = f" and {len(nan) - NAMES_SHOWN} more" if len(nan) > NAMES_SHOWN else ""
        verdicts.rejects.append(f"NaN in {len(nan)} tensor(s): {detail}{more}")
    if infinite:
        verdicts.infinite.append(f"infinite values in {len(infinite)} tensor(s): {_names(infinite)}")
    if zero:
        verdicts.warnings.append(f"{len(zero)} tensor(s) entirely zero: {_names(zero)}")
    if constant:
        verdicts.warnings.append(f"{len(constant)} tensor(s) constant: {_names(constant)}")
    if extreme:
        verdicts.warnings.append(f"{len(extreme)} tensor(s) with magnitudes above {EXTREME:g}: {_names(extreme)}")
    verdicts.unread = [p.name for p, s in results if not s.read]
    return verdicts
