"""The sharded trainer's CLI with one rank's loss poisoned: the fault `test_fsdp_faults` needs.

A NaN that appears on one rank only cannot be produced through the data (clips are uint8) or the
config (a huge learning rate diverges every rank alike), so this wrapper swaps `model.compute_loss`
for a copy that returns NaN on rank `KIWI_TEST_NAN_RANK` from its `KIWI_TEST_NAN_FROM`-th training
forward on (evaluation forwards run without grad and are not counted), then runs the real CLI.
"""

import math
import os

import torch

import model
from kiwi_platform.training.sharded.__main__ import app

real = model.compute_loss
seen = {"train": 0}


def poisoned(*args, **kwargs):
    loss = real(*args, **kwargs)
    if torch.is_grad_enabled():
        seen["train"] += 1
        if seen["train"] >= int(os.environ["KIWI_TEST_NAN_FROM"]):
            return loss * math.nan
    return loss


if __name__ == "__main__":
    if os.environ.get("RANK") == os.environ["KIWI_TEST_NAN_RANK"]:
        model.compute_loss = poisoned
    app()
