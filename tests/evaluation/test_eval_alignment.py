"""Offline metrics compare pixels the pipeline actually produced from: evaluation fits frames the same way."""

from __future__ import annotations

import numpy as np
from PIL import Image

from kiwi_platform.evaluation.media import fit_frames
from model.video_io import resize_frame


def test_fit_frames_matches_the_pipelines_frame_fit_for_another_aspect_ratio():
    """A 4:3 source evaluated at 16:9 is stretched like the pipeline stretches it (no crop), so
    preservation metrics do not compare shifted content."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    ours = fit_frames(frames, 96, 48)
    pipeline = np.stack([np.asarray(resize_frame(Image.fromarray(f), 96, 48)) for f in frames])
    assert ours.shape == (2, 48, 96, 3)
    assert np.array_equal(ours, pipeline)
    masks = fit_frames(np.zeros((1, 48, 64), bool) | (np.arange(64) < 8)[None, None, :], 96, 48, nearest=True)
    assert masks[0, :, :12].all() and not masks[0, :, 12:].any()  # the left strip stays at the left edge
