"""Video inputs reach Qwen the way the released weights saw them."""

from __future__ import annotations

from PIL import Image

from model.prompt import sample_frames


def _frames(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (64, 64), (i * 20 % 255, 40, 90)) for i in range(n)]


def test_video_temporal_positions_use_one_second_per_grid(tiny_pipe):
    """transformers 5.x would assume 24 fps and squeeze 8 temporal grids into ~1 RoPE position; the
    encoder pins upstream's spacing (fps 2 -> one second per grid of 2 frames) so frame order survives."""
    enc = tiny_pipe.mllm_encoder
    inputs, mode, _ = enc.prepare_inputs("make it snow", _frames(16), processor=tiny_pipe.processor)
    assert mode == "video"
    assert inputs["second_per_grid_ts"].tolist() == [1.0]


def test_odd_frame_counts_up_to_the_cap_are_all_kept():
    """Upstream keeps all <= 16 frames (the processor pads the last one); longer clips are sampled to 16."""
    assert len(sample_frames(_frames(9), 16)) == 9
    picked = sample_frames(_frames(81), 16)
    assert len(picked) == 16 and picked[0] is not None


def test_released_vae_layout_is_recognised_and_a_missing_weight_file_is_named(tmp_path):
    """A `vae/` written by the released conversion script (class VAE + vae_pth) is not misread as a
    diffusers folder; when its weight file is missing the error names it."""
    import json

    import pytest

    from model.pipeline import CheckpointError, load_vae

    (tmp_path / "config.json").write_text(
        json.dumps({"_class_name": "VAE", "dim": 160, "z_dim": 48, "vae_pth": "Wan2.2_VAE.pth"})
    )
    with pytest.raises(CheckpointError, match="Wan2.2_VAE.pth"):
        load_vae(tmp_path)
