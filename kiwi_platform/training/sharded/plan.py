"""Memory plan of a sharded run: per-rank bytes from the real FSDP2 layout, built on the meta device.

Why from the real layout: the plan shards the same modules the trainer shards (`wrap.shard_units`)
over a fake N-rank process group, so padding, the root unit and the freeze set are what a run gets,
not a back-of-envelope 16 bytes per parameter. Nothing is allocated (meta tensors), so a laptop
plans an 8-GPU kiwi-5b run in seconds. Activations are not computable this way: they come from the
device measurements in benchmarks/measured/activation_peaks.json, per resolution.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

GIB = 2**30
ACTIVATIONS = Path(__file__).resolve().parents[3] / "benchmarks" / "measured" / "activation_peaks.json"
HEADROOM = 0.10  # allocator fragmentation, CUDA context, NCCL buffers


@dataclass
class RankMemory:
    """Bytes on the busiest rank (rank 0 holds the largest padded shard)."""

    world: int
    params: int  # sharded fp32 weights, frozen ones included
    grads: int  # sharded fp32 gradients of the trainable weights
    optimizer: int  # AdamW exp_avg + exp_avg_sq, fp32, sharded
    gathered: int  # bf16 root unit + two gathered blocks + one block's unsharded grads
    trainable_params: int
    total_params: int

    @property
    def states(self) -> int:
        """Resident during forward/backward (activations come on top)."""
        return self.params + self.grads + self.optimizer + self.gathered

    @property
    def step_peak(self) -> int:
        """During AdamW: weights, grads, moments and foreach temporaries about the size of the grads."""
        return self.params + 2 * self.grads + self.optimizer


def _meta_components(model: str) -> dict[str, nn.Module]:
    from model.build import build_embedders, build_encoder
    from model.configs import get_config
    from model.transformer import KiwiTransformer
    from model.vae import build_vae

    cfg = get_config(model)
    with torch.device("meta"):
        source_embedder, ref_embedder = build_embedders(cfg)
        return {
            "transformer": KiwiTransformer(**cfg.transformer),
            "vae": build_vae(cfg.vae),
            "mllm_encoder": build_encoder(cfg, cfg.qwen),
            "source_embedder": source_embedder,
            "ref_embedder": ref_embedder,
        }


class _Root(nn.Module):
    """Stands in for the training root (`ShardedPipelineLoss`): the components as children."""

    def __init__(self, components: dict[str, nn.Module]) -> None:
        super().__init__()
        for name, module in components.items():
            self.add_module(name, module)

    def forward(self) -> None:  # never called: only the layout is wanted
        return None


def _local_numel(param: torch.Tensor) -> int:
    return param.to_local().numel() if hasattr(param, "to_local") else param.numel()


def shard_layout(model: str, stage: int, world: int) -> RankMemory:
    """FSDP2 over a fake `world`-rank group on meta tensors; rank 0's shard sizes."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.testing._internal.distributed.fake_pg import FakeStore  # a store no peer ever joins

    from kiwi_platform.training.sharded.wrap import shard_units
    from model import apply_stage_freezing

    components = _meta_components(model)
    trainable = set(apply_stage_freezing(components, stage))
    pipeline = SimpleNamespace(**components)
    units = shard_units(pipeline)
    unit_numel = {name: sum(p.numel() for p in m.parameters()) for name, m in units.items()}
    total = sum(p.numel() for m in components.values() for p in m.parameters())
    root_numel = total - sum(unit_numel.values())
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (world,))
        for module in units.values():
            fully_shard(module, mesh=mesh)
        fully_shard(_Root(components), mesh=mesh)
        params = grads = 0
        n_trainable = 0
        for comp, module in components.items():
            for name, p in module.named_parameters():
                local = _local_numel(p)
                params += 4 * local
                if f"{comp}.{name}" in trainable:
                    grads += 4 * local
                    n_trainable += p.numel()
    finally:
        dist.destroy_process_group()
    biggest = max(unit_numel.values(), default=0)
    gathered = 2 * root_numel + 2 * 2 * biggest + (2 + 4) * biggest
    return RankMemory(world, params, grads, 2 * grads, gathered, n_trainable, total)


def activation_table(path: Path = ACTIVATIONS) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def plan(model: str, stage: int, gpus: int, gpu_memory_gb: float, table: dict | None = None) -> dict:
    """Per-rank memory and a fits / does-not-fit verdict for every measured resolution."""
    table = table or activation_table()
    mem = shard_layout(model, stage, gpus)
    budget = gpu_memory_gb * 1e9 * (1 - HEADROOM)
    rows = []
    for res, entry in table["resolutions"].items():
        act = int(entry["activation_gib"] * GIB)
        peak = max(mem.states + act, mem.step_peak)
        rows.append({"resolution": res, "activation_bytes": act, "peak_bytes": peak, "fits": peak <= budget})
    return {
        "model": model,
        "stage": stage,
        "gpus": gpus,
        "gpu_memory_gb": gpu_memory_gb,
        "budget_bytes": int(budget),
        "per_rank": {**asdict(mem), "states": mem.states, "step_peak": mem.step_peak},
        "resolutions": rows,
        "activation_source": table.get("source", ""),
    }
