"""Generation settings for an evaluation run, validated once, with a stable key for output reuse.

Why a key: generated outputs and judge scores are reused only when they were produced by the same
checkpoint under the same settings; `settings_key` names that combination (a change of resolution,
frames, steps or seed gives a new key, hence fresh outputs and fresh judge calls).
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class EvalSettings(BaseModel):
    """How every case is generated. Defaults follow the released inference (docs/contract.md §4) at 480p."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    height: int = Field(480, ge=32, description="output height, multiple of 32")
    width: int = Field(832, ge=32, description="output width, multiple of 32")
    frames: int = Field(81, ge=1, description="frames per video case (4k+1); image cases use 1")
    steps: int = Field(50, ge=1, description="Euler sampling steps")
    seed: int = Field(0, description="base seed; each case gets its own seed derived from it and the case id")
    fps: int = Field(15, ge=1, description="frame rate of written mp4 outputs")
    output_format: Literal["auto", "npy"] = Field(
        "auto", description="auto: mp4 for videos, png for one-frame cases; npy: lossless (T,H,W,3) arrays"
    )
    device: str = Field("cpu", description="torch device for the pipeline")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    @field_validator("height", "width")
    @classmethod
    def _multiple_of_32(cls, value: int) -> int:
        if value % 32:
            raise ValueError(f"must be a multiple of 32, got {value}")
        return value

    @field_validator("frames")
    @classmethod
    def _four_k_plus_one(cls, value: int) -> int:
        if (value - 1) % 4:
            raise ValueError(f"must be 4k+1 (1, 5, 9, ..., 81), got {value}")
        return value

    @classmethod
    def tiny(cls, **overrides: object) -> EvalSettings:
        """Settings for the random tiny model on CPU: 64x96, 5 frames, 2 steps (tests, demo, benchmark)."""
        values: dict[str, object] = {"height": 64, "width": 96, "frames": 5, "steps": 2}
        values.update(overrides)
        return cls(**values)

    @property
    def settings_key(self) -> str:
        """12 hex chars identifying everything that shapes an output (the device is left out: it should not change what a checkpoint does)."""
        shaping = self.model_dump(
            include={"height", "width", "frames", "steps", "seed", "fps", "output_format", "dtype"}
        )
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:12]

    def case_seed(self, case_id: str) -> int:
        """Per-case seed, so a case's output does not depend on which other cases run or in what order."""
        return int(hashlib.sha256(f"{self.seed}:{case_id}".encode()).hexdigest()[:8], 16)
