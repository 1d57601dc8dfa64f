"""Fidelity metrics used by the benchmark and the assets."""

from __future__ import annotations

import numpy as np
import pytest

from kiwi_platform.lib.image_metrics import box_iou, clip_mask_iou, cosine, mask_iou, precision_recall, ssim


def test_mask_iou_counts_overlap():
    """IoU = overlap / union; per-frame IoU is averaged so every frame counts the same."""
    a = np.zeros((2, 4, 4), bool)
    b = np.zeros((2, 4, 4), bool)
    a[0, :2, :2] = True  # 4 px
    b[0, :2, :1] = True  # 2 px inside a
    a[1, 0, 0] = b[1, 3, 3] = True  # disjoint
    assert mask_iou(a[0], b[0]) == pytest.approx(0.5)
    assert clip_mask_iou(a, b) == pytest.approx(0.25)
    assert mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0
    with pytest.raises(ValueError):
        mask_iou(a[0], np.zeros((3, 3), bool))


def test_box_iou():
    """Boxes are (x0, y0, x1, y1) with exclusive ends; missing boxes score 0."""
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert box_iou((0, 0, 2, 2), (2, 0, 4, 2)) == 0.0
    assert box_iou((0, 0, 2, 2), None) == 0.0


def test_ssim_handles_different_sizes():
    """SSIM is 1 for the same image, lower for a different one, and resizes the second image."""
    rng = np.random.default_rng(0)
    img = (rng.random((40, 60, 3)) * 255).astype(np.uint8)
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim(img, 255 - img) < 0.2
    smooth = np.tile(np.linspace(0, 255, 60, dtype=np.uint8)[None, :, None], (40, 1, 3))
    assert ssim(smooth, smooth[::2, ::2]) > 0.9


def test_cosine_and_precision_recall():
    """Cosine of parallel / orthogonal vectors; precision and recall of predicted vs true sets."""
    assert cosine([1, 0], [2, 0]) == pytest.approx(1.0)
    assert cosine([1, 0], [0, 3]) == pytest.approx(0.0)
    assert precision_recall({1, 2, 3, 4}, {1, 2, 5}) == (0.5, pytest.approx(2 / 3))
