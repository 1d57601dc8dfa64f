"""Image fidelity measures: masks and boxes against ground truth, image similarity (SSIM, cosine).

Shared by RefVIE (its benchmark and tests, on `kiwi synth` pairs where the truth is known) and
evaluation (offline metrics). Images of different sizes are compared after resizing the
second to the first's size, because a synthesized reference and the true one rarely share a size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive (as in refvie.types)


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean masks of equal shape ((H,W) or (T,H,W) pooled); 1.0 when both are empty."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {truth.shape}")
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)


def clip_mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over frames of the per-frame IoU of (T,H,W) masks: every frame counts the same."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape or pred.ndim != 3:
        raise ValueError(f"need two (T,H,W) masks of one shape, got {pred.shape} and {truth.shape}")
    return float(np.mean([mask_iou(p, t) for p, t in zip(pred, truth)]))


def box_iou(a: Box | Sequence[int] | None, b: Box | Sequence[int] | None) -> float:
    """IoU of two (x0, y0, x1, y1) boxes with exclusive x1/y1; 0.0 if either is missing or empty."""
    if a is None or b is None:
        return 0.0
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: max(0, r[2] - r[0]) * max(0, r[3] - r[1])  # noqa: E731
    union = area(a) + area(b) - inter
    return float(inter / union) if union > 0 else 0.0


def _same_size(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if b.shape[:2] == a.shape[:2]:
        return b
    return cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two RGB/gray uint8 images on the luminance channel; `b` is resized to `a`'s size."""
    from skimage.metrics import structural_similarity

    b = _same_size(a, b)
    gray = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) if x.ndim == 3 else x  # noqa: E731
    ga, gb = gray(a), gray(b)
    win = min(7, *ga.shape)
    win -= 1 - win % 2  # odd window no larger than the image
    if win < 3:
        return float(1.0 - np.abs(ga.astype(float) - gb.astype(float)).mean() / 255.0)
    return float(structural_similarity(ga, gb, win_size=win, data_range=255))


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    """Cosine similarity of two vectors (0.0 if either is zero)."""
    u, v = np.asarray(u, np.float64).ravel(), np.asarray(v, np.float64).ravel()
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    return float(u @ v / (nu * nv)) if nu > 0 and nv > 0 else 0.0


def precision_recall(predicted: Iterable, actual: Iterable) -> tuple[float, float]:
    """Precision and recall of a predicted set against the true set (1.0 for an empty denominator)."""
    predicted, actual = set(predicted), set(actual)
    hits = len(predicted & actual)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(actual) if actual else 1.0
    return float(precision), float(recall)
