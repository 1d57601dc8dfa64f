"""Load an `mllm_encoder/` folder written by the released Kiwi-Edit conversion script.

That folder holds a diffusers `config.json` with the released argument names (`mllm_model_path`,
`hidden_size`, `max_object_token`, ...), `qwen_config.json`, the Qwen2.5-VL weights in
transformers' own files (`model*.safetensors`, LoRA merged) and `diffusion_pytorch_model.safetensors`
with the queries and the two connectors (possibly spelled `connetor`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from model.convert import convert_encoder_state_dict, load_qwen_weights
from model.mllm_encoder import MLLMEncoder

_OWN_WEIGHTS = ("image_queries", "video_queries", "ref_queries", "connector.", "ref_connector.")


def is_released_encoder_folder(folder: str | os.PathLike) -> bool:
    """The released config names the Qwen location (`mllm_model_path`); ours embeds `qwen_config`."""
    cfg = Path(folder) / "config.json"
    return cfg.is_file() and "mllm_model_path" in json.loads(cfg.read_text())


def load_released_encoder(folder: str | os.PathLike, torch_dtype: torch.dtype | None = None) -> MLLMEncoder:
    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    qwen_cfg_path = folder / "qwen_config.json"
    if not qwen_cfg_path.is_file():
        qwen_cfg_path = folder.parent / "processor" / "qwen_config.json"
    if not qwen_cfg_path.is_file():
        raise FileNotFoundError(f"qwen_config.json is missing under {folder} (and ../processor)")
    qwen_config = Qwen2_5_VLConfig.from_json_file(str(qwen_cfg_path))
    encoder = MLLMEncoder(
        qwen_config=qwen_config.to_dict(),
        dit_dim=cfg.get("dit_dim", 3072),
        num_image_queries=cfg.get("num_image_queries", 256),
        num_video_queries=cfg.get("num_video_queries", 512),
        num_ref_queries=cfg.get("num_ref_queries", 768),
        max_frames=cfg.get("max_frames", 16),
        max_pixels_per_frame=cfg.get("max_pixels_per_frame", 262144),
        max_ref_pixels=28 * 28 * cfg.get("max_object_token", 768),
    )
    qwen = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(folder), config=qwen_config, dtype=torch.float32)
    load_qwen_weights(encoder, qwen.model.state_dict())
    del qwen
    own = convert_encoder_state_dict(load_file(str(folder / "diffusion_pytorch_model.safetensors")))
    own = {k: v for k, v in own.items() if k.startswith(_OWN_WEIGHTS)}
    missing = [k for k in encoder.state_dict() if k.startswith(_OWN_WEIGHTS) and k not in own]
    if missing:
        raise FileNotFoundError(f"{folder} lacks encoder weights: {', '.join(missing[:4])}")
    encoder.load_state_dict(own, strict=False)
    return encoder.to(torch_dtype) if torch_dtype is not None else encoder
