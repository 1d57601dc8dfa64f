"""Alignment of a pair: undo a re-crop or a slight misplacement of the target by a whole-pixel shift.

Why a module of its own: editors that regenerate the target sometimes move its content by a
pixel or a few; every edge then looks "changed". Finding the shift must not be fooled by the
regeneration's global colour/gain change, so it uses phase correlation on standardised frames
(checked against a brute-force search), and the shift is applied to the source (masks live on the
target). Re-exported by `difference.py`, where callers have always found these functions.
"""

from __future__ import annotations

import cv2
import numpy as np


def _phase_shift(source: np.ndarray, target: np.ndarray, max_shift: int) -> tuple[int, int] | None:
    """(dy, dx) from phase correlation of the standardised gray frames (first, middle, last; the
    median of the three), rounded to whole pixels; None when it is out of range or not consistent.

    Phase correlation only sees structure, so a global gain/offset or a colour shift of the target
    (a regenerated clip) does not disturb it the way a plain pixel difference is disturbed.
    """
    t = len(source)
    picks = sorted({0, t // 2, t - 1})
    shifts = []
    for i in picks:
        a = cv2.cvtColor(source[i], cv2.COLOR_RGB2GRAY).astype(np.float32)
        b = cv2.cvtColor(target[i], cv2.COLOR_RGB2GRAY).astype(np.float32)
        a, b = (a - a.mean()) / (a.std() + 1e-3), (b - b.mean()) / (b.std() + 1e-3)
        window = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
        (dx, dy), response = cv2.phaseCorrelate(a, b, window)
        if response < 0.1:
            return None
        # OpenCV reports a frame against itself as moved by half a pixel on some sizes (measured
        # (0.5, 0) at 224 px wide): subtract that bias, or every pair rounds to a 1 px "shift"
        (bx, by), _ = cv2.phaseCorrelate(a, a, window)
        shifts.append((dy - by, dx - bx))
    dy, dx = np.median(np.array(shifts), axis=0)
    spread = np.abs(np.array(shifts) - (dy, dx)).max()
    if spread > 0.75 or max(abs(dy), abs(dx)) > max_shift + 0.5:
        return None
    return int(round(float(dy))), int(round(float(dx)))


def estimate_shift(source: np.ndarray, target: np.ndarray, max_shift: int = 4, crop: int = 192) -> tuple[int, int]:
    """How far (dy, dx) the target's content moved relative to the source, (0, 0) when unsure.

    Pairs from real editing models are sometimes re-cropped by a few pixels, which would turn
    every edge into "change". Every shift within `max_shift` px is scored on a central crop of
    the first frame (at most `crop` px square) by the median difference of standardised gray
    levels (a regenerated target's gain/offset cancels out). The shift phase correlation proposes
    (`_phase_shift`, robust to noise) is taken if it lowers that cost by 10% or more; otherwise the
    best-scoring shift is used only if it lowers the median raw gray difference by 30% or more and
    the standardised one by 10% (a regenerated target's offset alone can favour a wrong shift), so
    aligned pairs (and flat scenes) are left untouched.
    """
    a = cv2.cvtColor(source[0], cv2.COLOR_RGB2GRAY).astype(np.float32)
    b = cv2.cvtColor(target[0], cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = a.shape
    m = max_shift
    if h <= 4 * m or w <= 4 * m:
        return 0, 0
    ch, cw = min(crop, h - 2 * m), min(crop, w - 2 * m)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    ref = a[y0 : y0 + ch, x0 : x0 + cw]

    def cost(dy: int, dx: int, sa: np.ndarray = ref, sb: np.ndarray = b) -> float:
        # target moved by (dy, dx): compare source with target at +(dy, dx)
        return float(np.median(np.abs(sa - sb[y0 + dy : y0 + dy + ch, x0 + dx : x0 + dx + cw])))

    za = (ref - np.median(ref)) / (float(np.percentile(ref, 75) - np.percentile(ref, 25)) + 1.0)
    zb = (b - np.median(b)) / (float(np.percentile(b, 75) - np.percentile(b, 25)) + 1.0)
    proposed = _phase_shift(source, target, m)
    if proposed is not None and proposed != (0, 0):
        if cost(*proposed, za, zb) <= 0.9 * cost(0, 0, za, zb):
            return proposed
    before = cost(0, 0)
    if before < 2.0:
        return 0, 0
    costs = {(dy, dx): cost(dy, dx) for dy in range(-m, m + 1) for dx in range(-m, m + 1)}
    (dy, dx), best = min(costs.items(), key=lambda kv: (kv[1], abs(kv[0][0]) + abs(kv[0][1])))
    # a regenerated target's gain/offset can make a wrong shift "lower" the raw difference by chance:
    # the shift must also lower the difference of standardised gray levels
    if best < 0.7 * before and cost(dy, dx, za, zb) <= 0.9 * cost(0, 0, za, zb):
        return dy, dx
    return 0, 0


def shift_frames(frames: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate (T,H,W,C) frames by (dy, dx), replicating edge pixels into the uncovered band."""
    if dy == 0 and dx == 0:
        return frames
    h, w = frames.shape[1:3]
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    return frames[:, ys][:, :, xs]


def align_source(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The source moved onto the target's pixel grid (see `estimate_shift`), and the shift used.

    Masks and boxes live on the target, so the source is the one that moves; the band the shift
    uncovers is filled with the target's own pixels, which makes it "unchanged" rather than a
    strip of false edits along the border.
    """
    dy, dx = estimate_shift(source, target)
    if (dy, dx) == (0, 0):
        return source, (0, 0)
    moved = shift_frames(source, dy, dx).copy()
    h, w = source.shape[1:3]
    band = np.zeros((h, w), bool)
    band[: max(dy, 0)] = band[h + min(dy, 0) :] = True
    band[:, : max(dx, 0)] = band[:, w + min(dx, 0) :] = True
    moved[:, band] = target[:, band]
    return moved, (dy, dx)
