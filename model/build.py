"""Build random-weight Kiwi-Edit pipelines from a named config and write them in the released layout."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from model.configs import KiwiModelConfig, get_config
from model.embedders import ConditionEmbedder
from model.mllm_encoder import MLLMEncoder
from model.pipeline import KiwiEditPipeline
from model.processor import build_tiny_processor
from model.transformer import KiwiTransformer
from model.vae import build_vae


def qwen_config_for_tokenizer(qwen: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """Point the Qwen config's special-token ids and vocab size at the given tokenizer."""
    ids = tokenizer.convert_tokens_to_ids
    cfg = dict(qwen)
    cfg.update(
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    text = dict(cfg["text_config"])
    text.update(vocab_size=len(tokenizer), bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"))
    cfg["text_config"] = text
    return cfg


def build_scheduler(shift: float = 5.0) -> FlowMatchEulerDiscreteScheduler:
    """Stored under scheduler/ for the layout; the pipeline reads its `shift` (sampling: docs/contract.md §4)."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)


def build_encoder(config: KiwiModelConfig, qwen_config: dict[str, Any]) -> MLLMEncoder:
    return MLLMEncoder(qwen_config=qwen_config, dit_dim=config.dit_dim, **config.encoder)


def build_embedders(config: KiwiModelConfig) -> tuple[ConditionEmbedder, ConditionEmbedder]:
    z, dim, patch = config.vae["z_dim"], config.dit_dim, list(config.transformer["patch_size"])
    return ConditionEmbedder(z, dim, patch), ConditionEmbedder(z, dim, patch)


def build_pipeline(config: str | KiwiModelConfig = "tiny", seed: int = 0, processor: Any = None) -> KiwiEditPipeline:
    """A random-weight pipeline (new queries, zero-init connectors/embedders, docs/contract.md §2.4)."""
    cfg = get_config(config) if isinstance(config, str) else config
    if processor is None:
        if cfg.name != "tiny":
            raise ValueError(
                f"config {cfg.name!r} needs the real Qwen2.5-VL processor: use `kiwi model init --from-base`"
            )
        processor = build_tiny_processor(**cfg.processor)
    torch.manual_seed(seed)
    transformer = KiwiTransformer(**cfg.transformer)
    vae = build_vae(cfg.vae)
    encoder = build_encoder(cfg, qwen_config_for_tokenizer(cfg.qwen, processor.tokenizer))
    source_embedder, ref_embedder = build_embedders(cfg)
    return KiwiEditPipeline(transformer, vae, encoder, source_embedder, ref_embedder, processor, build_scheduler())


def save_checkpoint(pipeline: KiwiEditPipeline, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the pipeline in the released layout; the folder appears only when complete."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already exists and is not empty (pass overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        pipeline.save_pretrained(tmp, safe_serialization=True)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a checkpoint is shared like any folder
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def init_checkpoint(
    config: str = "tiny", out: str | os.PathLike = "checkpoints/tiny", seed: int = 0, overwrite: bool = False
) -> Path:
    """`kiwi model init --config NAME --out DIR`: random weights, released layout."""
    return save_checkpoint(build_pipeline(config, seed=seed), out, overwrite=overwrite)
