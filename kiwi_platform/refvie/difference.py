"""Difference primitives of the edit-region stage: where an aligned source/target pair differs beyond codec noise.

Why a module of its own: these array-level steps (Lab difference, noise floor, hysteresis, mask
clean-up, shape completion, boxes; alignment is re-exported from `alignment.py`, tracking over
time is in `tracking.py`) know nothing of prompts or backends, and several callers build on them: the default `diff` backends (`backends/diff.py`), edit
classification (`edit_types.py`), the stage itself (`regions.py`) and reference synthesis
(`references.py`).

Differences are ΔE' = sqrt(ΔL² + (0.5·ΔC)²) in CIE Lab units (L 0..100). Measured on `kiwi
synth` pairs after normalization (H.264 crf 18, then JPEG q95): unchanged pixels have a median
ΔE' of 0-1.6 for local edits (up to ~3 on real footage behind a background swap), edited pixels
are mostly > 15. Thresholds below were tuned on 60 pairs at 128x224 (seed 0) and checked on
seeds 1-4 and at 64x96 / 96x160 (benchmarks/refvie_pipeline.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kiwi_platform.refvie.alignment import align_source, estimate_shift, shift_frames  # noqa: F401  (re-exported)
from kiwi_platform.refvie.types import Box, SampleRejected


def to_lab(frames: np.ndarray) -> np.ndarray:
    """(T,H,W,3) uint8 RGB -> float32 Lab (L in 0..100)."""
    return np.stack([cv2.cvtColor(f.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab) for f in frames])


def color_difference(
    source: np.ndarray, target: np.ndarray, blur: float = 0.0, chroma_weight: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel change between aligned source and target: (ΔE', |ΔL|), each (T,H,W) float32.

    ΔE' = sqrt(ΔL² + (w·ΔC)²) down-weights chroma (w = `chroma_weight`): H.264 and JPEG store
    colour at half resolution, so chroma bleeds 1-2 px past an object's edge while luminance
    stays sharp. Measured on synth pairs, w = 0.5 and no blur gave the best mask IoU (0.96 mean
    on local edits vs 0.83 for plain ΔE76 with a 0.6 px blur). The clips must be aligned
    (`find_edit_region` aligns them with `align_source`).
    """
    lab = to_lab(source) - to_lab(target)
    delta_l = np.abs(lab[..., 0])
    delta = np.sqrt(delta_l**2 + (chroma_weight**2) * (lab[..., 1] ** 2 + lab[..., 2] ** 2)).astype(np.float32)
    if blur > 0:
        delta = np.stack([cv2.GaussianBlur(d, (0, 0), blur) for d in delta])
        delta_l = np.stack([cv2.GaussianBlur(d, (0, 0), blur) for d in delta_l])
    return delta, delta_l.astype(np.float32)


@dataclass(frozen=True)
class NoiseFloor:
    """Codec noise of a clip pair: typical ΔE' of unchanged pixels and the thresholds derived from it.

    `global_change` is set when even the quietest pixels changed more than codec noise can
    explain (a style filter, a swap to a similar background): the thresholds then drop so the
    change is found everywhere it is.
    """

    median: float
    sigma: float
    low: float  # a pixel above this may belong to the edit (grown from strong pixels)
    high: float  # a pixel above this surely belongs to the edit
    global_change: bool = False


def noise_floor(
    diff: np.ndarray,
    cap: float = 12.0,
    low_min: float = 9.0,
    high_min: float = 15.0,
    k_low: float = 4.0,
    k_high: float = 8.0,
    max_noise: float = 4.0,
    max_quiet_p10: float = 3.0,
) -> NoiseFloor:
    """Estimate the noise floor from pixels below `cap` (unchanged ones dominate there even when
    most of the frame changed, as in a background swap), then set hysteresis thresholds.

    Measured after normalization (H.264 crf 18 + JPEG q95): the quiet median is 0-1.6 ΔE' for
    local edits and 1-3.2 for background swaps on real footage, but 6-11 for style filters; a
    median above `max_noise` therefore means a global change, not noise. So does a 10th
    percentile above `max_quiet_p10` (measured <= 0.5 for local edits, >= 2.9 under filters and
    background swaps): a faint filter on a flat scene changes every pixel a little.
    """
    sample = diff.ravel()[:: max(1, diff.size // 200_000)]  # a fixed stride: same answer every run, less work
    quiet = sample[sample < cap]
    if quiet.size < max(16, sample.size // 50):
        med, sigma = cap, cap / 4
    else:
        med = float(np.median(quiet))
        sigma = float(1.4826 * np.median(np.abs(quiet - med))) + 0.25
    if med > max_noise or float(np.percentile(sample, 10)) > max_quiet_p10:
        low = max(2.5, 0.4 * min(med, cap))
        return NoiseFloor(med, sigma, low, max(low + 2.0, min(med, cap)), True)
    return NoiseFloor(med, sigma, max(low_min, med + k_low * sigma), max(high_min, med + k_high * sigma))


def hysteresis(diff: np.ndarray, low: float, high: float) -> np.ndarray:
    """(H,W) bool: pixels above `low` connected (8-neighbourhood) to a pixel above `high`."""
    weak = (diff > low).astype(np.uint8)
    n, labels = cv2.connectedComponents(weak, connectivity=8)
    if n <= 1:
        return np.zeros(diff.shape, bool)
    strong_labels = np.unique(labels[diff > high])
    keep = np.zeros(n, bool)
    keep[strong_labels] = True
    keep[0] = False
    return keep[labels]


def fill_holes(mask: np.ndarray, max_hole: int | None = None) -> np.ndarray:
    """Fill enclosed holes (not touching the border); only those up to `max_hole` pixels if given."""
    inv = (~mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    if n <= 1:
        return mask.copy()
    h, w = mask.shape
    x, y, bw, bh, area = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3], stats[:, 4]
    touches = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    fill = ~touches
    if max_hole is not None:
        fill &= area <= max_hole
    fill[0] = fill[0] and inv[labels == 0].size == 0  # label 0 is the mask itself
    return mask | fill[labels]


def remove_small(mask: np.ndarray, min_area: int, rel: float = 0.0) -> np.ndarray:
    """Drop 8-connected components smaller than `min_area` px or than `rel` x the largest one."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.copy()
    area = stats[:, 4].copy()
    area[0] = 0
    keep = (area >= min_area) & (area >= rel * area.max())
    keep[0] = False
    return keep[labels]


def mask_box(mask: np.ndarray) -> Box | None:
    """(x0, y0, x1, y1) of a (H,W) or (T,H,W) mask, x1/y1 exclusive; None when empty."""
    if mask.ndim == 3:
        mask = mask.any(axis=0)
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if not len(ys):
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1] + 1), int(ys[-1] + 1)


def complete_shapes(
    masks: np.ndarray,
    low: float = 0.75,
    search: int = 12,
    contain: float = 0.85,
    min_part: float = 0.25,
    clips: tuple[np.ndarray, np.ndarray] | None = None,
    same_colour: float = 15.0,
) -> np.ndarray:
    """Fill in frames where a moving object was only partly found, from a neighbouring whole view.

    Where the object passes over background of its own colour, the difference misses part of it
    and that frame's mask shrinks. If a frame's mask is below `low` x the clip's typical (75th
    percentile) area, the mask of the nearest frame with a typical area is slid around the partial
    one (best overlap, `search`/4 px of slack) and, when the partial mask lies mostly (`contain`)
    inside the slid shape, the two are united; a part below `min_part` x typical is too little
    evidence to place the shape. This assumes the object keeps its shape over
    a few frames (rigid enough); the containment test leaves other cases alone, and images
    (T = 1) too.

    With `clips` (source, target), a completed pixel must also look like the object there: the
    difference missed it because source and target agree, so in source or target it must have
    the colour (max channel difference below `same_colour`) of the matching pixel of the whole
    view. A part hidden behind an occluder, or the margin of an object that is smaller in this
    frame (it moves away from the camera), shows other colours and is not filled in.
    """
    t = len(masks)
    areas = masks.reshape(t, -1).sum(axis=1).astype(float)
    if t < 3 or not areas.any():
        return masks
    typical = float(np.percentile(areas[areas > 0], 75))  # not the median: the miss can last half the clip
    good = [i for i in range(t) if 0.9 * typical <= areas[i] <= 1.15 * typical]
    out = masks.copy()
    for i in range(t):
        if not min_part * typical <= areas[i] < low * typical or not good:
            continue
        k = min(good, key=lambda g: (abs(g - i), g))
        y0, x0, y1, x1 = _yx(mask_box(masks[k]))
        shape = masks[k, y0:y1, x0:x1].astype(np.float32)
        sh, sw = shape.shape
        cy0, cx0, cy1, cx1 = _yx(mask_box(masks[i]))  # slide the whole view around the partial one
        h, w = masks.shape[1:]
        py0, px0 = max(0, cy1 - sh - search // 4), max(0, cx1 - sw - search // 4)
        py1, px1 = min(h, cy0 + sh + search // 4), min(w, cx0 + sw + search // 4)
        window = masks[i, py0:py1, px0:px1].astype(np.float32)
        if window.shape[0] < sh or window.shape[1] < sw:
            continue
        score = cv2.matchTemplate(window, shape, cv2.TM_CCORR)
        # equal overlaps (half an object fits several places): take the one nearest the whole view
        yy, xx = np.mgrid[0 : score.shape[0], 0 : score.shape[1]]
        score = score - 1e-3 * np.hypot(yy + py0 - y0, xx + px0 - x0)
        _, _, _, (bx, by) = cv2.minMaxLoc(score)
        placed = np.zeros_like(masks[i])
        placed[py0 + by : py0 + by + shape.shape[0], px0 + bx : px0 + bx + shape.shape[1]] = shape > 0
        if (placed & masks[i]).sum() >= contain * areas[i]:
            if clips is not None:
                placed &= masks[i] | _looks_alike(clips, i, k, (py0 + by - y0, px0 + bx - x0), same_colour)
            out[i] = masks[i] | placed
    return out


def _looks_alike(
    clips: tuple[np.ndarray, np.ndarray], i: int, k: int, offset: tuple[int, int], tol: float
) -> np.ndarray:
    """(H,W) bool: pixels of frame i whose colour matches frame k at (y, x) - offset, in source or target."""
    h, w = clips[0].shape[1:3]
    ys = np.clip(np.arange(h) - offset[0], 0, h - 1)
    xs = np.clip(np.arange(w) - offset[1], 0, w - 1)
    alike = np.zeros((h, w), bool)
    for clip in clips:
        a = cv2.GaussianBlur(clip[i], (3, 3), 0).astype(np.int16)
        b = cv2.GaussianBlur(clip[k], (3, 3), 0).astype(np.int16)[ys][:, xs]
        alike |= np.abs(a - b).max(axis=-1) < tol
    return alike


def _yx(box: Box | None) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) of an (x0, y0, x1, y1) box."""
    assert box is not None
    return box[1], box[0], box[3], box[2]


def _check_pair(source: np.ndarray, target: np.ndarray) -> None:
    if source.shape != target.shape or source.ndim != 4 or source.shape[-1] != 3:
        raise SampleRejected(
            "qc_backend_error", f"source {source.shape} and target {target.shape} must be equal (T,H,W,3) clips"
        )
