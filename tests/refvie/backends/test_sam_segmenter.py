"""The SAM segmenter loads a local checkpoint and turns box prompts into per-frame masks at frame size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends.sam_segmenter import SamSegmenter, grow_box, processed_frames
from kiwi_platform.refvie.types import Grounding, SampleRejected, Segmenter
from tests.refvie.backends.tiny_checkpoints import SQUARE


def test_masks_have_frame_shape_and_follow_the_box(sam_dir: Path, frame_pair) -> None:
    """Output is (T,H,W) bool at frame resolution, and a different box prompt gives a different mask."""
    source, target = frame_pair
    segmenter = SamSegmenter(sam_dir, propagate=False)
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
    segmenter = SamSegmenter(sam_dir, propagate=False)
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


def _moving_square(frames: int = 8, size: int = 12, step: int = 3) -> np.ndarray:
    """(T,64,96) bool: a square moving right by `step` px per frame."""
    truth = np.zeros((frames, 64, 96), bool)
    for i in range(frames):
        truth[i, 20 : 20 + size, 5 + step * i : 5 + step * i + size] = True
    return truth


def test_single_box_grounding_is_propagated_to_a_moving_object(sam_dir: Path, monkeypatch) -> None:
    """A VLM-style grounding (one box on the first frame, reused for every frame) is followed through
    the clip: each frame is prompted with the previous frame's mask box, so a moving object stays
    inside its prompt and is segmented in every frame, not only where it was on the first frame."""
    truth = _moving_square()
    seen: list[tuple[int, int, int, int]] = []

    def fake_masks_for(images, boxes):  # an ideal box-prompted segmenter: the object inside the box
        out = []
        for image, (x0, y0, x1, y1) in zip(images, boxes):
            seen.append((x0, y0, x1, y1))
            window = np.zeros(truth.shape[1:], bool)
            window[y0:y1, x0:x1] = True
            out.append(truth[int(image[0, 0, 0])] & window)
        return np.stack(out)

    frames = np.zeros((*truth.shape, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(len(truth))  # lets the fake tell frames apart
    first = (3, 18, 19, 34)
    segmenter = SamSegmenter(sam_dir)
    monkeypatch.setattr(segmenter, "masks_for", fake_masks_for)
    masks = segmenter.segment(frames, frames, Grounding(box=first, frame_boxes=[first] * len(truth)), "x")
    assert np.array_equal(masks, truth)
    assert seen[0] == first and seen[-1] != first
    fixed = SamSegmenter(sam_dir, propagate=False)
    monkeypatch.setattr(fixed, "masks_for", fake_masks_for)
    static = fixed.segment(frames, frames, Grounding(box=first, frame_boxes=[first] * len(truth)), "x")
    assert not static[-1].any()  # without propagation the moved object is lost


def test_grow_box_stays_inside_the_frame() -> None:
    """A grown prompt box never leaves the frame, and an empty mask gives no box."""
    assert grow_box((0, 0, 10, 10), 0.5, 20, 12) == (0, 0, 12, 15)
    assert grow_box(None, 0.25, 10, 10) is None
