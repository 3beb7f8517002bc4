"""Configuration models shared by the CDK app (validated at synth) and the functions (parsed from
their environment): one definition each."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class InferenceConfig(BaseModel):
    """What a registered package declares about serving it (its InferenceSpecification)."""

    model_config = ConfigDict(extra="forbid")

    image: Annotated[str | None, Field(min_length=1)] = Field(default=None, description="default: the training image")
    content_types: Annotated[list[str], Field(min_length=1)] = ["text/csv"]
    response_types: Annotated[list[str], Field(min_length=1)] = ["text/csv"]
    realtime_instance_types: list[Annotated[str, Field(pattern=r"^ml\.")]] = ["ml.m5.large"]
    transform_instance_types: list[Annotated[str, Field(pattern=r"^ml\.")]] = ["ml.m5.large"]
