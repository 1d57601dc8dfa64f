"""The SAM segmenter loads a local checkpoint and turns box prompts into per-frame masks at frame size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends.sam_segmenter import SamSegmenter, processed_frames
from kiwi_platform.refvie.types import Grounding, SampleRejected, Segmenter
from tests.refvie.backends.tiny_checkpoints import SQUARE


def test_masks_have_frame_shape_and_follow_the_box(sam_dir: Path, frame_pair) -> None:
    """Output is (T,H,W) bool at frame resolution, and a different box prompt gives a different mask."""
    source, target = frame_pair
    segmenter = SamSegmenter(sam_dir)
    assert isinstance(segmenter, Segmenter)
    masks = segmenter.segment(source, target, Grounding(box=SQUARE, frame_boxes=[SQUARE] * 3), "add a square")
    assert masks.shape == target.shape[:3] and masks.dtype == bool
    other = segmenter.segment(source, target, Grounding(box=(0, 0, 20, 12), frame_boxes=[]), "add a square")
    assert other.shape == masks.shape
    assert not np.array_equal(masks[0], other[0])
    # identical frames and boxes give identical masks (the model is deterministic)
    assert np.array_equal(masks[0], masks[1])


def test_frames_without_a_box_get_empty_masks(sam_dir: Path, frame_pair) -> None:
    """A frame whose grounding box is None (nothing visible) gets an empty mask; no box at all quarantines."""
    source, target = frame_pair
    segmenter = SamSegmenter(sam_dir)
    full = segmenter.segment(source, target, Grounding(box=SQUARE, frame_boxes=[SQUARE] * 3), "x")
    masks = segmenter.segment(source, target, Grounding(box=SQUARE, frame_boxes=[SQUARE, None, SQUARE]), "x")
    assert not masks[1].any()
    assert np.array_equal(masks[0], full[0]) and np.array_equal(masks[2], full[2])
    with pytest.raises(SampleRejected) as info:
        segmenter.segment(source, target, Grounding(box=None, frame_boxes=[None] * 3), "x")
    assert info.value.reason == "qc_empty_mask"


def test_frame_stride_reuses_the_nearest_processed_mask(sam_dir: Path, frame_pair) -> None:
    """With frame_stride=2 on 5 frames SAM runs on 0, 2, 4; frames 1 and 3 copy a processed neighbour."""
    source, target = (np.concatenate([a, a[:2]]) for a in frame_pair)
    boxes = [(40, 16, 64, 40), (0, 0, 30, 30), (40, 16, 64, 40), (0, 0, 30, 30), (10, 10, 50, 50)]
    every = SamSegmenter(sam_dir).segment(source, target, Grounding(box=boxes[0], frame_boxes=boxes), "x")
    strided = SamSegmenter(sam_dir, frame_stride=2).segment(
        source, target, Grounding(box=boxes[0], frame_boxes=boxes), "x"
    )
    assert processed_frames(5, 2) == [0, 2, 4] and processed_frames(4, 3) == [0, 3]
    for i in (0, 2, 4):
        assert np.array_equal(strided[i], every[i])
    assert np.array_equal(strided[1], every[0]) and not np.array_equal(strided[1], every[1])
    assert np.array_equal(strided[3], every[2])


def test_missing_processor_config_is_a_one_line_error(sam_dir: Path, tmp_path: Path) -> None:
    """A SAM folder without its processor config is rejected when the backend is configured."""
    partial = tmp_path / "sam"
    partial.mkdir()
    for name in ("config.json", "model.safetensors"):
        (partial / name).write_bytes((sam_dir / name).read_bytes())
    with pytest.raises(KiwiUserError, match="lacks a processor config") as info:
        SamSegmenter(partial)
    assert "\n" not in str(info.value)
    with pytest.raises(KiwiUserError, match="does not exist"):
        SamSegmenter(tmp_path / "missing")
