"""Ground-truth masks agree with the pixels that actually changed between source and target."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kiwi_platform.synth import load_ground_truth, load_mask
from kiwi_platform.synth.media import read_frames

KERNEL = np.ones((5, 5), np.uint8)


def _diffs(out: Path, record: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    src = read_frames(out / record["src"]).astype(np.int16)
    tgt = read_frames(out / record["tgt"]).astype(np.int16)
    return [(np.abs(s - t).mean(-1), load_mask(out, record["row"], k)) for k, (s, t) in enumerate(zip(src, tgt))]


def test_image_pairs_change_exactly_inside_the_mask(synth_set: Path) -> None:
    """Lossless image pairs: no pixel outside the mask changes, most pixels inside do."""
    images = [r for r in load_ground_truth(synth_set) if r["media"] == "image"]
    assert images
    for r in images:
        ((diff, mask),) = _diffs(synth_set, r)
        assert (diff[~mask] == 0).all(), r["edit_type"]
        assert (diff[mask] > 0).mean() > 0.9, r["edit_type"]


def test_video_pairs_change_inside_the_mask_and_not_outside(synth_set: Path) -> None:
    """Videos: outside the (slightly dilated) mask only codec noise; inside the (eroded) mask a clear change."""
    videos = [r for r in load_ground_truth(synth_set) if r["media"] == "video"]
    assert videos
    for r in videos:
        # A kept foreground is small and textured and sits on a new background: more chroma bleed.
        noise = 12 if r["edit_type"] == "background_change" else 8
        for diff, mask in _diffs(synth_set, r):
            m = mask.astype(np.uint8)
            inner = cv2.erode(m, KERNEL) > 0
            outer = cv2.dilate(m, KERNEL) == 0
            inside = diff[inner].mean()
            assert inside > 10, r["edit_type"]
            if outer.any():
                outside = diff[outer].mean()
                assert outside < noise and inside > 3 * outside, (r["edit_type"], inside, outside)


def test_masks_follow_the_moving_object(synth_set: Path) -> None:
    """Local-edit masks move with the object: the per-frame boxes change over time and bound each mask."""
    moving = [
        r
        for r in load_ground_truth(synth_set)
        if r["media"] == "video" and r["edit_type"] in {"local_add", "local_remove", "recolor"}
    ]
    assert moving
    for r in moving:
        boxes = r["object_boxes"]
        assert boxes[0] != boxes[-1]
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            mask = load_mask(synth_set, r["row"], k)
            assert mask[y0:y1, x0:x1].sum() == mask.sum() > 0


def test_local_masks_are_aligned_with_the_change(synth_set: Path) -> None:
    """For local edits the mask overlaps the changed pixels better than the same mask moved by 3 px."""
    local = [
        r
        for r in load_ground_truth(synth_set)
        if r["media"] == "video" and r["edit_type"] in {"local_add", "local_replace", "local_remove", "recolor"}
    ]
    assert local
    for r in local:
        src = read_frames(synth_set / r["src"]).astype(np.int16)
        tgt = read_frames(synth_set / r["tgt"]).astype(np.int16)
        changed = np.abs(src - tgt).max(-1) > 30
        mask = np.stack([load_mask(synth_set, r["row"], k) for k in range(len(src))])

        def iou(m: np.ndarray) -> float:
            return (m & changed).sum() / (m | changed).sum()

        best = iou(mask)
        for axis, step in ((1, 3), (1, -3), (2, 3), (2, -3)):
            assert best > iou(np.roll(mask, step, axis=axis)), (r["edit_type"], axis, step)
