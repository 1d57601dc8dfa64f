"""The released `vae/` (original Wan2.2 keys, class `VAE`) loads and matches upstream numerically.

Golden data: tests/fixtures/upstream/vae/ (a tiny random-weight upstream `VideoVAE38_`, its weights in
the released layout and its encode/decode outputs; README.md there says how it was made).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from model.pipeline import CheckpointError, load_vae
from model.vae import convert_original_vae_state_dict, decode_latents, encode_video

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "vae"
TOLERANCE = 1e-4  # fp32, against upstream's own forward


def write_released_vae(folder: Path, z_dim: int = 16, config_z_dim: int | None = None) -> Path:
    """A tiny Wan2.2-architecture VAE of `z_dim` written in the released layout (original keys, class VAE)."""
    from diffusers import AutoencoderKLWan

    from model.configs import TINY
    from model.vae_wan22_keys import diffusers_to_wan22_vae_state_dict

    cfg = {**TINY.vae, "z_dim": z_dim, "latents_mean": [0.0] * z_dim, "latents_std": [1.0] * z_dim}
    state = diffusers_to_wan22_vae_state_dict(AutoencoderKLWan(**cfg).state_dict())
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "diffusion_pytorch_model.safetensors"))
    released = {"_class_name": "VAE", "z_dim": config_z_dim or z_dim, "dim": 8, "dim_mult": [1, 2, 4, 4]}
    (folder / "config.json").write_text(json.dumps({**released, "vae_pth": "diffusion_pytorch_model.safetensors"}))
    return folder


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def test_released_layout_reproduces_upstream_encode_and_decode():
    """Our loader + `encode_video`/`decode_latents` on the fixture folder == upstream VideoVAE38_.encode/decode."""
    io = np.load(FIXTURE / "io.npz")
    vae = load_vae(FIXTURE)
    assert (vae.config.base_dim, vae.config.decoder_base_dim, vae.config.z_dim) == (4, 4, 48)
    with torch.no_grad():
        latents = encode_video(vae, torch.from_numpy(io["video"]))
        pixels = decode_latents(vae, torch.from_numpy(io["latents"]))
    enc_diff = float((latents - torch.from_numpy(io["latents"])).abs().max())
    # diffusers clamps decoded pixels to [-1, 1]; the fixture's stay inside (max |x| ~0.41), so the clip is a no-op
    dec_diff = float((pixels - torch.from_numpy(io["decoded"]).clamp(-1, 1)).abs().max())
    print(f"max abs diff vs upstream: encode {enc_diff:.3g}, decode {dec_diff:.3g}")
    assert latents.shape == (1, 48, 2, 2, 2) and pixels.shape == (1, 3, 5, 32, 32)
    assert enc_diff < TOLERANCE and dec_diff < TOLERANCE


def test_pipeline_loads_a_checkpoint_whose_vae_is_in_the_released_layout(tiny_ckpt, tmp_path):
    from model.pipeline import KiwiEditPipeline

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_ckpt, ckpt)
    shutil.rmtree(ckpt / "vae")
    shutil.copytree(FIXTURE, ckpt / "vae", ignore=shutil.ignore_patterns("*.npz", "*.md", "released_keys.json"))
    pipe = KiwiEditPipeline.from_pretrained(ckpt)
    io = np.load(FIXTURE / "io.npz")
    with torch.no_grad():
        latents = pipe.encode_pixels(torch.from_numpy(io["video"]))
    assert float((latents - torch.from_numpy(io["latents"])).abs().max()) < TOLERANCE


def test_key_map_covers_the_released_size_exactly():
    """Upstream VideoVAE38_(dim=160, z=48, dec_dim=256) keys/shapes <-> our kiwi-5b AutoencoderKLWan, both ways."""
    from diffusers import AutoencoderKLWan

    from model.configs import KIWI_5B
    from model.vae_wan22_keys import (
        convert_wan22_vae_state_dict,
        diffusers_to_wan22_vae_state_dict,
        infer_wan22_vae_config,
    )

    upstream = {
        k: torch.empty(v, device="meta") for k, v in json.loads((FIXTURE / "released_keys.json").read_text()).items()
    }
    with torch.device("meta"):
        ours = AutoencoderKLWan(**KIWI_5B.vae).state_dict()
    converted = convert_wan22_vae_state_dict(upstream)
    assert set(converted) == set(ours)
    assert all(converted[k].shape == ours[k].shape for k in ours)
    back = diffusers_to_wan22_vae_state_dict(ours)
    assert {k: tuple(v.shape) for k, v in back.items()} == {k: tuple(v.shape) for k, v in upstream.items()}
    inferred = infer_wan22_vae_config(upstream)
    assert {k: inferred[k] for k in KIWI_5B.vae if not k.startswith("latents")} == {
        k: v for k, v in KIWI_5B.vae.items() if not k.startswith("latents")
    }


def test_convert_original_vae_state_dict_takes_the_wan22_layout():
    converted = convert_original_vae_state_dict(load_file(str(FIXTURE / "diffusion_pytorch_model.safetensors")))
    assert "encoder.down_blocks.1.downsampler.time_conv.weight" in converted
    assert "decoder.up_blocks.0.upsampler.time_conv.weight" in converted
    assert "quant_conv.weight" in converted and not any(k.startswith("encoder.downsamples.") for k in converted)


def test_the_diffusers_layout_still_loads(tmp_path):
    from model.configs import TINY
    from model.vae import build_vae

    vae = build_vae(TINY.vae)
    vae.save_pretrained(tmp_path / "vae")
    loaded = load_vae(tmp_path / "vae")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in vae.state_dict().items())


def test_a_folder_in_neither_layout_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError) as exc:
        load_vae(tmp_path / "empty")
    assert "config.json is missing" in _one_line(exc) and "AutoencoderKLWan" in str(exc.value)

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    with pytest.raises(CheckpointError) as exc:
        load_vae(tmp_path / "other")
    assert "AutoencoderKL'" in _one_line(exc) and "_class_name VAE" in str(exc.value)


def test_a_truncated_weight_file_is_named(tmp_path):
    folder = tmp_path / "vae"
    shutil.copytree(FIXTURE, folder)
    weights = folder / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError) as exc:
        load_vae(folder)
    message = _one_line(exc)
    assert str(weights) in message and "truncated" in message and "z_dim 48" in message

    from model.configs import TINY
    from model.vae import build_vae

    build_vae(TINY.vae).save_pretrained(tmp_path / "diffusers")
    weights = tmp_path / "diffusers" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError) as exc:
        load_vae(tmp_path / "diffusers")
    assert str(weights) in _one_line(exc) and "truncated" in str(exc.value)


def test_a_vae_of_the_wrong_z_dim_is_refused(tmp_path):
    folder = write_released_vae(tmp_path / "z16", z_dim=16)
    with pytest.raises(CheckpointError) as exc:
        load_vae(folder)
    assert "z_dim 16" in _one_line(exc) and "z_dim 48" in str(exc.value)

    lying = write_released_vae(tmp_path / "lying", z_dim=16, config_z_dim=48)  # the weights decide
    with pytest.raises(CheckpointError) as exc:
        load_vae(lying)
    assert "diffusion_pytorch_model.safetensors is a Wan2.2-layout VAE with z_dim 16" in _one_line(exc)

    from model.configs import TINY
    from model.vae import build_vae

    build_vae({**TINY.vae, "z_dim": 16, "latents_mean": [0.0] * 16, "latents_std": [1.0] * 16}).save_pretrained(
        tmp_path / "diffusers16"
    )
    with pytest.raises(CheckpointError) as exc:
        load_vae(tmp_path / "diffusers16")
    assert "config.json describes a VAE with z_dim 16" in _one_line(exc)
