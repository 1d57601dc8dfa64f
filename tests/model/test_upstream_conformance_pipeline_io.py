"""Frame handling around the sampler follows upstream's pipeline and demo (issue 11, items 4 and 5).

Golden: tests/fixtures/upstream/pipeline_io.json, made by running upstream's own `_check_resize`,
`load_video_frames` (diffusers_demo.py), `_preprocess_video`, `_vae_output_to_video` and
`shrink_and_pad_centered` (showlab/Kiwi-Edit 223572d); see tests/fixtures/upstream/README.md.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from model.pipeline import KiwiEditPipeline
from model.training import TrainingRecipe, compute_loss
from model.video_io import (
    decoded_to_frames,
    fit_size,
    frames_to_tensor,
    pad_reference,
    read_image,
    round_up,
    shrink_and_pad_reference,
)
from tests.model.helpers import random_frames
from tests.model.upstream_media import FIXTURES, sha, synth

IO = json.loads((FIXTURES / "pipeline_io.json").read_text())["pipeline_io"]


def test_sizes_round_up_to_32_like_upstream():
    """Upstream rounds height/width up to 32 (1280x720 -> 1280x736); the old code floored (-> 1280x704).
    Default sizes follow the demo: above 1280*720 px scale down with sides floored to 16 first."""
    for h, w, _n, hh, ww, _nn in IO["check_resize"]:
        assert (round_up(w), round_up(h)) == (ww, hh)
    for w, h, _lw, _lh, ww, hh in IO["demo_sizes"]:
        assert fit_size(w, h) == (ww, hh), (w, h)
    assert fit_size(1280, 720) == (1280, 736)


def test_frames_for_mllm_and_vae_equal_upstream():
    """The MLLM gets the frames as the demo loads them (prescaled with LANCZOS only above max_area), the
    VAE the LANCZOS resize to the rounded-up size (no crop); the [-1, 1] tensor is upstream's bit for bit."""
    case = IO["prescale_case"]
    w, h, n, seed = case["source"]
    video = [synth(w, h, seed + i) for i in range(n)]
    mllm, vae, width, height = KiwiEditPipeline.prepare_frames(video, max_area=case["max_pixels"])
    assert list(mllm[0].size) == case["loaded_size"] and sha(mllm) == case["loaded_sha256"]
    assert [width, height] == case["vae_size"] and sha(vae) == case["vae_frames_sha256"]
    assert sha(frames_to_tensor(vae)) == case["vae_tensor_sha256"]

    mllm, vae, width, height = KiwiEditPipeline.prepare_frames(video, height=32, width=90)
    assert (width, height) == (96, 32) and mllm[0].size == (w, h)  # explicit size: rounded up, MLLM untouched
    assert np.array_equal(np.asarray(vae[0]), np.asarray(video[0].resize((96, 32), Image.LANCZOS)))


def test_rgba_inputs_are_composited_on_white(tmp_path):
    """Upstream's Qwen utils composite RGBA on white; the pipeline and read_image do the same for every
    path (the old code dropped the alpha channel, leaving whatever colour was under it)."""
    rgba = Image.new("RGBA", (64, 64), (10, 200, 30, 0))
    mllm, vae, _, _ = KiwiEditPipeline.prepare_frames([rgba], height=64, width=64)
    assert mllm[0].mode == "RGB" and (np.asarray(mllm[0]) == 255).all() and (np.asarray(vae[0]) == 255).all()
    assert (np.asarray(pad_reference(rgba, 96, 64)) == 255).all()
    rgba.save(tmp_path / "ref.png")
    assert (np.asarray(read_image(tmp_path / "ref.png")) == 255).all()


def test_output_is_truncated_in_the_vae_dtype():
    """Upstream converts decoded pixels with ((x + 1) * 127.5).clamp(0, 255) in the VAE dtype and
    truncates to uint8; the old code rounded in float32."""
    x = torch.rand(1, 3, 2, 8, 8, generator=torch.Generator().manual_seed(5)) * 2.1 - 1.05
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        assert sha(decoded_to_frames(x.to(dtype), dtype)) == IO["vae_output"][name]


def test_reference_pad_and_training_shrink_equal_upstream():
    """Inference pads the reference (ImageOps.pad); training shrinks it by s in [0.7, 1.0] and centres
    it on white (upstream `shrink_and_pad_centered`)."""
    for row in IO["reference_pad"]:
        rw, rh, seed = row["ref"]
        tw, th = row["target"]
        ref = synth(rw, rh, seed)
        assert sha(pad_reference(ref, tw, th)) == row["pad_sha256"]
        for scale, digest in row["shrink"]:
            assert sha(shrink_and_pad_reference(ref, tw, th, scale)) == digest, (row["ref"], scale)


def test_pipeline_default_size_and_what_the_encoder_sees(tiny_pipe, monkeypatch):
    """End to end: a 100x76 source with max_area 64*48 comes out 64x64 (48x48 prescale, rounded up);
    the encoder is handed the prescaled source frames, not the 64x64 VAE frames."""
    seen = []
    forward = tiny_pipe.mllm_encoder.forward

    def spy(prompt, source, ref_image=None, processor=None):
        seen.append([f.size for f in source])
        return forward(prompt, source, ref_image, processor)

    monkeypatch.setattr(tiny_pipe.mllm_encoder, "forward", spy)
    out = tiny_pipe("x", random_frames(5, 100, 76), max_area=64 * 48, num_inference_steps=1, seed=0)
    assert out.frames[0].size == (64, 64) and len(out.frames) == 5
    assert seen == [[(48, 48)] * 5]


def test_bf16_pipeline_keeps_latents_in_bf16_and_fp32_option(tiny_pipe):
    """Default: latents in the model dtype with bf16-rounded timesteps (upstream); latents_dtype="float32"
    keeps them in float32."""
    tiny_pipe.to(torch.bfloat16)
    seen: list[tuple[torch.dtype, torch.dtype]] = []
    kw = dict(height=32, width=32, num_inference_steps=2, seed=0, output_type="latent")
    out = tiny_pipe(
        "x", random_frames(1, 32, 32), callback_on_step_end=lambda i, t, x: seen.append((t.dtype, x.dtype)), **kw
    )
    assert out.latents.dtype == torch.bfloat16 and seen == [(torch.bfloat16, torch.bfloat16)] * 2
    out32 = tiny_pipe("x", random_frames(1, 32, 32), latents_dtype="float32", **kw)
    assert out32.latents.dtype == torch.float32
    with pytest.raises(ValueError, match="latents_dtype"):
        tiny_pipe("x", random_frames(1, 32, 32), latents_dtype="int8", **kw)


def test_training_reference_shrink_is_seeded_and_overridable(tiny_pipe):
    """The shrink factor is drawn from the step's generator (same seed, same factor and loss: exact resume
    holds), lies in [0.7, 1.0], and `TrainingRecipe(ref_scale_range=None)` pads like inference."""
    batch = {
        "source": torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1,
        "target": torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1,
        "prompt": "swap the towel",
        "ref_image": random_frames(1, 48, 40, seed=3)[0],
    }

    def run(seed, recipe=None):
        with torch.no_grad():
            return compute_loss(tiny_pipe, batch, torch.Generator().manual_seed(seed), True, recipe)

    (l1, d1), (l2, d2), (_, d3) = run(7), run(7), run(8)
    assert torch.equal(l1, l2) and d1["ref_scale"] == d2["ref_scale"] != d3["ref_scale"]
    assert all(0.7 <= d["ref_scale"] <= 1.0 for d in (d1, d3))
    _, plain = run(7, TrainingRecipe(ref_scale_range=None))
    assert plain["ref_scale"] is None
    assert torch.equal(plain["sigma"], d1["sigma"])  # the shrink draw comes after timestep and noise
