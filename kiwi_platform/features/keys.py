"""Cache keys: one entry per (sample content, frozen encoders, resolution, frames).

Why these parts: the cached tensors are a pure function of the clips' bytes (their sha256 from the
manifest), the prompt and reference, the VAE's weights and config, the processor and the encoder's
prompt settings, and the pixels' size and frame count. Every one of them is in the key, so a
changed encoder or resolution names other entries and an old entry can never be read for it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

#: Bump when the layout or meaning of an entry changes: old caches then simply miss (and a build drops
#: their rows and shards). 2: processor pixels stored as uint8 and integers narrowed (`codec`), which
#: a reader of version 1 would misread; new keys mean it never finds them.
CACHE_VERSION = "kiwi-features-2"
#: The MLLM encoder settings `prepare_inputs` reads (everything else in its config is weights' shape).
PROMPT_SETTINGS = (
    "max_frames",
    "max_pixels_per_frame",
    "max_ref_pixels",
    "max_image_pixels",
    "system_prompt",
    "video_fps",
    "num_image_queries",
    "num_video_queries",
    "num_ref_queries",
)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def vae_hash(vae: torch.nn.Module) -> str:
    """sha256 of the VAE's config and weights (names, dtypes, bytes): the latents' encoder identity."""
    config = {k: v for k, v in dict(getattr(vae, "config", {})).items() if not k.startswith("_")}  # not paths
    digest = hashlib.sha256(_json(config).encode())
    for name, tensor in sorted(vae.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _processor_state(processor: Any) -> dict:
    state: dict[str, Any] = {"chat_template": getattr(processor, "chat_template", None)}
    for name in ("image_processor", "video_processor"):
        sub = getattr(processor, name, None)
        if sub is not None:
            state[name] = {k: v for k, v in sub.to_dict().items() if not k.startswith("_") and k != "processor_class"}
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None:
        state["vocab"] = sorted(tokenizer.get_vocab().items())
    return state


def mllm_hash(encoder_config: Any, processor: Any) -> str:
    """sha256 of what turns (prompt, frames, reference) into processor tensors."""
    config = dict(encoder_config)
    settings = {k: config.get(k) for k in PROMPT_SETTINGS}
    return hashlib.sha256(_json({"settings": settings, "processor": _processor_state(processor)}).encode()).hexdigest()


def encoder_hashes(encoders: Any) -> dict[str, str]:
    """{"vae": ..., "mllm": ...} of a pipeline (or `encoders.FrozenEncoders`); call before FSDP sharding."""
    return {
        "vae": vae_hash(encoders.vae),
        "mllm": mllm_hash(encoders.mllm_encoder.config, encoders.processor),
    }


def wanted_frames(task: str, frames: int) -> int:
    """Frames a row asks for (image tasks 1), as `SampleLoader.load` reads them."""
    return 1 if task.startswith("image") else frames


def sample_key(row: Any, hashes: dict[str, str], height: int, width: int, frames: int) -> str | None:
    """The entry of one manifest row at (height, width, frames); None when the row lacks clip hashes."""
    src, tgt = str(row.get("src_clip_sha256", "") or ""), str(row.get("tgt_clip_sha256", "") or "")
    task = str(row["task"])
    ref = str(row.get("ref_sha256", "") or "") if task.endswith("_ref") else ""
    if not src or not tgt or (task.endswith("_ref") and not ref):
        return None
    parts = {
        "version": CACHE_VERSION,
        "src": src,
        "tgt": tgt,
        "ref": ref,
        "prompt": str(row["prompt"]),
        "frames": wanted_frames(task, frames),
        "size": [int(height), int(width)],
        "vae": hashes["vae"],
        "mllm": hashes["mllm"],
    }
    return hashlib.sha256(_json(parts).encode()).hexdigest()
