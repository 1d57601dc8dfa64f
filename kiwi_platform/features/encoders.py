"""Only the frozen encoders of a checkpoint: the VAE, the processor and the MLLM prompt settings.

Why not the whole pipeline: the cache needs VAE latents and processor tensors, never the DiT or the
Qwen weights, so the MLLM encoder is built on the meta device (its config is all `prepare_inputs`
reads). For kiwi-5b that skips loading ~10 GB of weights the cache does not use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kiwi_platform.errors import KiwiUserError


@dataclass
class FrozenEncoders:
    """What `model.precompute_features` needs: `encode_pixels`, `mllm_encoder`, `processor`."""

    vae: Any
    mllm_encoder: Any
    processor: Any

    def encode_pixels(self, video: torch.Tensor) -> torch.Tensor:
        from model.vae import encode_video

        return encode_video(self.vae, video)


def load_encoders(folder: str | Path) -> FrozenEncoders:
    """The frozen encoders of a pipeline folder in the released layout (one-line error if incomplete)."""
    from model.mllm_encoder import MLLMEncoder
    from model.pipeline import load_vae
    from model.processor import load_processor
    from model.released import is_released_encoder_folder, load_released_encoder

    root = Path(folder)
    missing = [c for c in ("vae", "processor", "mllm_encoder") if not (root / c).is_dir()]
    if missing:
        raise KiwiUserError(
            f"checkpoint {root} lacks {', '.join(missing)}/ (the feature cache needs its encoders)",
            code="missing_checkpoint",
        )
    vae = load_vae(root / "vae").eval()
    processor = load_processor(root / "processor")
    if is_released_encoder_folder(root / "mllm_encoder"):
        encoder = load_released_encoder(root / "mllm_encoder")
    else:
        config = MLLMEncoder.load_config(root / "mllm_encoder")
        with torch.device("meta"):
            encoder = MLLMEncoder.from_config(config)
    encoder.processor = processor
    return FrozenEncoders(vae, encoder, processor)
