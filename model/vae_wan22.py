"""The Wan2.2 VAE (z=48, residual up/down-sampling) in its original key layout, and `vae/` folder loading.

The released Kiwi-Edit `vae/` keeps the original Wan2.2 weights (`VideoVAE38_` keys such as
`encoder.downsamples.1.downsamples.0.residual.2.weight`) next to a config of class `VAE`
(`model_index.json`: `["wan_video_vae", "VAE"]`). Diffusers' single-file converter only knows the
Wan2.1 layout, so this module maps the Wan2.2 keys onto `AutoencoderKLWan(is_residual=True)` itself:

| original (Wan2.2)                                   | diffusers `AutoencoderKLWan`                      |
|-----------------------------------------------------|---------------------------------------------------|
| `conv1` / `conv2`                                   | `quant_conv` / `post_quant_conv`                  |
| `{encoder,decoder}.conv1`                           | `{encoder,decoder}.conv_in`                       |
| `{encoder,decoder}.head.0` / `.head.2`              | `.norm_out` / `.conv_out`                         |
| `*.middle.0` / `.middle.2` / `.middle.1`            | `*.mid_block.resnets.0` / `.resnets.1` / `.attentions.0` |
| `encoder.downsamples.i.downsamples.j` (residual)    | `encoder.down_blocks.i.resnets.j`                 |
| `encoder.downsamples.i.downsamples.j` (resample)    | `encoder.down_blocks.i.downsampler`               |
| `decoder.upsamples.i.upsamples.j` (residual)        | `decoder.up_blocks.i.resnets.j`                   |
| `decoder.upsamples.i.upsamples.j` (resample)        | `decoder.up_blocks.i.upsampler`                   |
| residual `.residual.{0,2,3,6}`, `.shortcut`         | `.norm1`, `.conv1`, `.norm2`, `.conv2`, `.conv_shortcut` |

The average-pool / duplicate shortcuts (`avg_shortcut`) hold no weights. The architecture (encoder
and decoder widths, `dim_mult`, residual blocks, temporal downsampling, z) is read from the tensor
shapes: the released config names only the encoder width (`dim`), the decoder's (256) is implicit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLWan

from model.vae_wan22_keys import (
    DIFFUSERS_WEIGHTS,
    EXPECTED_Z_DIM,
    convert_wan22_vae_state_dict,
    detect_vae_layout,
    infer_wan22_vae_config,
    vae_error,
    z_dim_of,
)


# -- reading weight files -------------------------------------------------------------------------
def read_state_dict(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """Load a `.safetensors` / `.pth` / `.bin` state dict; a truncated or corrupt file raises
    CheckpointError naming the file and `what` it should have been. Unwraps `state_dict` /
    `model_state` and strips `model.` / `module.` / `vae.` prefixes like the released converter."""
    path = Path(path)
    if not path.is_file():
        raise vae_error(f"{path} does not exist (expected {what})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors/pickle/zip errors have no common base class
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise vae_error(f"{path} is truncated or not a readable weight file ({reason}); expected {what}") from None
    if isinstance(state, dict):
        for wrapper in ("state_dict", "model_state"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise vae_error(f"{path} holds no tensor state dict; expected {what}")
    return state


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for prefix in ("model.", "module.", "vae."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


# -- building a VAE from weights ------------------------------------------------------------------
def vae_from_state_dict(
    state: dict[str, torch.Tensor],
    source: str | os.PathLike,
    config: dict[str, Any] | None = None,
    expected_z_dim: int | None = EXPECTED_Z_DIM,
) -> AutoencoderKLWan:
    """An `AutoencoderKLWan` from original Wan2.2 (or diffusers-keyed) weights; `source` names the file in errors."""
    state = _strip_prefixes(state)
    layout = detect_vae_layout(state)
    z = z_dim_of(state)
    want = f"the Wan2.2 VAE (z_dim {expected_z_dim})" if expected_z_dim else "a Wan2.2 VAE"
    if layout == "unknown" or z is None:
        raise vae_error(f"{source} is not a Wan VAE state dict (neither original nor diffusers keys); expected {want}")
    if expected_z_dim is not None and z != expected_z_dim:
        kind = {"wan2.2": "Wan2.2-layout", "wan2.1": "Wan2.1-layout", "diffusers": "diffusers-layout"}[layout]
        raise vae_error(f"{source} is a {kind} VAE with z_dim {z}; expected {want}")
    if layout == "wan2.1":
        raise vae_error(f"{source} is in the Wan2.1 VAE layout (no residual up/down-sampling); expected {want}")
    if layout == "wan2.2":
        try:
            cfg = infer_wan22_vae_config(state, config)
            converted = convert_wan22_vae_state_dict(state)
        except (KeyError, IndexError, ZeroDivisionError) as exc:
            raise vae_error(f"{source} is an incomplete Wan2.2 VAE ({exc}); expected {want}") from None
    else:  # diffusers keys saved under a released config
        if not config or "base_dim" not in config:
            raise vae_error(f"{source} holds diffusers VAE keys but its config.json is not an AutoencoderKLWan config")
        cfg = {k: v for k, v in config.items() if not k.startswith("_") and k != "vae_pth"}
        converted = state
    vae = AutoencoderKLWan(**cfg)
    missing, unexpected = _mismatch(vae, converted)
    if missing or unexpected:
        raise vae_error(
            f"{source} does not match the Wan2.2 VAE it describes: {len(missing)} missing, {len(unexpected)} "
            f"unexpected keys (e.g. {', '.join((missing + unexpected)[:2])})"
        )
    try:
        vae.load_state_dict(converted, strict=True)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc)[:200])
        raise vae_error(f"{source} does not match the Wan2.2 VAE it describes: {detail}") from None
    return vae.eval()


def _mismatch(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    own = set(model.state_dict())
    return sorted(own - state.keys()), sorted(state.keys() - own)


def load_vae_folder(
    folder: str | os.PathLike, torch_dtype: torch.dtype | None = None, expected_z_dim: int | None = EXPECTED_Z_DIM
) -> AutoencoderKLWan:
    """A `vae/` folder in either layout -> `AutoencoderKLWan`.

    - diffusers: `config.json` of class `AutoencoderKLWan` + `diffusion_pytorch_model.safetensors`
    - released: `config.json` of class `VAE` (or naming `vae_pth`) + original Wan2.2 weights in the file
      `vae_pth` names, or in `diffusion_pytorch_model.safetensors` (which the released loader reads)

    Every failure is one CheckpointError line naming the file and what was expected.
    """
    folder = Path(folder)
    cfg_path = folder / "config.json"
    expected = (
        "a diffusers AutoencoderKLWan config or the released Wan2.2 VAE config (_class_name VAE, vae_pth) "
        "next to its weights"
    )
    if not folder.is_dir():
        raise vae_error(f"VAE folder {folder} does not exist (expected {expected})")
    if not cfg_path.is_file():
        found = ", ".join(sorted(p.name for p in folder.iterdir())[:5]) or "nothing"
        raise vae_error(f"{cfg_path} is missing (found {found}); expected {expected}")
    try:
        cfg = json.loads(cfg_path.read_text())
        if not isinstance(cfg, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise vae_error(f"{cfg_path} is not valid JSON ({exc}); expected {expected}") from None
    name = cfg.get("_class_name")
    if name == "AutoencoderKLWan":
        return _load_diffusers_folder(folder, cfg, torch_dtype, expected_z_dim)
    if name != "VAE" and "vae_pth" not in cfg:
        raise vae_error(f"{cfg_path} names class {name!r}; expected {expected}")
    named = folder / Path(str(cfg.get("vae_pth") or DIFFUSERS_WEIGHTS)).name
    weights = named if named.is_file() else folder / DIFFUSERS_WEIGHTS
    if not weights.is_file():
        raise vae_error(f"{folder} names VAE weights {named.name} (vae_pth) but the file is missing")
    want = f"the Wan2.2 VAE (z_dim {expected_z_dim}) in the original key layout"
    if expected_z_dim is not None and cfg.get("z_dim") not in (None, expected_z_dim):
        raise vae_error(f"{cfg_path} describes a VAE with z_dim {cfg['z_dim']}; expected {want}")
    vae = vae_from_state_dict(read_state_dict(weights, want), weights, cfg, expected_z_dim)
    return vae.to(torch_dtype) if torch_dtype is not None else vae


def _load_diffusers_folder(
    folder: Path, cfg: dict[str, Any], torch_dtype: torch.dtype | None, expected_z_dim: int | None
) -> AutoencoderKLWan:
    want = f"a Wan2.2 AutoencoderKLWan (z_dim {expected_z_dim})"
    z = cfg.get("z_dim", 16)  # diffusers' default
    if expected_z_dim is not None and z != expected_z_dim:
        raise vae_error(f"{folder / 'config.json'} describes a VAE with z_dim {z}; expected {want}")
    weights = folder / DIFFUSERS_WEIGHTS
    if weights.is_file():
        _check_safetensors(weights, want)
    try:
        kw = {"torch_dtype": torch_dtype} if torch_dtype is not None else {}
        return AutoencoderKLWan.from_pretrained(folder, **kw)
    except (OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise vae_error(f"{folder} does not load as {want}: {reason}") from None


def _check_safetensors(path: Path, what: str) -> None:
    """Open the header and check the file is as long as the header says (catches truncation early)."""
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if path.stat().st_size < 8 + n + end:
            raise ValueError(f"{path.stat().st_size} bytes, the header needs {8 + n + end}")
    except (ValueError, KeyError, TypeError, OSError, MemoryError) as exc:
        raise vae_error(f"{path} is truncated or not a safetensors file ({exc}); expected {what}") from None
