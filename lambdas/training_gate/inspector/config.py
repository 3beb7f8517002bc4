"""Inspection settings (INSPECT_CONFIG): what to check, and the caps and limits that bound it."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from training_gate.archive import ArchiveLimits
from training_gate.domain.models import HoldoutConfig

# Outside Lambda (the command line) there is no function memory to derive the child's budget from.
DEFAULT_MEMORY_MIB = 4096
DEFAULT_TIME_LIMIT_S = 600.0
# What the function keeps for itself besides the child: the parent (boto3, Powertools, the pipe) and
# the zygote's own pages. A quarter of the function's memory, at least this much.
LAMBDA_HEADROOM_MIB = 384


# The checks in the order they run; the parent locates the artifact, the child does the rest.
CHECK_ORDER = (
    "locate",
    "unpack",
    "find_model",
    "load",
    "version_skew",
    "smoke_prediction",
    "reference_predictions",
    "holdout",
)


class InspectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_input: Annotated[list[list[float]] | None, Field(min_length=1)] = None
    model_file: str | None = Field(default=None, description="file name or glob of the model file")
    version_skew: Literal["fail", "warn"] = "fail"
    reference_tolerance: Annotated[float, Field(ge=0)] = 1e-6
    holdout: HoldoutConfig | None = None
    extra_allowed_globals: list[str] = []
    max_members: int = ArchiveLimits.max_members
    max_member_bytes: int = ArchiveLimits.max_member_bytes
    max_total_bytes: int = ArchiveLimits.max_total_bytes
    max_ratio: Annotated[int, Field(ge=1, description="inflated/compressed ratio cap, every compressor")] = (
        ArchiveLimits.max_ratio
    )
    time_limit_s: Annotated[float | None, Field(gt=0, description="wall clock of the child; default 600 s")] = None
    memory_limit_mib: Annotated[
        int | None, Field(gt=0, description="the child's memory beyond its imports; default from the function's")
    ] = None
    memory_watch: Literal["auto", "rlimit", "rss"] = Field(
        default="auto", description="rlimit: RLIMIT_AS; rss: watch the resident size (where RLIMIT_AS is not enforced)"
    )
    # A derived sample row is n_features_in_ zeros: 2**24 of them is 128 MiB, more is refused by name.
    max_sample_features: Annotated[int, Field(gt=0)] = 1 << 24

    def limits(self) -> ArchiveLimits:
        return ArchiveLimits(
            max_members=self.max_members,
            max_member_bytes=self.max_member_bytes,
            max_total_bytes=self.max_total_bytes,
            max_ratio=self.max_ratio,
        )

    def resolved_memory_mib(self, environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
        """memory_limit_mib, or the function's memory less the headroom the parent needs."""
        if self.memory_limit_mib is not None:
            return self.memory_limit_mib
        function_memory = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        if function_memory and function_memory.isdigit():
            total = int(function_memory)
            return max(128, total - max(LAMBDA_HEADROOM_MIB, total // 4))
        return DEFAULT_MEMORY_MIB

    def resolved_time_s(self) -> float:
        return self.time_limit_s if self.time_limit_s is not None else DEFAULT_TIME_LIMIT_S
