"""Training at scale: FSDP2 sharding, DCP sharded exact resume, consolidated export, memory plans.

`train_sharded` is the `distributed: fsdp` path (torchrun / accelerate launch / one process);
`export_checkpoint` turns a sharded checkpoint into the released layout.
"""

from kiwi_platform.training.sharded.export import export_checkpoint
from kiwi_platform.training.sharded.trainer import train_sharded

__all__ = ["export_checkpoint", "train_sharded"]
