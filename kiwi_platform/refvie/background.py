"""Background swaps: which part of each frame is the kept foreground, so the mask is all but it.

Why a module of its own: a background change edits almost every pixel, and its mask is defined
by what was kept (the subject in front of the new background). Finding the kept part is its own
problem on a regenerated target: the editor moved every kept pixel too (gain, noise, a lossy
re-encode), and the photometric model of `photometric.py` cannot be fitted when new content
covers most of the frame. So "unchanged" is judged against the clip's own split between small
and large change (`unchanged_level`), and when a stronger regeneration leaves no foreground
under that capped level, a wider split is tried and its foreground kept only when a single
affine colour map of the source explains it (what a regeneration does, and what chance
similarity between old and new background does not).
"""

from __future__ import annotations

import cv2
import numpy as np

from kiwi_platform.refvie.difference import color_difference, fill_holes
from kiwi_platform.refvie.photometric import apply_photometry, fit_photometry

#: A background swap's kept foreground covers at least this share of the frame.
MIN_FOREGROUND = 0.004
#: The most ΔE' a kept-foreground pixel of a background swap may change by (`unchanged_level`).
UNCHANGED_MAX = 8.0
#: ... and on the second try, for a strongly regenerated target whose foreground an affine map explains.
REGENERATED_MAX = 16.0
#: An unchanged compact region this big (share of the frame) is kept foreground even beside a larger one.
KEEP_CORE_SHARE = 0.01
#: A foreground found on the second try is kept when one per-channel affine map explains this share
#: of its pixels (`fit_photometry`'s inliers) with at most this residual noise (RGB levels).
AFFINE_INLIERS = 0.8
AFFINE_NOISE = 8.0


def unchanged_level(diff: np.ndarray, span: float = 40.0, cap: float = UNCHANGED_MAX) -> float:
    """ΔE' below which a pixel of a background swap counts as kept: the clip's Otsu split of the
    change (0..`span`), at most `cap`.

    Why: a regenerated target moves the kept foreground too (gain, noise, a lossy re-encode:
    measured median ΔE' 3-5.5, 90th percentile 6-9 on the hard kiwi synth set) and the photometric
    model cannot be fitted when new content covers most of the frame, so a fixed noise-level
    threshold left half the foreground "changed". The new background's change is mostly far above
    (10th percentile 9-33), and the split between the two falls in between.
    """
    sample = diff.ravel()[:: max(1, diff.size // 200_000)]
    values = np.clip(sample * (255.0 / span), 0, 255).astype(np.uint8).reshape(-1, 1)
    split, _ = cv2.threshold(values, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return min(float(split) * span / 255.0, cap)


def background_masks(
    masks: np.ndarray,
    diff: np.ndarray | None,
    source: np.ndarray | None = None,
    target: np.ndarray | None = None,
) -> np.ndarray:
    """(T,H,W) bool: every pixel but the kept foreground, per frame.

    The foreground is the largest compact unchanged region (plus any of similar size, or of at
    least `KEEP_CORE_SHARE` of the frame: unedited objects passing in front of the new background),
    grown back to its full unchanged extent. "Unchanged" comes from `diff` when given, relative to
    the frame's typical change; without it, the complement of `masks`. With the clips given, a frame
    with no foreground under `UNCHANGED_MAX` gets the second, affine-checked try (module docstring).
    """
    out = masks.copy()
    h, w = masks.shape[1:]
    k = max(3, int(round(min(h, w) / 26)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    level = unchanged_level(diff) if diff is not None else 0.0
    wide = unchanged_level(diff, cap=REGENERATED_MAX) if diff is not None else 0.0
    for i, m in enumerate(masks):
        if diff is None:
            foreground = _foreground((~m).astype(np.uint8), kernel)
        else:
            floor = max(3.0, 0.2 * float(np.median(diff[i])))
            foreground = _foreground((diff[i] < max(floor, level)).astype(np.uint8), kernel)
            if foreground is None and source is not None and target is not None and wide > level:
                candidate = _foreground((diff[i] < max(floor, wide)).astype(np.uint8), kernel)
                if candidate is not None:
                    foreground = _regenerated_foreground(source[i], target[i], candidate, kernel)
        out[i] = True if foreground is None else ~fill_holes(foreground)
    return out


def _foreground(unchanged: np.ndarray, kernel: np.ndarray) -> np.ndarray | None:
    """The kept foreground of one frame's (H,W) uint8 `unchanged` map, or None when there is none."""
    h, w = unchanged.shape
    core = cv2.morphologyEx(unchanged, cv2.MORPH_OPEN, kernel)  # thin unchanged slivers are chance
    n, labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    if n <= 1:
        return None
    area = stats[1:, 4]
    if area.max() < max(16, MIN_FOREGROUND * h * w):  # specks of chance similarity, no foreground
        return None
    cores = np.isin(labels, 1 + np.flatnonzero(area >= min(0.5 * area.max(), KEEP_CORE_SHARE * h * w)))
    # grow the kept cores back to their full unchanged component (the opening shaved the rim)
    _, labels2 = cv2.connectedComponents(unchanged, connectivity=8)
    return np.isin(labels2, np.unique(labels2[cores]))


def _regenerated_foreground(
    source: np.ndarray, target: np.ndarray, candidate: np.ndarray, kernel: np.ndarray
) -> np.ndarray | None:
    """The foreground of one frame once the regeneration fitted on `candidate` is undone, or None.

    The candidate (found under the wide level) also holds background that happens to have changed
    little; the affine map fitted robustly on it is the regeneration's when the candidate is mostly
    kept foreground. Mapping the source with it and differencing again leaves the kept foreground at
    noise level and the new background far above, so the usual capped level finds it; it is kept
    only when the map explains that foreground (`AFFINE_INLIERS`, `AFFINE_NOISE`).
    """
    model = fit_photometry(source[candidate][None, :, None], target[candidate][None, :, None])
    if not model.applied:
        return None
    mapped = apply_photometry(source[None], model)
    diff = color_difference(mapped, target[None])[0][0]
    unchanged = diff < max(3.0, 0.2 * float(np.median(diff)), unchanged_level(diff))
    foreground = _foreground(unchanged.astype(np.uint8), kernel)
    if foreground is None:
        return None
    check = fit_photometry(source[foreground][None, :, None], target[foreground][None, :, None])
    return foreground if check.inlier_share >= AFFINE_INLIERS and check.noise <= AFFINE_NOISE else None
