"""Offline metrics: numbers about an edited video that need no network and no judge.

All inputs are uint8 RGB arrays aligned by `media.load_case_media`: source, output, optional
target (T,H,W,3), optional mask (T,H,W) bool (True = pixels the edit should change), optional
reference image (h,w,3). A metric that does not apply to a case is None (never 0), so tables
average only over cases where it means something.

Definitions, ranges and directions are in `METRICS` (used by tables, reports and `compare`):

- preservation_psnr / preservation_ssim: output vs source over pixels *outside* the edit mask.
  The mask is the case's known mask; without one it is estimated (`estimate_edit_mask`: per-pixel
  colour difference, blurred, thresholded at max(24/255, Otsu), opened, dilated 2 px), and the
  case's `mask_source` column says "estimated". None when under 1 % of the frame lies outside.
- target_psnr / target_ssim / target_l1: output vs ground-truth target, all pixels.
- temporal_consistency: min(1, (d_src + e) / (d_out + e)) where d = mean absolute change between
  consecutive frames (in [0,1]) and e = 0.005: 1 when the output changes between frames no more
  than the source does; 0.5 with twice the source's frame-to-frame change (flicker).
- flicker: mean |(o[t+1]-o[t]) - (s[t+1]-s[t])| / 255: how much the output's frame-to-frame change
  departs from the source's (0 = moves exactly like the source).
- reference_fidelity: similarity of the output's edited region to the reference image:
  0.5 * colour similarity (1 - Hellinger distance of 8x8x8 RGB histograms) + 0.5 * max(0, SSIM)
  of the region's bounding-box crop (frame with the largest region) and the reference's content
  crop. The reference's plain white surround, if it has one, is ignored.
- region_agreement: share of the change energy sum|o - s| that falls inside the mask (known mask
  only; with an estimated mask it would be true by construction). A random change scores about
  the mask's area share, a perfectly placed edit 1.
- edit_strength: mean |o - s| / 255 inside the mask (no direction: 0 means nothing was edited).
- reference_embedding_similarity (only with an `embedder`, e.g. CLIP): cosine of the embeddings of
  the edited-region crop and the reference's content crop, [-1, 1], higher is better.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from kiwi_platform.evaluation.media import CaseMedia

PSNR_CAP = 100.0  # dB reported for identical pixels (instead of infinity)
MIN_OUTSIDE_SHARE = 0.01
TEMPORAL_EPS = 0.005
ESTIMATE_MIN_DIFF = 24.0


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool | None  # None: informational, no direction
    range: str
    description: str


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("preservation_psnr", True, "[0, 100] dB", "PSNR of output vs source outside the edit mask"),
        MetricInfo("preservation_ssim", True, "[-1, 1]", "SSIM (luma) of output vs source outside the edit mask"),
        MetricInfo("target_psnr", True, "[0, 100] dB", "PSNR of output vs ground-truth target"),
        MetricInfo("target_ssim", True, "[-1, 1]", "SSIM (luma) of output vs ground-truth target"),
        MetricInfo("target_l1", False, "[0, 1]", "mean absolute error vs ground-truth target"),
        MetricInfo("temporal_consistency", True, "(0, 1]", "source frame-to-frame change / output's, capped at 1"),
        MetricInfo("flicker", False, "[0, 1]", "mean |output frame change - source frame change|"),
        MetricInfo(
            "reference_fidelity",
            True,
            "[0, 1]",
            "colour-histogram + structure similarity of edited region to reference",
        ),
        MetricInfo("region_agreement", True, "[0, 1]", "share of change energy inside the known edit mask"),
        MetricInfo("edit_strength", None, "[0, 1]", "mean absolute change inside the edit mask"),
        MetricInfo(
            "reference_embedding_similarity", True, "[-1, 1]", "embedding cosine of edited region and reference"
        ),
    )
}

#: images -> L2-normalised vectors: a plain callable or any object with `.embed(images)`
#: (e.g. `kiwi_platform.refvie.backends.clip_embedder.ClipImageEmbedder`).
Embedder = Callable[[list[np.ndarray]], np.ndarray] | Any


def _gray(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def masked_psnr(a: np.ndarray, b: np.ndarray, select: np.ndarray | None = None) -> float | None:
    """PSNR in dB over the selected pixels ((T,H,W) bool; all if None), capped at PSNR_CAP; None if none selected."""
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if select is not None:
        if not select.any():
            return None
        diff = diff[select]
    mse = float(diff.mean())
    return PSNR_CAP if mse == 0 else float(min(PSNR_CAP, 10 * np.log10(255.0**2 / mse)))


def masked_ssim(a: np.ndarray, b: np.ndarray, select: np.ndarray | None = None) -> float | None:
    """Mean of the per-pixel SSIM map (luma, Gaussian-free 7x7 window) over the selected pixels."""
    from skimage.metrics import structural_similarity

    if select is not None and not select.any():
        return None
    ga, gb = _gray(a), _gray(b)
    win = min(7, ga.shape[1], ga.shape[2])
    win = win if win % 2 else win - 1
    if win < 3:
        return None
    maps = np.stack([structural_similarity(x, y, data_range=255.0, win_size=win, full=True)[1] for x, y in zip(ga, gb)])
    return float(maps[select].mean() if select is not None else maps.mean())


def estimate_edit_mask(source: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Pixels the output changed, when no true mask exists (documented in the module docstring)."""
    from skimage.filters import threshold_otsu

    diff = np.abs(source.astype(np.float32) - output.astype(np.float32)).mean(axis=-1)
    diff = np.stack([cv2.GaussianBlur(d, (5, 5), 1.0) for d in diff])
    threshold = ESTIMATE_MIN_DIFF
    if diff.max() > diff.min():
        threshold = max(threshold, float(threshold_otsu(diff)))
    mask = diff > threshold
    kernel = np.ones((3, 3), np.uint8)
    out = [cv2.dilate(cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, kernel), kernel, iterations=2) for m in mask]
    return np.stack(out).astype(bool)


def preservation(source: np.ndarray, output: np.ndarray, mask: np.ndarray) -> dict[str, float | None]:
    outside = ~mask
    if outside.mean() < MIN_OUTSIDE_SHARE:
        return {"preservation_psnr": None, "preservation_ssim": None}
    return {
        "preservation_psnr": masked_psnr(output, source, outside),
        "preservation_ssim": masked_ssim(output, source, outside),
    }


def target_error(output: np.ndarray, target: np.ndarray) -> dict[str, float | None]:
    return {
        "target_psnr": masked_psnr(output, target),
        "target_ssim": masked_ssim(output, target),
        "target_l1": float(np.abs(output.astype(np.float32) - target.astype(np.float32)).mean() / 255.0),
    }


def temporal(source: np.ndarray, output: np.ndarray) -> dict[str, float | None]:
    if len(output) < 2:
        return {"temporal_consistency": None, "flicker": None}
    d_out = np.diff(output.astype(np.float32), axis=0)
    d_src = np.diff(source.astype(np.float32), axis=0)
    change_out, change_src = float(np.abs(d_out).mean() / 255), float(np.abs(d_src).mean() / 255)
    return {
        "temporal_consistency": min(1.0, (change_src + TEMPORAL_EPS) / (change_out + TEMPORAL_EPS)),
        "flicker": float(np.abs(d_out - d_src).mean() / 255),
    }


def region_agreement(source: np.ndarray, output: np.ndarray, mask: np.ndarray) -> float | None:
    energy = np.abs(output.astype(np.float32) - source.astype(np.float32)).mean(axis=-1)
    if energy.mean() < 0.5 or mask.mean() > 0.99 or not mask.any():
        return None  # nothing changed, or the mask is (almost) the whole frame: agreement says nothing
    return float(energy[mask].sum() / energy.sum())


def _content_crop(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(crop, pixel selection): drop a plain white surround (object-on-white references)."""
    border = np.concatenate([reference[0], reference[-1], reference[:, 0], reference[:, -1]])
    if (border.min(axis=-1) > 235).mean() > 0.9:
        content = reference.min(axis=-1) <= 235
        if content.any():
            ys, xs = np.nonzero(content)
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            return reference[y0:y1, x0:x1], content[y0:y1, x0:x1]
    return reference, np.ones(reference.shape[:2], bool)


def _hist_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """1 - Hellinger distance of 8x8x8 RGB histograms of two pixel lists (N,3)."""
    bins = lambda px: np.histogramdd(px.astype(np.float32), bins=(8, 8, 8), range=[(0, 256)] * 3)[0].ravel()  # noqa: E731
    ha, hb = bins(a), bins(b)
    ha, hb = ha / max(ha.sum(), 1), hb / max(hb.sum(), 1)
    return float(1.0 - np.sqrt(max(0.0, 1.0 - np.sqrt(ha * hb).sum())))


def reference_fidelity(
    output: np.ndarray, mask: np.ndarray, reference: np.ndarray, embedder: Embedder | None = None
) -> dict[str, float | None]:
    """See module docstring; with `embedder` (images -> L2-normalised vectors) also the cosine of the crops."""
    from kiwi_platform.lib.image_metrics import ssim

    if not mask.any():
        return {"reference_fidelity": None}
    t = int(np.argmax(mask.reshape(len(mask), -1).sum(axis=1)))
    ys, xs = np.nonzero(mask[t])
    region = output[t, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    ref_crop, ref_sel = _content_crop(reference)
    colour = _hist_similarity(output[mask], ref_crop[ref_sel])
    structure = max(0.0, ssim(region, ref_crop)) if min(region.shape[:2]) >= 3 else 0.0
    out: dict[str, float | None] = {"reference_fidelity": 0.5 * colour + 0.5 * structure}
    if embedder is not None:
        from kiwi_platform.lib.image_metrics import cosine

        embed = embedder.embed if hasattr(embedder, "embed") else embedder
        vectors = np.asarray(embed([region, ref_crop]), dtype=np.float32)
        out["reference_embedding_similarity"] = cosine(vectors[0], vectors[1])
    return out


def case_metrics(media: CaseMedia, embedder: Embedder | None = None) -> dict[str, Any]:
    """Every applicable offline metric for one case (None where it does not apply) + `mask_source`."""
    src, out = media.source, media.output
    known = media.mask is not None
    mask = media.mask if known else estimate_edit_mask(src, out)
    row: dict[str, Any] = {"mask_source": "known" if known else "estimated", "mask_area": float(mask.mean())}
    row.update(preservation(src, out, mask))
    if media.target is not None:
        row.update(target_error(out, media.target))
    else:
        row.update({"target_psnr": None, "target_ssim": None, "target_l1": None})
    row.update(temporal(src, out))
    row.update(
        reference_fidelity(out, mask, media.reference, embedder)
        if media.reference is not None
        else {"reference_fidelity": None}
    )
    row["region_agreement"] = region_agreement(src, out, mask) if known else None
    row["edit_strength"] = (
        float(np.abs(out.astype(np.float32) - src.astype(np.float32))[mask].mean() / 255) if mask.any() else 0.0
    )
    return row
