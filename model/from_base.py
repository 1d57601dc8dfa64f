"""Assemble a stage-1 starting checkpoint from local Wan2.2-TI2V-5B (diffusers) and Qwen2.5-VL folders.

Base weights are copied; what Kiwi-Edit adds is initialised as docs/contract.md §2.4 says: queries ~ N(0, 0.02),
connectors and embedders with zero last layers, LoRA B = 0 (so the start is the base behaviour).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan
from transformers import Qwen2_5_VLForConditionalGeneration

from model.build import build_scheduler, save_checkpoint
from model.configs import get_config
from model.convert import load_qwen_weights
from model.embedders import ConditionEmbedder
from model.mllm_encoder import MLLMEncoder
from model.pipeline import KiwiEditPipeline
from model.processor import load_processor
from model.transformer import KiwiTransformer


class BaseModelError(ValueError):
    """A base-model folder is missing or not in the expected library format."""


def init_from_base(
    wan: str | os.PathLike,
    qwen: str | os.PathLike,
    out: str | os.PathLike,
    encoder_config: str = "kiwi-5b",
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """`kiwi model init --from-base --wan PATH --qwen PATH --out DIR`."""
    wan, qwen = Path(wan), Path(qwen)
    for folder in (wan / "transformer", wan / "vae"):
        if not (folder / "config.json").is_file():
            raise BaseModelError(f"{folder} is not a diffusers model folder (expected a Wan2.2 diffusers checkpoint)")
    if not (qwen / "config.json").is_file():
        raise BaseModelError(f"{qwen} is not a transformers model folder (config.json missing)")
    torch.manual_seed(seed)
    transformer = KiwiTransformer.from_pretrained(wan / "transformer")
    vae = AutoencoderKLWan.from_pretrained(wan / "vae")
    try:
        processor = load_processor(qwen)
        base = Qwen2_5_VLForConditionalGeneration.from_pretrained(qwen, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise BaseModelError(f"cannot load Qwen2.5-VL from {qwen}: {exc}") from exc

    dit_dim = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    settings = get_config(encoder_config).encoder
    encoder = MLLMEncoder(qwen_config=base.config.to_dict(), dit_dim=dit_dim, **settings)
    try:
        load_qwen_weights(encoder, base.model.state_dict())
    except KeyError as exc:
        raise BaseModelError(str(exc.args[0])) from exc
    del base

    z_dim, patch = vae.config.z_dim, list(transformer.config.patch_size)
    source_embedder = ConditionEmbedder(z_dim, dit_dim, patch)
    ref_embedder = ConditionEmbedder(z_dim, dit_dim, patch)
    pipe = KiwiEditPipeline(transformer, vae, encoder, source_embedder, ref_embedder, processor, build_scheduler())
    return save_checkpoint(pipe, out, overwrite=overwrite)
