"""Wan2.2 VAE (z=48, 16x spatial / 4x temporal) via diffusers `AutoencoderKLWan`, plus latent scaling."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import AutoencoderKLWan


def build_vae(vae_config: dict[str, Any]) -> AutoencoderKLWan:
    """A random-weight Wan VAE of the given size (tiny or the released one)."""
    return AutoencoderKLWan(**vae_config)


def _stats(vae: AutoencoderKLWan, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean, device=like.device, dtype=torch.float32).view(shape)
    std = torch.tensor(vae.config.latents_std, device=like.device, dtype=torch.float32).view(shape)
    return mean, std


def encode_video(vae: AutoencoderKLWan, video: torch.Tensor) -> torch.Tensor:
    """Pixels (B, 3, T, H, W) in [-1, 1] -> normalised latents (B, 48, (T-1)/4+1, H/16, W/16).

    Uses the posterior mean (deterministic): conditions and training targets do not change
    between calls, which also makes save/load comparisons exact.
    """
    param = next(vae.parameters())
    z = vae.encode(video.to(param.device, param.dtype)).latent_dist.mode().float()
    mean, std = _stats(vae, z)
    return (z - mean) / std


def decode_latents(vae: AutoencoderKLWan, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents -> pixels (B, 3, T, H, W) clamped to [-1, 1]."""
    param = next(vae.parameters())
    mean, std = _stats(vae, latents)
    z = latents.float() * std + mean
    return vae.decode(z.to(param.device, param.dtype)).sample.float().clamp(-1, 1)


def latent_shape(vae_config: Any, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(C, F, H, W) of the latent for a clip; frames must be 4k+1, sides multiples of 16."""
    cfg = dict(vae_config)
    t, s = cfg.get("scale_factor_temporal", 4), cfg.get("scale_factor_spatial", 16)
    return cfg["z_dim"], (frames - 1) // t + 1, height // s, width // s


def convert_original_vae_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an original-layout Wan VAE state dict (`Wan2.2_VAE.pth`, released `vae/`) onto `AutoencoderKLWan` keys.

    Wan2.2 keys (z=48, residual up/down-sampling: `encoder.downsamples.i.downsamples.j.*`) go through
    our own map (`model/vae_wan22.py`); the Wan2.1 layout still goes through diffusers' converter (the
    one `from_single_file` uses), which only knows that layout.
    """
    from model.vae_wan22_keys import convert_wan22_vae_state_dict, detect_vae_layout

    if detect_vae_layout(state_dict) == "wan2.2":
        return convert_wan22_vae_state_dict(state_dict)
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    return convert_wan_vae_to_diffusers(state_dict)
