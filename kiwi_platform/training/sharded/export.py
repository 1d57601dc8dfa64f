"""Consolidated export: sharded trainable weights -> one pipeline folder in the released layout.

Why: MLflow registers, `kiwi edit` runs and `kiwi evaluate` scores the released layout
(`model_index.json`, one folder per component), never DCP shards. The frozen weights come from
the run's start point (`init_checkpoint` or the named config), the trainable ones from the
consolidated state, so the export equals what a one-process run would have saved.
"""

from __future__ import annotations

from pathlib import Path

import torch

from kiwi_platform.training.config import TrainConfig
from kiwi_platform.training.errors import TrainingError
from kiwi_platform.training.modules import load_pipeline, named_trainable, trainable_digest


def write_released(config: TrainConfig, trainable: dict[str, torch.Tensor], out: Path) -> str:
    """Start pipeline + `trainable` -> `out` (atomic); returns the trainable sha256 (as TrainResult's)."""
    from model import apply_stage_freezing
    from model.build import save_checkpoint

    pipeline = load_pipeline(config)
    names = apply_stage_freezing(pipeline, config.stage)
    if sorted(names) != sorted(trainable):
        raise TrainingError(
            f"the checkpoint trains other parameters than stage {config.stage} of {config.model!r}", code="bad_model"
        )
    params = named_trainable(pipeline, names)
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(trainable[name].to(param.dtype))
    save_checkpoint(pipeline, out, overwrite=True)
    return trainable_digest(params)


def export_checkpoint(folder: str | Path, out: str | Path) -> str:
    """A `step-N/` sharded checkpoint -> released layout at `out`, in one process (no process group)."""
    import torch.distributed.checkpoint as dcp

    from kiwi_platform.training import checkpoint as ckpt
    from model import apply_stage_freezing

    folder = Path(folder)
    reason = ckpt.verify(folder)
    if reason is not None:
        raise TrainingError(f"checkpoint {folder} cannot be exported: {reason}", code="bad_checkpoint")
    config = TrainConfig(**ckpt.read_state(folder)["config"])
    pipeline = load_pipeline(config)
    params = named_trainable(pipeline, apply_stage_freezing(pipeline, config.stage))
    holder = {"model": {n: p.detach().clone() for n, p in params.items()}}
    dcp.load(holder, checkpoint_id=str(folder / "dcp"), no_dist=True)
    return write_released(config, holder["model"], Path(out))
