"""The accelerate setup: one process by default, the same code under `accelerate launch` / torchrun.

Strategies (TrainConfig.distributed):
- `ddp` (default): data parallel; trainable gradients all-reduced once per mix cycle (no_sync on
  the other micro-batches). Runs on CPU with gloo (tested with 2 processes) and on GPUs with NCCL.
- `fsdp`: accelerate's FullyShardedDataParallelPlugin (full sharding of params, grads, optimizer
  state, transformer blocks wrapped by size, optional CPU offload). Launch with
  `accelerate launch --use_fsdp --num_processes N ...` or torchrun; needs GPUs.
- `deepspeed_zero2`: accelerate's DeepSpeedPlugin(zero_stage=2) (optimizer state and gradients
  sharded, optional optimizer offload to CPU). Needs `pip install deepspeed` and GPUs.
FSDP/DeepSpeed checkpoints go through `accelerator.save_state` (sharded), not tested on CPU here.
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


def build_plugins(config: TrainConfig, offload: bool = False) -> dict[str, Any]:
    """Accelerator kwargs for the configured strategy (plugin objects only; nothing starts)."""
    if config.distributed == "ddp":
        # Stage masks leave some trainable modules unused on some tasks (ref embedder on image tasks).
        return {"kwargs_handlers": [DistributedDataParallelKwargs(find_unused_parameters=True)]}
    if config.distributed == "fsdp":
        from accelerate.utils import FullyShardedDataParallelPlugin

        plugin = FullyShardedDataParallelPlugin(
            reshard_after_forward="FULL_SHARD",
            auto_wrap_policy="size_based_wrap",
            min_num_params=int(1e7),
            cpu_offload=offload,
            use_orig_params=True,  # frozen and trainable params share flat parameters
            state_dict_type="SHARDED_STATE_DICT",
            activation_checkpointing=False,  # the model's own switch (gradient_checkpointing) does it
        )
        return {"fsdp_plugin": plugin}
    try:
        from accelerate.utils import DeepSpeedPlugin

        plugin = DeepSpeedPlugin(
            zero_stage=2,
            gradient_accumulation_steps=config.grad_accumulation,
            gradient_clipping=config.max_grad_norm or 0.0,
            offload_optimizer_device="cpu" if offload else "none",
        )
    except (ImportError, ModuleNotFoundError) as exc:
        raise TrainingError(
            f"distributed=deepspeed_zero2 needs DeepSpeed: pip install deepspeed ({exc})", code="missing_dependency"
        ) from exc
    return {"deepspeed_plugin": plugin}


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
