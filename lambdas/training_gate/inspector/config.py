"""Inspection settings (INSPECT_CONFIG): what to check, and the caps and limits that bound it."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from training_gate.archive import ArchiveLimits
from training_gate.domain.models import HoldoutConfig
from training_gate.domain.settings import SampleInput

# Free space kept back when the written-bytes cap is derived from the work directory's filesystem.
DISK_RESERVE_BYTES = 32 << 20
# The gate's own work space, named for operations: the function's ephemeral storage in a deployment.
WORK_SPACE_ADVICE = (
    "This is the gate's own limit, not the model's: raise inspector_ephemeral_storage_mb in cdk.json (the "
    "inspector function's ephemeral storage, up to 10240 MB) or lower max_total_bytes below it; on the command "
    "line, free space in the work directory."
)
# Outside Lambda (the command line) there is no function memory to derive the child's budget from.
DEFAULT_MEMORY_MIB = 4096
DEFAULT_TIME_LIMIT_S = 600.0
# Budgets per phase: what a hostile slow model can cost. A real model predicts a few rows in milliseconds
# and loads at well over 100 MB/s; these leave ten times that and more.
DEFAULT_UNPACK_TIME_S = 300.0
DEFAULT_LOAD_TIME_S = 10.0
DEFAULT_LOAD_TIME_S_PER_MIB = 0.1
DEFAULT_SMOKE_TIME_S = 10.0
# The phases that predict on many rows: a base like the smoke prediction's, then time per 1,000 rows (a
# real model predicts 1,000 rows in well under a tenth of a second). The reference rows the artifact
# supplies are capped; the holdout set is the gate's own, capped by its max_bytes.
DEFAULT_REFERENCE_TIME_S = 10.0
DEFAULT_HOLDOUT_TIME_S = 30.0
DEFAULT_PREDICTION_TIME_S_PER_1K_ROWS = 0.5
DEFAULT_MAX_REFERENCE_ROWS = 1_000
# Entries of one zip in the artifact (torch.save writes one per tensor storage) the gate reads for pickles.
DEFAULT_MAX_CONTAINER_ENTRIES = 10_000
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

    sample_input: SampleInput | None = None
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
    unpack_time_s: Annotated[float, Field(gt=0, description="wall clock of unpacking the artifact")] = (
        DEFAULT_UNPACK_TIME_S
    )
    load_time_s: Annotated[float, Field(gt=0, description="wall clock of loading one model file, plus the next")] = (
        DEFAULT_LOAD_TIME_S
    )
    load_time_s_per_mib: Annotated[float, Field(ge=0, description="added to load_time_s per MiB of the file")] = (
        DEFAULT_LOAD_TIME_S_PER_MIB
    )
    smoke_time_s: Annotated[float, Field(gt=0, description="wall clock of the smoke prediction")] = DEFAULT_SMOKE_TIME_S
    reference_time_s: Annotated[
        float, Field(gt=0, description="wall clock of the reference predictions, plus time per 1,000 rows")
    ] = DEFAULT_REFERENCE_TIME_S
    holdout_time_s: Annotated[
        float, Field(gt=0, description="wall clock of reading and scoring the holdout set, plus time per 1,000 rows")
    ] = DEFAULT_HOLDOUT_TIME_S
    prediction_time_s_per_1k_rows: Annotated[
        float, Field(ge=0, description="added to reference_time_s and holdout_time_s per 1,000 rows predicted")
    ] = DEFAULT_PREDICTION_TIME_S_PER_1K_ROWS
    max_reference_rows: Annotated[
        int, Field(gt=0, description="reference rows compared; the first ones of a longer file")
    ] = DEFAULT_MAX_REFERENCE_ROWS
    max_container_entries: Annotated[
        int, Field(gt=0, description="entries of one zip or tar in the artifact read for pickles")
    ] = DEFAULT_MAX_CONTAINER_ENTRIES
    memory_limit_mib: Annotated[
        int | None, Field(gt=0, description="the child's memory beyond its imports; default from the function's")
    ] = None
    memory_watch: Literal["auto", "rlimit", "rss"] = Field(
        default="auto", description="rlimit: RLIMIT_AS; rss: watch the resident size (where RLIMIT_AS is not enforced)"
    )
    # A derived sample row is n_features_in_ zeros: 2**24 of them is 128 MiB, more is refused by name.
    max_sample_features: Annotated[int, Field(gt=0)] = 1 << 24
    # An ONNX model may use operators of these domains too (besides the standard ones and com.microsoft).
    onnx_domains: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]] = []

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

    def rows_budget(self, base: float, base_key: str, rows: int) -> tuple[float, str]:
        """The budget of a phase predicting on `rows` rows (base + time per 1,000 rows), and how it was reached."""
        per = self.prediction_time_s_per_1k_rows
        return (
            base + per * rows / 1000,
            f"{base_key} {base:g} + prediction_time_s_per_1k_rows {per:g} x {rows / 1000:g}k rows",
        )

    def load_budget(self, size: int) -> tuple[float, str]:
        """The load budget of a file of `size` bytes, and how it was reached (for the breach's sentence)."""
        mib = size / (1 << 20)
        seconds = self.load_time_s + self.load_time_s_per_mib * mib
        return (
            seconds,
            f"load_time_s {self.load_time_s:g} + load_time_s_per_mib {self.load_time_s_per_mib:g} x {mib:.1f} MiB",
        )
