"""FSDP2 over the Kiwi-Edit pipeline: one shard unit per DiT block (and per Qwen layer), the rest at the root.

Why per block: FSDP2 all-gathers one unit's parameters just before its forward and frees them
after, so peak parameter memory is the sharded model plus about two blocks; a 5B DiT has 30
blocks of ~160M parameters. The Qwen decoder layers and vision blocks are units too (3.75B frozen
weights, LoRA inside); embeddings, connectors, queries, the embedders, the VAE and the DiT's
head stay in the root unit, which stays gathered through one forward/backward.

Freeze sets: `apply_stage_freezing` runs first, FSDP2 shards trainable and frozen parameters
alike, and only the trainable ones go to the optimizer (the caller builds it). Mixed precision:
bf16 parameters and compute with fp32 gradient reduction (`mixed_precision=bf16`), or fp32
throughout (`no`, the CPU tests).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from kiwi_platform.training.errors import TrainingError
from kiwi_platform.training.modules import PipelineLoss


class ShardedPipelineLoss(PipelineLoss):
    """`PipelineLoss` whose every trainable root parameter receives a gradient on every micro-batch.

    FSDP2 reduce-scatters the gradients of the parameters that have one; if two ranks used
    different parameters in the same micro-batch (stage 3's reference group mixes image_ref and
    video_ref samples, which use different queries) the collectives would disagree. Adding
    0 * sum(p) over the root's trainable parameters gives the unused ones a zero gradient, as DDP
    with find_unused_parameters does, so every rank reduces the same tensors.
    """

    def __init__(self, pipeline, root_trainable: list[str]) -> None:
        super().__init__(pipeline)
        self.root_trainable = root_trainable

    def forward(self, batch: dict, seed: int) -> torch.Tensor:
        loss = super().forward(batch, seed)
        if self.training and self.root_trainable:
            # get_parameter resolves at call time: during forward FSDP2 has swapped in the gathered tensors.
            touch = sum(self.get_parameter(n).sum() for n in self.root_trainable)
            loss = loss + 0.0 * touch
        return loss


def shard_units(pipeline) -> dict[str, nn.Module]:
    """Qualified name (as in the state dict) -> module that becomes its own FSDP2 unit."""
    units: dict[str, nn.Module] = {}
    for i, block in enumerate(pipeline.transformer.blocks):
        units[f"transformer.blocks.{i}"] = block
    qwen = getattr(pipeline.mllm_encoder, "qwen_model", None)
    if qwen is not None:
        for i, layer in enumerate(qwen.language_model.layers):
            units[f"mllm_encoder.qwen_model.language_model.layers.{i}"] = layer
        for i, block in enumerate(qwen.visual.blocks):
            units[f"mllm_encoder.qwen_model.visual.blocks.{i}"] = block
    return units


def precision_policy(mixed_precision: str) -> MixedPrecisionPolicy:
    if mixed_precision == "bf16":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    if mixed_precision == "no":
        return MixedPrecisionPolicy()
    raise TrainingError(
        f"distributed=fsdp supports mixed_precision no (fp32) or bf16, not {mixed_precision!r} "
        "(fp16 needs loss scaling; bf16 is the sharded path's GPU precision)",
        code="bad_config",
    )


def shard_pipeline(
    pipeline, trainable_names: list[str], mixed_precision: str, mesh=None, reshard_after_forward: bool = True
) -> ShardedPipelineLoss:
    """Apply FSDP2 to the pipeline's components in place and return the loss module (the FSDP root)."""
    policy = precision_policy(mixed_precision)
    units = shard_units(pipeline)
    for module in units.values():
        fully_shard(module, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    prefixes = tuple(f"{name}." for name in units)
    root_trainable = [n for n in trainable_names if not n.startswith(prefixes)]
    root = ShardedPipelineLoss(pipeline, root_trainable)
    fully_shard(root, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    return root
