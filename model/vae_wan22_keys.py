"""The Wan2.2 VAE's original key layout (`VideoVAE38_`) mapped to diffusers' `AutoencoderKLWan`, both ways,
plus layout detection and the architecture read from the weights' shapes.

Pure functions on state dicts; `model/vae_wan22.py` uses them to load `vae/` folders.
"""

from __future__ import annotations

import re
from typing import Any

import torch

EXPECTED_Z_DIM = 48  # the Kiwi-Edit DiT (Wan2.2-TI2V-5B) reads 48 latent channels
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"

_RESIDUAL = {
    "residual.0.gamma": "norm1.gamma",
    "residual.2.weight": "conv1.weight",
    "residual.2.bias": "conv1.bias",
    "residual.3.gamma": "norm2.gamma",
    "residual.6.weight": "conv2.weight",
    "residual.6.bias": "conv2.bias",
    "shortcut.weight": "conv_shortcut.weight",
    "shortcut.bias": "conv_shortcut.bias",
}
_RESIDUAL_INV = {v: k for k, v in _RESIDUAL.items()}
_TOP = {"conv1.": "quant_conv.", "conv2.": "post_quant_conv.", "encoder.conv1.": "encoder.conv_in.",
        "decoder.conv1.": "decoder.conv_in.", "encoder.head.0.": "encoder.norm_out.",
        "encoder.head.2.": "encoder.conv_out.", "decoder.head.0.": "decoder.norm_out.",
        "decoder.head.2.": "decoder.conv_out."}  # fmt: skip
_BLOCK = re.compile(r"^(encoder|decoder)\.(downsamples|upsamples)\.(\d+)\.(downsamples|upsamples)\.(\d+)\.(.+)$")
_MIDDLE = re.compile(r"^(encoder|decoder)\.middle\.([012])\.(.+)$")


def vae_error(message: str) -> Exception:
    from model.pipeline import CheckpointError  # lazy: model.pipeline imports this module's users

    return CheckpointError(message)


# -- key map -------------------------------------------------------------------------------------
def wan22_key_to_diffusers(key: str) -> str | None:
    """One original Wan2.2 VAE key -> its `AutoencoderKLWan` key (None when the layout has no such key)."""
    for old, new in _TOP.items():
        if key.startswith(old) and key.count(".") == old.count("."):
            return new + key[len(old) :]
    m = _MIDDLE.match(key)
    if m:
        part, idx, rest = m.groups()
        if idx == "1":
            return f"{part}.mid_block.attentions.0.{rest}"
        return f"{part}.mid_block.resnets.{int(idx) // 2}.{_RESIDUAL[rest]}" if rest in _RESIDUAL else None
    m = _BLOCK.match(key)
    if m:
        part, outer, i, inner, j, rest = m.groups()
        if outer != inner or (part, outer) not in {("encoder", "downsamples"), ("decoder", "upsamples")}:
            return None
        blocks, sampler = ("down_blocks", "downsampler") if part == "encoder" else ("up_blocks", "upsampler")
        if rest.startswith(("resample.", "time_conv.")):
            return f"{part}.{blocks}.{i}.{sampler}.{rest}"
        return f"{part}.{blocks}.{i}.resnets.{j}.{_RESIDUAL[rest]}" if rest in _RESIDUAL else None
    return None


def convert_wan22_vae_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original Wan2.2 VAE state dict -> `AutoencoderKLWan` keys; raises KeyError naming unknown keys."""
    out, unknown = {}, []
    for key, value in state_dict.items():
        new = wan22_key_to_diffusers(key)
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise KeyError(f"{len(unknown)} keys are not in the Wan2.2 VAE layout, e.g. {', '.join(unknown[:3])}")
    return out


def diffusers_to_wan22_vae_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse map (`AutoencoderKLWan(is_residual=True)` -> original Wan2.2 keys), e.g. to write a
    released-layout `vae/` from our model. The resample index follows the block's residual count."""
    resnets: dict[tuple[str, str], int] = {}
    for key in state_dict:
        m = re.match(r"^(encoder\.down_blocks|decoder\.up_blocks)\.(\d+)\.resnets\.(\d+)\.", key)
        if m:
            resnets[m.group(1), m.group(2)] = max(resnets.get((m.group(1), m.group(2)), 0), int(m.group(3)) + 1)
    inv_top = {v: k for k, v in _TOP.items()}
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = None
        for old, orig in inv_top.items():
            if key.startswith(old) and key.count(".") == old.count("."):
                new = orig + key[len(old) :]
        m = re.match(r"^(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)$", key)
        if m:
            part, kind, idx, rest = m.groups()
            new = (
                f"{part}.middle.1.{rest}"
                if kind == "attentions"
                else f"{part}.middle.{2 * int(idx)}.{_RESIDUAL_INV[rest]}"
            )
        m = re.match(r"^(encoder)\.down_blocks\.(\d+)\.(resnets\.(\d+)|downsampler)\.(.+)$", key) or re.match(
            r"^(decoder)\.up_blocks\.(\d+)\.(resnets\.(\d+)|upsampler)\.(.+)$", key
        )
        if m:
            part, i, which, j, rest = m.groups()
            group = "downsamples" if part == "encoder" else "upsamples"
            if j is not None:
                new = f"{part}.{group}.{i}.{group}.{j}.{_RESIDUAL_INV[rest]}"
            else:
                blocks = "encoder.down_blocks" if part == "encoder" else "decoder.up_blocks"
                new = f"{part}.{group}.{i}.{group}.{resnets[blocks, i]}.{rest}"
        if new is None:
            raise KeyError(f"{key} is not an AutoencoderKLWan (Wan2.2) key")
        out[new] = value
    return out


# -- layout detection and architecture ------------------------------------------------------------
def detect_vae_layout(state_dict: dict[str, Any]) -> str:
    """'wan2.2' (original, residual sampling), 'wan2.1' (original), 'diffusers', or 'unknown'."""
    keys = state_dict.keys()
    if "quant_conv.weight" in keys or any(k.startswith("encoder.down_blocks.") for k in keys):
        return "diffusers"
    if any(_BLOCK.match(k) for k in keys):
        return "wan2.2"
    if "conv1.weight" in keys and any(k.startswith("encoder.downsamples.") for k in keys):
        return "wan2.1"
    return "unknown"


def z_dim_of(state_dict: dict[str, Any]) -> int | None:
    """Latent channels, from the 1x1 post-quant conv (original `conv2`, diffusers `post_quant_conv`)."""
    for key in ("conv2.weight", "post_quant_conv.weight"):
        if key in state_dict:
            return int(state_dict[key].shape[0])
    return None


def infer_wan22_vae_config(state_dict: dict[str, torch.Tensor], config: dict[str, Any] | None = None) -> dict[str, Any]:
    """`AutoencoderKLWan` kwargs for an original-layout Wan2.2 state dict, from the tensor shapes.

    `config` (the released `vae/config.json`) contributes only the latent mean/std.
    """
    from model.configs import WAN22_LATENTS_MEAN, WAN22_LATENTS_STD

    sd, config = state_dict, config or {}
    base_dim, in_channels = int(sd["encoder.conv1.weight"].shape[0]), int(sd["encoder.conv1.weight"].shape[1])
    z_dim = int(sd["conv2.weight"].shape[0])
    blocks: dict[int, set[int]] = {}
    for key in sd:
        m = _BLOCK.match(key)
        if m and m.group(1) == "encoder":
            blocks.setdefault(int(m.group(3)), set())
            if m.group(6) in _RESIDUAL:
                blocks[int(m.group(3))].add(int(m.group(5)))
    n = len(blocks)
    dim_mult = [
        int(sd[f"encoder.downsamples.{i}.downsamples.0.residual.2.weight"].shape[0]) // base_dim for i in range(n)
    ]
    num_res_blocks = len(blocks[0])
    temporal = [
        f"encoder.downsamples.{i}.downsamples.{num_res_blocks}.time_conv.weight" in sd for i in range(max(n - 1, 0))
    ]
    decoder_base_dim = int(sd["decoder.conv1.weight"].shape[0]) // dim_mult[-1]
    mean = config.get("latents_mean") or (WAN22_LATENTS_MEAN if z_dim == 48 else [0.0] * z_dim)
    std = config.get("latents_std") or (WAN22_LATENTS_STD if z_dim == 48 else [1.0] * z_dim)
    patch = 2 if in_channels == 12 else 1
    return dict(
        base_dim=base_dim,
        decoder_base_dim=decoder_base_dim,
        z_dim=z_dim,
        dim_mult=dim_mult,
        num_res_blocks=num_res_blocks,
        attn_scales=[],
        temperal_downsample=temporal,
        dropout=0.0,
        latents_mean=[float(v) for v in mean],
        latents_std=[float(v) for v in std],
        is_residual=True,
        in_channels=in_channels,
        out_channels=int(sd["decoder.head.2.weight"].shape[0]),
        patch_size=patch,
        scale_factor_temporal=2 ** sum(temporal),
        scale_factor_spatial=patch * 2 ** max(n - 1, 0),
    )
