"""Sub-pixel mask edges (`refvie.edge_refine`): a smeared edge is put back where the object ends."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kiwi_platform.refvie.edge_refine import refine_edges

H, W, T = 72, 96, 3


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured background clip and the true (T,H,W) masks of a star-like object moving right."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    base = np.stack([60 + xx, 90 + 0.5 * yy, 140 - 0.4 * xx], axis=-1)
    background = np.clip(base + rng.normal(0, 3, (H, W, 3)), 0, 255)
    clip = np.repeat(background[None], T, axis=0).astype(np.uint8)
    masks = np.zeros((T, H, W), bool)
    for i in range(T):
        cx, cy, angles = 30 + 8 * i, 36, np.linspace(0, 2 * np.pi, 11)[:-1]
        radius = np.where(np.arange(10) % 2 == 0, 18, 9)
        pts = np.stack([cx + radius * np.sin(angles), cy - radius * np.cos(angles)], axis=1)
        layer = np.zeros((H, W), np.uint8)
        cv2.fillPoly(layer, [np.round(pts).astype(np.int32)], 255)
        masks[i] = layer > 127
    return clip, masks


def _paint(clip: np.ndarray, masks: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """The object composited into `clip` and the frame smeared as a lossy re-encode does (blur)."""
    out = clip.copy()
    out[masks] = colour
    return np.stack([cv2.GaussianBlur(f, (5, 5), 1.0) for f in out])


def _smeared(masks: np.ndarray, px: int) -> np.ndarray:
    """What a difference threshold returns on a low-contrast side: the object plus a ring of smear."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in masks])


def _peeled(masks: np.ndarray) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    return np.stack([cv2.erode(m.astype(np.uint8), kernel) > 0 for m in masks])


@pytest.mark.parametrize("start", [_smeared, _peeled], ids=["smear_ring", "peeled_edge"])
def test_added_object_edge_moves_to_the_true_edge(start) -> None:
    """An added object's mask with a 2-px ring of codec smear, or with its edge peeled, ends up
    much closer to the true object in every frame: the rim is decided by the mixing model."""
    background, truth = _scene()
    target = _paint(background, truth, (250, 210, 30))
    rough = start(truth, 2) if start is _smeared else start(truth)
    refined = refine_edges(rough, background, target, "local_add")
    for i in range(T):
        assert _iou(refined[i], truth[i]) > _iou(rough[i], truth[i]) + 0.05
        assert _iou(refined[i], truth[i]) > 0.85


def test_removed_object_is_read_from_the_source() -> None:
    """For a removal the object is in the source: the same smeared mask is corrected with the roles
    of the clips swapped (the target shows what was behind)."""
    background, truth = _scene(1)
    source = _paint(background, truth, (20, 30, 220))
    rough = _smeared(truth, 2)
    refined = refine_edges(rough, source, background, "local_remove")
    assert all(_iou(refined[i], truth[i]) > max(0.85, _iou(rough[i], truth[i]) + 0.05) for i in range(T))


def test_recolour_projects_on_the_colour_change() -> None:
    """A recoloured object is in both clips: its rim follows the change between the two colours,
    not the contrast to the background (which the unchanged ring around it also has)."""
    background, truth = _scene(2)
    source = _paint(background, truth, (30, 60, 230))
    target = _paint(background, truth, (240, 140, 20))
    rough = _smeared(truth, 2)
    refined = refine_edges(rough, source, target, "recolor")
    assert all(_iou(refined[i], truth[i]) > max(0.85, _iou(rough[i], truth[i]) + 0.05) for i in range(T))


def test_other_edit_types_and_low_contrast_keep_their_masks() -> None:
    """A replacement (two shapes mixed in the rim) and a background swap are returned as given; an
    object that matches what is behind it (no contrast to decide on) keeps its rim unchanged."""
    background, truth = _scene(3)
    target = _paint(background, truth, (250, 210, 30))
    rough = _smeared(truth, 2)
    for edit_type in ("local_replace", "background_change", "global_style"):
        assert np.array_equal(refine_edges(rough, background, target, edit_type), rough)
    camouflaged = background.copy()
    camouflaged[truth] = background[truth] + 5  # 5 levels per channel: below the decidable contrast
    assert np.array_equal(refine_edges(rough, background, camouflaged, "local_add"), rough)


def test_only_the_rim_changes_and_empty_frames_stay_empty() -> None:
    """Pixels farther than 2 px from the segmented edge keep their label (no object grows or is
    cut away), and a frame without mask stays empty (nothing invented from nothing)."""
    background, truth = _scene(4)
    target = _paint(background, truth, (250, 210, 30))
    rough = _smeared(truth, 4)  # too wide: the model may only take back its outer 2 px
    rough[1] = False
    refined = refine_edges(rough, background, target, "local_add")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    for i in (0, 2):
        m = rough[i].astype(np.uint8)
        far = (cv2.erode(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0) | (cv2.dilate(m, kernel) == 0)
        assert np.array_equal(refined[i][far], rough[i][far])
        assert (refined[i] != rough[i]).any()
    assert not refined[1].any()
