"""TrainConfig: one stage's run settings, with the defaults of docs/contract.md §3 filled in per stage.

Why pydantic: the Dagster `dg.Config`, the CLI and the benchmarks all build the same object and
get the same validation; `config_hash()` names the settings that shape the weights, so a resume
into a folder written with other settings is refused instead of silently mixing two runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TASKS = ("image", "video", "image_ref", "video_ref")
# A mix key is a task or a group of tasks drawn from one shuffled stream.
TASK_GROUPS: dict[str, tuple[str, ...]] = {
    "image": ("image",),
    "video": ("video",),
    "image_ref": ("image_ref",),
    "video_ref": ("video_ref",),
    "reference": ("image_ref", "video_ref"),
}
DEFAULT_LR = {1: 1e-5, 2: 1e-5, 3: 5e-6}
# The tiny model is random-init with ~76K trainable parameters: at the released rates above it does
# not move in a demo-length run, so its stage default is the learning-signal benchmark's rate.
TINY_LR = 3e-3
DEFAULT_MIX: dict[int, dict[str, int]] = {
    1: {"image": 1},
    2: {"image": 1, "video": 1},
    3: {"image": 1, "video": 1, "reference": 1},
}
# Settings that may change between a run and its resume (they do not change the weights so far).
_RESUME_FREE = ("max_steps", "checkpoint_every", "keep_checkpoints", "eval_every", "eval_samples")


class Resolution(BaseModel):
    """Train at height x width for optimizer steps up to and including `until_step`; None = to the end."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    until_step: int | None = Field(None, description="Last optimizer step at this size; null = to the end of the run.")
    height: int = Field(64, ge=32, multiple_of=32, description="Height in pixels (multiple of 32).")
    width: int = Field(96, ge=32, multiple_of=32, description="Width in pixels (multiple of 32).")


class TrainConfig(BaseModel):
    """Everything one training stage needs besides the data; defaults follow docs/contract.md §3."""

    model_config = ConfigDict(extra="forbid")

    stage: Literal[1, 2, 3] = Field(1, description="Curriculum stage (docs/contract.md §3): trainable set and mix.")
    model: str = Field("tiny", description="A named config (tiny, kiwi-5b) or a local pipeline folder.")
    init_checkpoint: str | None = Field(
        None, description="Pipeline folder to start from (the previous stage's); overrides `model`'s weights."
    )
    lr: float | None = Field(
        None,
        gt=0,
        description=f"Peak learning rate; null = the stage default {DEFAULT_LR} (stage -> rate), or {TINY_LR} "
        "for model=tiny.",
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    adam_eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up optimizer steps, then a constant rate.")
    max_steps: int = Field(100, ge=1, description="Optimizer steps of the run (one step = one mix cycle).")
    checkpoint_every: int = Field(100, ge=1, description="Resumable checkpoint every N optimizer steps and at the end.")
    keep_checkpoints: int = Field(2, ge=1, description="Newest resumable checkpoints kept on disk.")
    eval_every: int = Field(0, ge=0, description="Validation loss every N optimizer steps (and at step 0); 0 = none.")
    eval_samples: int = Field(4, ge=1, description="Validation rows (of held-out pairs) per evaluation.")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="Share of pairs held out for validation, in [0, 1).")
    resolutions: list[Resolution] = Field(
        default_factory=lambda: [Resolution()], description="Resolution schedule; the last entry runs to the end."
    )
    frames: int = Field(9, ge=1, description="Video frames per sample (4k+1); image tasks always use 1.")
    mix: dict[str, int] | None = Field(
        None, description="Task (or 'reference') -> ratio in one optimizer step; null = the stage default."
    )
    mixed_precision: Literal["no", "bf16", "fp16"] = Field("no", description="Autocast dtype; no = fp32.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass.")
    seed: int = Field(0, description="Seed of initialization, data order, noise and timesteps.")
    distributed: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="Strategy with several processes (torchrun): ddp (replicated) or fsdp (FSDP2, sharded DCP "
        "checkpoints).",
    )
    max_grad_norm: float | None = Field(1.0, gt=0, description="Gradient clipping norm; null = no clipping.")
    cpu: bool = Field(False, description="Force the CPU even when a GPU is present.")

    @field_validator("distributed", mode="before")
    @classmethod
    def _removed_strategy(cls, value: object) -> object:
        if value == "deepspeed_zero2":
            raise ValueError(
                "deepspeed_zero2 was removed (it never passed the parity and exact-resume tests); use fsdp"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if (self.frames - 1) % 4:
            raise ValueError(f"frames must be 4k+1 (1, 5, 9, ..., 81), got {self.frames}")
        mix = self.task_mix
        unknown = sorted(set(mix) - set(TASK_GROUPS))
        if unknown:
            raise ValueError(f"unknown task(s) in mix: {unknown} (choose from {sorted(TASK_GROUPS)})")
        if not mix or any(v < 0 for v in mix.values()) or sum(mix.values()) == 0:
            raise ValueError(f"mix needs at least one task with a positive ratio, got {mix}")
        bounds = [r.until_step for r in self.resolutions]
        if not self.resolutions or bounds[-1] is not None:
            raise ValueError("the last resolution entry must have until_step=None (it runs to the end)")
        if any(b is None for b in bounds[:-1]) or bounds[:-1] != sorted(b for b in bounds[:-1] if b is not None):
            raise ValueError(f"resolution until_step values must increase, got {bounds}")
        return self

    # -- derived settings ----------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return TINY_LR if self.model == "tiny" else DEFAULT_LR[self.stage]

    @property
    def task_mix(self) -> dict[str, int]:
        return dict(self.mix) if self.mix is not None else dict(DEFAULT_MIX[self.stage])

    @property
    def mix_cycle(self) -> list[str]:
        """One cycle of the mix, e.g. {image: 1, video: 1} -> [image, video]; interleaved, not blocked."""
        mix = {k: v for k, v in self.task_mix.items() if v > 0}
        cycle: list[str] = []
        for round_ in range(max(mix.values())):
            cycle.extend(k for k, v in mix.items() if v > round_)
        return cycle

    @property
    def grad_accumulation(self) -> int:
        """Micro-batches per optimizer step = one mix cycle (batch 1 per process)."""
        return len(self.mix_cycle)

    def resolution_at(self, step: int) -> Resolution:
        """The resolution used for optimizer step `step` (1-based) under the schedule."""
        for res in self.resolutions:
            if res.until_step is None or step <= res.until_step:
                return res
        return self.resolutions[-1]

    def config_hash(self) -> str:
        """sha256 (16 hex) of the settings that shape the weights; resumable edits are left out."""
        data = self.model_dump(mode="json", exclude=set(_RESUME_FREE))
        if self.lr is None and self.model == "tiny":
            data["lr"] = TINY_LR  # the tiny default changed from the stage rate: never resume across that
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
