"""The accelerate setup of the one-process / data-parallel loop (`distributed: ddp`).

Strategies (TrainConfig.distributed):
- `ddp` (default): this module. Data parallel under `accelerate launch` / torchrun; trainable
  gradients all-reduced once per mix cycle (no_sync on the other micro-batches). Runs on CPU with
  gloo (tested with 2 processes) and on GPUs with NCCL.
- `fsdp`: FSDP2 (`torch.distributed.fsdp.fully_shard`) with DCP sharded checkpoints, in
  `kiwi_platform.training.sharded` (`train_sharded`), not through accelerate; see docs/distributed.md.
- DeepSpeed ZeRO-2 was removed: it never passed the parity and exact-resume tests. Asking for it
  is a one-line error; FSDP2 shards optimizer state and gradients (and weights) instead.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedDataParallelKwargs

from kiwi_platform.training.config import TrainConfig
from kiwi_platform.training.errors import TrainingError

REMOVED = {
    "deepspeed_zero2": "distributed=deepspeed_zero2 was removed (it never passed the parity and exact-resume "
    "tests); use distributed=fsdp (FSDP2: shards weights, gradients and optimizer state)",
}


def check_strategy(name: str) -> None:
    """One-line error for a strategy this version does not offer."""
    if name in REMOVED:
        raise TrainingError(REMOVED[name], code="bad_config")


def build_plugins(config: TrainConfig) -> dict[str, Any]:
    """Accelerator kwargs for the data-parallel loop (nothing starts)."""
    check_strategy(config.distributed)
    if config.distributed == "fsdp":
        raise TrainingError(
            "distributed=fsdp runs through kiwi_platform.training.sharded.train_sharded (FSDP2), "
            "not the accelerate loop; call train_sharded or launch kiwi_platform.pipes.train_pod",
            code="bad_config",
        )
    # Stage masks leave some trainable modules unused on some tasks (ref embedder on image tasks).
    return {"kwargs_handlers": [DistributedDataParallelKwargs(find_unused_parameters=True)]}


def build_accelerator(config: TrainConfig) -> Accelerator:
    """One Accelerator for the run; gradient accumulation is done by the loop (one mix cycle)."""
    kwargs = build_plugins(config)
    # accelerate only sets up multi-CPU (gloo) data parallelism when told it runs on CPU.
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu = config.cpu or (launched and not torch.cuda.is_available())
    # accelerate keeps one global state per process; a later stage in the same process (Dagster's
    # in-process executor, tests) may use another precision, so drop the old settings first.
    # The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=config.mixed_precision, cpu=cpu, **kwargs)
