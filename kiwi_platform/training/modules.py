"""The model side of training: load the starting pipeline, wrap it as one nn.Module, move trainable weights.

Why a wrapper: accelerate/DDP must see one module whose forward runs the whole loss, so the
gradient all-reduce and mixed-precision autocast cover every trainable component at once;
the wrapper holds the pipeline's own component objects, so no weights are copied.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from kiwi_platform.training.config import TrainConfig
from kiwi_platform.training.errors import MissingCheckpointError, TrainingError

log = logging.getLogger("kiwi_platform.training")
COMPONENTS = ("transformer", "vae", "mllm_encoder", "source_embedder", "ref_embedder")


def load_pipeline(config: TrainConfig):  # -> model.KiwiEditPipeline
    """The starting weights: `init_checkpoint` (previous stage), a model folder, or a named random config."""
    from kiwi_platform.lib.checkpoint_manifest import require_intact_checkpoint
    from model import CONFIGS, CheckpointError, KiwiEditPipeline, build_pipeline

    if config.init_checkpoint is None and config.model in CONFIGS:
        return build_pipeline(config.model, seed=config.seed)
    path = Path(config.init_checkpoint or config.model)
    if config.init_checkpoint is not None:
        what = (
            f"the stage {config.stage - 1} checkpoint that stage {config.stage} starts from"
            if config.stage > 1
            else "the stage 1 starting checkpoint (`kiwi model init`)"
        )
    else:
        what = f"model folder (or a config name: {', '.join(CONFIGS)})"
    if not path.is_dir():
        raise MissingCheckpointError(f"{what} {path} does not exist; materialize/train it first")
    require_intact_checkpoint(path)
    try:
        return KiwiEditPipeline.from_pretrained(path)
    except CheckpointError as exc:
        raise MissingCheckpointError(f"{what} {path} is incomplete: {exc}") from exc


class PipelineLoss(nn.Module):
    """nn.Module view of a pipeline whose forward is `model.compute_loss` with a seeded generator."""

    def __init__(self, pipeline) -> None:
        super().__init__()
        for name in COMPONENTS:
            self.add_module(name, getattr(pipeline, name))
        self._pipeline = [pipeline]  # a list, so nn.Module does not register it twice

    @property
    def pipeline(self):
        return self._pipeline[0]

    def forward(self, batch: dict, seed: int) -> torch.Tensor:
        from model import compute_loss

        generator = torch.Generator("cpu").manual_seed(int(seed))
        return compute_loss(self.pipeline, batch, generator=generator)


def named_trainable(pipeline, names: list[str]) -> dict[str, nn.Parameter]:
    """`<component>.<param>` -> parameter, in the order `apply_stage_freezing` returned them."""
    params = {f"{c}.{n}": p for c in COMPONENTS for n, p in getattr(pipeline, c).named_parameters()}
    missing = [n for n in names if n not in params]
    if missing:
        raise TrainingError(f"trainable parameter(s) not found in the pipeline: {missing[:5]}", code="bad_model")
    return {n: params[n] for n in names}


def enable_gradient_checkpointing(pipeline) -> list[str]:
    """Turn on activation checkpointing where a component supports it; returns which did."""
    done = []
    if getattr(pipeline.transformer, "_supports_gradient_checkpointing", False):
        pipeline.transformer.enable_gradient_checkpointing()
        done.append("transformer")
    qwen = getattr(pipeline.mllm_encoder, "qwen_model", None)
    if qwen is not None and getattr(qwen, "supports_gradient_checkpointing", False):
        if hasattr(qwen, "activation_checkpointing_enable"):  # transformers >= 5.2x name
            qwen.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            qwen.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        done.append("mllm_encoder")
    if not done:
        log.warning("gradient_checkpointing=true but no component supports it; training without it")
    return done


def trainable_digest(params: dict[str, nn.Parameter]) -> str:
    """sha256 of the trainable weights (names + float32 bytes): equal digests = identical replicas."""
    digest = hashlib.sha256()
    for name in sorted(params):
        digest.update(name.encode())
        digest.update(params[name].detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_trainable(params: dict[str, nn.Parameter], path: Path) -> None:
    save_file({n: p.detach().float().cpu().contiguous() for n, p in params.items()}, str(path))


def load_trainable(params: dict[str, nn.Parameter], path: Path) -> None:
    """Copy saved trainable weights into the live parameters (shapes and names must match)."""
    saved = load_file(str(path))
    if set(saved) != set(params):
        extra, lacking = sorted(set(saved) - set(params)), sorted(set(params) - set(saved))
        raise TrainingError(
            f"checkpoint {path} trains other parameters (extra {extra[:3]}, missing {lacking[:3]})",
            code="resume_mismatch",
        )
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(saved[name].to(param.device, param.dtype))
