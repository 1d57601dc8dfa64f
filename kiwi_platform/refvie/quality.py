"""Quality control (docs/contract.md §1.2, stage 4) without model weights: embeddings, near-duplicates, a judge.

- `PerceptualHashEmbedder`: a 64-bit DCT perceptual hash plus a layout thumbnail, a tone
  histogram, a gradient grid and a texture-orientation histogram, computed on the content
  trimmed from its canvas and scaled to <= 64 px, as one L2-normalised vector (cosine = weighted
  mix of the five similarities). Same contract as a CLIP embedder (`ImageEmbedder`), so a CLIP
  backend is a config swap.
- `find_near_duplicates`: greedy, order-preserving: the first occurrence is kept, each later
  sample is compared with the kept ones only.
- `EmbeddingJudge`: the default `ReferenceJudge`: colour histogram + coarse gradient-orientation
  descriptor similarity between the reference and the target's edited region.
- `reference_size_ok`: the size filter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

#: Pixels this close to white (all channels) are canvas, not content, for colour descriptors.
WHITE = 245


def _to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=-1)
    return image[..., :3]


def phash_bits(image: np.ndarray) -> np.ndarray:
    """64 bools: the 8x8 lowest DCT frequencies (DC excluded from the median) of the 32x32 gray image,
    above their median. Robust to re-encoding, small shifts and brightness changes."""
    gray = cv2.cvtColor(_to_rgb(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].ravel()
    return low > np.median(low[1:])


def hue_saturation_hist(
    image: np.ndarray, hue_bins: int = 12, sat_bins: int = 4, skip_white: bool = True, value_bins: int = 1
) -> np.ndarray:
    """Normalised hue x saturation (x value) histogram; near-white canvas pixels are ignored."""
    rgb = _to_rgb(image)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    mask = None
    if skip_white:
        keep = ~(rgb.min(axis=-1) >= WHITE)
        if keep.any():
            mask = keep.astype(np.uint8)
    hist = cv2.calcHist([hsv], [0, 1, 2], mask, [hue_bins, sat_bins, value_bins], [0, 180, 0, 256, 0, 256]).ravel()
    return hist / max(float(hist.sum()), 1.0)


def trim_canvas(image: np.ndarray, tol: float = 40.0, pad: float = 0.15) -> tuple[np.ndarray, np.ndarray | None]:
    """Crop an object reference to its content (plus a `pad` share of margin in the canvas colour).

    A canvas is a nearly uniform border (white, or grey after a brightness change); content is
    what differs from it by more than `tol`, opened so JPEG ringing does not count. Returns the
    crop and its content mask, or the image and None when there is no uniform canvas (a scene).
    Trimming is what makes the embedding blind to where on the canvas the object sits.
    """
    rgb = _to_rgb(image)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.float32)
    canvas = np.median(border, axis=0)
    if np.abs(border - canvas).max(axis=1).mean() > 12:
        return rgb, None
    content = (np.abs(rgb.astype(np.float32) - canvas).max(axis=-1) > tol).astype(np.uint8)
    content = cv2.morphologyEx(content, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    ys, xs = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    if len(ys) < 2 or len(xs) < 2:
        return rgb, None
    y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    p = int(round(pad * max(y1 - y0, x1 - x0)))
    crop = cv2.copyMakeBorder(rgb[y0:y1, x0:x1], p, p, p, p, cv2.BORDER_CONSTANT, value=[float(v) for v in canvas])
    mask = cv2.copyMakeBorder(content[y0:y1, x0:x1], p, p, p, p, cv2.BORDER_CONSTANT, value=0)
    return crop, mask.astype(bool)


def layout_thumbnail(image: np.ndarray, size: int = 8, chroma: float = 2.0) -> np.ndarray:
    """Blurred size x size Lab thumbnail minus its mean colour, chroma weighted up: coarse layout + colour."""
    small = cv2.resize(cv2.GaussianBlur(_to_rgb(image), (0, 0), 1.0), (size, size), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    lab = lab - lab.mean(axis=0)
    lab[:, 1:] *= chroma
    return lab.ravel()


def orientation_hist(image: np.ndarray, content: np.ndarray | None, bins: int = 12) -> np.ndarray:
    """Magnitude-weighted histogram of unsigned gradient orientations over the content, at native
    resolution: tells textures apart that a thumbnail blurs away (stripes: one peak, checks: two,
    rings: flat), and survives re-encoding, rescaling and brightness changes."""
    gray = cv2.cvtColor(_to_rgb(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag, ang = cv2.cartToPolar(gx, gy)
    inside = np.ones(gray.shape, bool)
    if content is not None:
        eroded = cv2.erode(content.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # not the outline
        inside = eroded if eroded.sum() >= 16 else inside
    b = np.minimum((ang[inside] % np.pi) / np.pi * bins, bins - 1).astype(int)
    hist = np.bincount(b, weights=mag[inside], minlength=bins)
    return np.sqrt(hist / max(float(hist.sum()), 1e-9))


def tone_hist(image: np.ndarray, content: np.ndarray | None) -> np.ndarray:
    """sqrt of a hue (12) x saturation (4) x relative value (3) histogram of the content.

    Value is divided by the content's own bright level (95th percentile) first, so a brightness
    change does not move pixels between bins while a two-tone texture (dark stripes, dots) still
    separates from a solid object of the same hue.
    """
    hsv = cv2.cvtColor(_to_rgb(image), cv2.COLOR_RGB2HSV)
    inside = np.ones(hsv.shape[:2], bool) if content is None else content
    if inside.sum() < 4:
        inside = np.ones(hsv.shape[:2], bool)
    h, s, v = (hsv[..., c][inside].astype(np.float32) for c in range(3))
    rel = v / max(float(np.percentile(v, 95)), 1.0)
    index = (np.minimum(h * 12 / 180, 11).astype(int) * 4 + np.minimum(s * 4 / 256, 3).astype(int)) * 3 + np.digitize(
        rel, [0.7, 0.85]
    )
    hist = np.bincount(index, minlength=144).astype(np.float32)
    return np.sqrt(hist / max(float(hist.sum()), 1.0))


def _at_most(image: np.ndarray, mask: np.ndarray | None, side: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Downscale so the longer side is at most `side` (area averaging), mask alongside."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale >= 1.0:
        return image, mask
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if mask is not None:
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return small, mask


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32).ravel()
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


@dataclass
class PerceptualHashEmbedder:
    """Weight-free image embedding for near-duplicate search, computed on the trimmed content.

    Five L2-normalised parts, concatenated with weights, so the cosine of two embeddings is the
    weighted mean (weights squared) of five similarities: a 64-bit DCT perceptual hash (±1 bits:
    1 - 2·hamming/64), an 8x8 Lab layout thumbnail, a hue x saturation x relative-value histogram
    of the content, a coarse gradient-orientation grid and a texture-orientation histogram. The
    content is scaled to <= `max_side` px first, so the threshold does not depend on image size.
    On the benchmark (5 seeds at 128x224, one at 256x448), injected copies (JPEG q70, 1-3 px
    shift, ±8-12% brightness, 90-95% rescale) score >= 0.93 with their original in 98-100% of
    cases and distinct references stay below 0.93 except for the closest kind (same shape and
    colour, different texture). The pHash alone, untrimmed, put some shifted copies of small
    object references at 0.34.
    """

    name: str = "phash"
    hash_weight: float = 0.5
    layout_weight: float = 1.0
    colour_weight: float = 0.5
    gradient_weight: float = 1.0
    texture_weight: float = 1.5
    max_side: int = 64  # content is downscaled to this first, so similarities do not depend on image size

    @property
    def dim(self) -> int:
        return 64 + 192 + 144 + 128 + 12

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), np.float32)
        for i, image in enumerate(images):
            crop, content = _at_most(*trim_canvas(image), self.max_side)
            out[i] = np.concatenate(
                [
                    self.hash_weight * _unit(phash_bits(crop).astype(np.float32) * 2.0 - 1.0),
                    self.layout_weight * _unit(layout_thumbnail(crop)),
                    self.colour_weight * _unit(tone_hist(crop, content)),
                    self.gradient_weight * _unit(gradient_descriptor(crop)),
                    self.texture_weight * _unit(orientation_hist(crop, content)),
                ]
            )
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


#: Similarities computed at once: up to 2,048 samples (2,048^2) the matrix is one product, as it
#: always was (the same bits); above, blocks of rows of this many elements (32 MB in float64), so
#: memory stays flat in N instead of N x N (10,000 samples: 800 MB).
SIMILARITY_ELEMENTS = 2048 * 2048
NORM_ROWS = 1024  # rows normalized at once by find_near_duplicates


def similarity_rows(emb: np.ndarray, elements: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block of rows of `emb @ emb.T`) in row order, never more than `elements` (default
    `SIMILARITY_ELEMENTS`) at once.

    A batch whose whole matrix fits gets the single product the quadratic version computed, so its
    similarities (and the tables holding them) keep their exact bits; a larger one is cut in fixed
    row blocks, the same for the same input, so reruns still give the same bytes.
    """
    n, elements = len(emb), elements or SIMILARITY_ELEMENTS
    if n * n <= elements:
        yield 0, emb @ emb.T
        return
    step = max(1, elements // n)
    # every block is written into one buffer: two blocks alive at once (the caller's and the next)
    # doubled the peak. So a caller is done with a block when it asks for the next.
    buffer = np.empty((step, n), np.result_type(emb, emb))
    for start in range(0, n, step):
        rows = emb[start : start + step]
        yield start, np.matmul(rows, emb.T, out=buffer[: len(rows)])


def find_near_duplicates(embeddings: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """(later index, kept earlier index, cosine similarity) for every sample whose best match
    among the kept earlier samples reaches `threshold`. Deterministic: input order decides which
    copy is kept; ties go to the earliest kept sample. Memory: a block of rows of the similarity
    matrix at a time (`similarity_rows`), not N x N."""
    emb = np.array(embeddings, np.float64)  # our own copy, normalized in place, a block of rows at a time:
    if emb.ndim != 2 or len(emb) == 0:  # one float64 matrix alive, not three (same bits per row)
        return []
    for start in range(0, len(emb), NORM_ROWS):
        rows = emb[start : start + NORM_ROWS]
        rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    kept: list[int] = []
    found: list[tuple[int, int, float]] = []
    for start, sims in similarity_rows(emb):
        for offset, sim_row in enumerate(sims):
            i = start + offset
            if kept:
                row = sim_row[kept]
                j = int(np.argmax(row))  # first maximum = earliest kept
                if row[j] >= threshold:
                    found.append((i, kept[j], float(row[j])))
                    continue
            kept.append(i)
    return found


def gradient_descriptor(image: np.ndarray, grid: int = 4, bins: int = 8, size: int = 32) -> np.ndarray:
    """Coarse HOG: unsigned gradient orientations in a grid x grid layout of the size x size gray image."""
    gray = cv2.resize(
        cv2.cvtColor(_to_rgb(image), cv2.COLOR_RGB2GRAY), (size, size), interpolation=cv2.INTER_AREA
    ).astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag, ang = cv2.cartToPolar(gx, gy)
    b = np.minimum((ang % np.pi) / np.pi * bins, bins - 1).astype(int)
    cell = size // grid
    out = np.zeros((grid, grid, bins), np.float32)
    for y in range(grid):
        for x in range(grid):
            sl = (slice(y * cell, (y + 1) * cell), slice(x * cell, (x + 1) * cell))
            out[y, x] = np.bincount(b[sl].ravel(), weights=mag[sl].ravel(), minlength=bins)
    flat = out.ravel()
    norm = np.linalg.norm(flat)
    return flat / norm if norm > 0 else flat


@dataclass
class EmbeddingJudge:
    """Default judge: does the reference look like the target's edited region?

    Score = clip(w·colour + (1-w)·layout, 0, 1), colour = Bhattacharyya coefficient of
    hue/saturation/value histograms (canvas white ignored), layout = cosine of coarse gradient
    descriptors. Background and style references are judged on colour only: their layout is
    a whole scene that the kept foreground or a filter legitimately changes.
    """

    name: str = "embedding"
    colour_weight: float = 0.6

    def score(self, reference: np.ndarray, target_region: np.ndarray, prompt: str, edit_type: str) -> float:
        ha = hue_saturation_hist(reference, 12, 3, value_bins=3)
        hb = hue_saturation_hist(target_region, 12, 3, value_bins=3)
        colour = float(np.sum(np.sqrt(ha * hb)))
        if edit_type in ("background_change", "global_style"):
            return float(np.clip(colour, 0.0, 1.0))
        layout = float(gradient_descriptor(reference) @ gradient_descriptor(target_region))
        return float(np.clip(self.colour_weight * colour + (1 - self.colour_weight) * layout, 0.0, 1.0))


def reference_size_ok(reference: np.ndarray | None, min_side: int = 16, max_aspect: float = 8.0) -> bool:
    """True for a usable reference: present, at least `min_side` px on each side, not a sliver."""
    if reference is None or reference.ndim < 2:
        return False
    h, w = reference.shape[:2]
    return min(h, w) >= min_side and max(h, w) <= max_aspect * min(h, w)
