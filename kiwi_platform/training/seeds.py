"""Seeds and schedules shared by the one-process loop and the sharded trainer.

Pure functions of (seed, step, micro-batch, slot): a resumed run redraws exactly the noise and
timesteps the uninterrupted run drew, on any world size.
"""

from __future__ import annotations

import numpy as np


def micro_seed(seed: int, step: int, micro: int, rank: int) -> int:
    """The noise/timestep seed of one micro-batch: a pure function, so a resumed run redraws it."""
    return int(np.random.SeedSequence([seed, step, micro, rank]).generate_state(1)[0])


def eval_seed(seed: int, index: int) -> int:
    """Fixed noise of validation row `index`."""
    return int(np.random.SeedSequence([seed, 0xE7A1, index]).generate_state(1)[0])


def constant_with_warmup(warmup: int):
    """LambdaLR factor: linear warm-up over `warmup` optimizer steps, then constant."""

    def factor(done: int) -> float:
        return 1.0 if warmup <= 0 else min(1.0, (done + 1) / warmup)

    return factor
