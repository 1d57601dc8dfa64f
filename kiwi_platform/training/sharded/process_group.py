"""The process group of a sharded run: torchrun's env:// group, or a private one-process group.

Why its own module: FSDP2 and DCP need `torch.distributed` initialized even with one process, and a
run that dies must never hang its peers. Every group made here has a timeout (KIWI_DIST_TIMEOUT_S,
default 600 s), so a rank blocked on a dead peer raises instead of waiting forever, and a group
this module created is destroyed when the run ends, so Dagster's in-process executor and the
tests can train several stages in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from kiwi_platform.training.errors import TrainingError

DEFAULT_TIMEOUT_S = 600.0


@dataclass
class Group:
    """This process's place in the job and where it computes."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    owned: bool  # created here, so destroyed here

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if self.owned and dist.is_initialized():
            dist.destroy_process_group()


def timeout_s() -> float:
    raw = os.environ.get("KIWI_DIST_TIMEOUT_S", "")
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise TrainingError(f"KIWI_DIST_TIMEOUT_S must be a number of seconds, got {raw!r}") from None


def start(cpu: bool) -> Group:
    """Join (or create) the process group; NCCL on GPUs, gloo on CPUs."""
    use_cuda = torch.cuda.is_available() and not cpu
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    owned = False
    if not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        timeout = timedelta(seconds=timeout_s())
        if "MASTER_ADDR" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun / accelerate launch
            dist.init_process_group(backend, timeout=timeout, device_id=device if use_cuda else None)
        else:  # one process, no launcher: an in-memory store, nothing listens on a port
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout)
        owned = True
    return Group(dist.get_rank(), dist.get_world_size(), local_rank, device, owned)
