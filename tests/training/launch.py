"""Launching 2-process gloo jobs with torchrun on loopback, as the distributed tests do.

One place for the command line and environment, so the DDP and FSDP2 tests launch the same way: a
free loopback port for the rendezvous, one thread per rank (2 ranks share 2 cores), no GPU, and a
collective timeout short enough that a dead peer fails the job within a test's budget.
"""

from __future__ import annotations

import os
import socket
import sys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dist_env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KIWI_DIST_TIMEOUT_S": "60"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def torchrun(*args: str) -> list[str]:
    """`torchrun --nproc_per_node 2` on 127.0.0.1 for a script path or `-m module` plus its arguments."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        *args,
    ]
