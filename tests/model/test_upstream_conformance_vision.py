"""The MLLM sees exactly the vision inputs upstream's Qwen utils make (issue 11, item 2).

Golden: tests/fixtures/upstream/vision_inputs.json, made by running upstream's own `process_vision_info`
(showlab/Kiwi-Edit 223572d) on the messages its encoder builds, then the Qwen2.5-VL processor of
transformers 4.57.0 (upstream's pin); see tests/fixtures/upstream/README.md.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from model.build import build_encoder, qwen_config_for_tokenizer
from model.configs import TINY
from model.processor import build_tiny_processor
from model.prompt import fit_pixels, fit_video
from tests.model.upstream_media import FIXTURES, sha, solid, synth

GOLDEN = json.loads((FIXTURES / "vision_inputs.json").read_text())
CASES = {c["name"]: c for c in GOLDEN["cases"]}
MAX_PROCESSOR_TOKENS = 5000  # the 5000x3000 image (16,335 tokens) is checked by size and pixels only


def _inputs(name: str):
    """Rebuild a case's (mode, source frames, reference) exactly as the fixture generator did."""
    kind, rest = name.split("_", 1)
    if kind == "video9":
        w, h = map(int, rest.split("x"))
        return [synth(w, h, s) for s in range(9)], None
    if name == "video81_solid_320x240_sampling":
        return [solid(320, 240, i) for i in range(81)], None
    if name == "video20_solid_64x48_sampling":
        return [solid(64, 48, i * 3) for i in range(20)], None
    if name == "image_rgba_300x200":
        return [synth(300, 200, 101, "RGBA")], None
    if kind == "image":
        w, h = map(int, rest.split("x"))
        return [synth(w, h, 100)], None
    if name == "video5_rgba_320x240":
        return [synth(320, 240, 110 + s, "RGBA") for s in range(5)], None
    if name == "reference_1frame_1280x720_ref_1280x720":
        return [synth(1280, 720, 200)], synth(1280, 720, 201)
    if name == "reference_9frames_640x352_ref_500x300":
        return [synth(640, 352, 210 + s) for s in range(9)], synth(500, 300, 220)
    if name == "reference_5frames_320x240_ref_rgba_90x120":
        return [synth(320, 240, 230 + s) for s in range(5)], synth(90, 120, 240, "RGBA")
    raise KeyError(name)


@pytest.fixture(scope="module")
def released_encoder():
    """A tiny-weight encoder with the released vision settings (16 frames, 262,144 px per frame,
    28*28*768 px reference, 16384*28*28 px image) and a processor with Qwen2.5-VL's pixel limits."""
    processor = build_tiny_processor(max_pixels=12845056)
    encoder_cfg = dict(
        TINY.encoder,
        max_frames=16,
        max_pixels_per_frame=262144,
        max_ref_pixels=28 * 28 * 768,
        max_image_pixels=16384 * 28 * 28,
    )
    cfg = dataclasses.replace(TINY, encoder=encoder_cfg)
    enc = build_encoder(cfg, qwen_config_for_tokenizer(cfg.qwen, processor.tokenizer))
    return enc, processor


def test_released_frame_sizes_match_the_issue_measurements():
    """1280x720 -> 672x336, 640x352 -> 616x336, 320x240 -> 392x280 per video frame (upstream), where the
    old code gave 672x364, 644x364, 308x252 (it snapped to 28 with a 784 px minimum)."""
    for name, size in [("video9_1280x720", [672, 336]), ("video9_640x352", [616, 336]), ("video9_320x240", [392, 280])]:
        assert CASES[name]["video_size"] == size
        assert list(fit_video(_inputs(name)[0][:1], 262144)[0].size) == size


@pytest.mark.parametrize("name", sorted(CASES))
def test_vision_inputs_and_token_counts_equal_upstream(name, released_encoder):
    """Frame sizes, sampled frames, pixels (sha256 of the uint8 frames), Qwen grids, vision-token and
    total token counts are upstream's, for video, single-image and reference (1-frame video) inputs."""
    enc, processor = released_encoder
    case = CASES[name]
    source, ref = _inputs(name)
    from model.prompt import build_prompt

    built = build_prompt("make it golden hour", source, ref, enc.num_queries, 16, 262144, 28 * 28 * 768, 16384 * 784)
    assert built.mode == case["mode"] and built.num_queries == case["num_queries"]
    if "video_size" in case:
        (video,) = built.videos
        assert len(video) == case["video_frames"]
        assert list(video[0].size) == case["video_size"]
        assert [int(np.asarray(f)[0, 0, 0]) for f in video] == case["video_first_pixel"]
        if "video_sha256" in case:
            assert sha(video) == case["video_sha256"]
    if "image_sizes" in case:
        assert [list(im.size) for im in built.images] == case["image_sizes"]
        assert [sha(im) for im in built.images] == case["image_sha256"]
    if sum(case.get("image_tokens", [])) + case.get("video_tokens", 0) > MAX_PROCESSOR_TOKENS:
        return
    inputs, mode, n = enc.prepare_inputs("make it golden hour", source, ref, processor=processor)
    assert inputs["input_ids"].shape[1] == case["input_tokens"]
    if "video_grid_thw" in case:
        assert inputs["video_grid_thw"][0].tolist() == case["video_grid_thw"]
        assert int(inputs["video_grid_thw"][0].prod()) // 4 == case["video_tokens"]
    if "image_grid_thw" in case:
        assert inputs["image_grid_thw"].tolist() == case["image_grid_thw"]


def test_video_pixel_values_equal_upstreams_float_tensor_input(released_encoder):
    """Upstream hands the processor a float (T, C, H, W) tensor of 0..255 values; we hand it the same
    frames as PIL images. The normalised pixel values are identical."""
    enc, processor = released_encoder
    source, _ = _inputs("video9_640x352")
    inputs, _, _ = enc.prepare_inputs("x", source, None, processor=processor)
    frames = fit_video(source, 262144)
    tensor = torch.stack([torch.from_numpy(np.array(f)).permute(2, 0, 1) for f in frames]).float()
    ref = processor.video_processor(videos=[tensor], return_tensors="pt")
    assert torch.equal(inputs["pixel_values_videos"], ref["pixel_values_videos"])


def test_single_image_and_reference_take_fetch_image_with_factor_28():
    """A 1-frame source without reference is an image (factor 28, >= 3,136 px); the reference image the
    same with <= 602,112 px; an RGBA image is composited on white first."""
    assert fit_pixels(synth(50, 40, 100), 16384 * 784).size == (84, 56)
    assert fit_pixels(synth(1280, 720, 201), 28 * 28 * 768).size == (1008, 560)
    rgba = synth(300, 200, 101, "RGBA")
    out = np.asarray(fit_pixels(rgba, 16384 * 784))
    assert out.shape == (196, 308, 3) and (out[0, 0] == 255).all()  # transparent corner -> white
