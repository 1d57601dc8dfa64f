"""Edit classification: which edit type a pair shows, from the prompt's words and the mask's geometry.

Why a module of its own: naming the edit is a separate question from finding where it is. It
reads the masks of whichever segmenter ran (not only the `diff` one) and the pixels under them,
and its thresholds are tuned on their own (60 synth pairs at 128x224 after normalization, see
benchmarks/refvie_pipeline.py). `prompt_edit_type` reads the instruction (`instruction.py`),
`mask_geometry` measures the region, `geometry_edit_type` decides from geometry alone,
`decide_edit_type` combines the two witnesses into a `TypeDecision` (flagging a disagreement
with a lower confidence instead of silently trusting either) and `type_decision` runs it all.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kiwi_platform.refvie.difference import color_difference
from kiwi_platform.refvie.instruction import PROMPT_PATTERNS as INSTRUCTION_PATTERNS
from kiwi_platform.refvie.instruction import parse_instruction
from kiwi_platform.refvie.types import EDIT_TYPES, LOCAL_TYPES

#: The prompt's patterns live with the instruction parser (re-exported for old imports).
PROMPT_PATTERNS = INSTRUCTION_PATTERNS


def prompt_edit_type(prompt: str) -> str | None:
    """The edit type the instruction names, or None when no known phrasing matches."""
    return parse_instruction(prompt).edit_type


@dataclass(frozen=True)
class MaskGeometry:
    """What the mask and the pixels under it say about the edit, independent of the prompt."""

    area: float  # mean share of the frame inside the mask
    border: float  # share of the frame border inside the mask
    structure: float  # correlation of src/tgt gradient magnitude inside the mask (1 = same structure)
    value_change: float  # mean |ΔV| (HSV value) over mean max-channel change inside the mask: ~0 for a hue shift
    foreign_source: float  # how unlike its surroundings the region looks in the source (0..1, Hellinger)
    foreign_target: float  # ... and in the target
    kept_core: float  # share of the frame in the largest compact region that did not change at all
    colour_mapping: float  # R² of predicting target colours from source colours alone (1 = a pure filter)


def _hellinger(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(a * b)))))


def _lab_hist(lab: np.ndarray, sel: np.ndarray) -> np.ndarray:
    h = cv2.calcHist([lab], [0, 1, 2], sel.astype(np.uint8), [8, 8, 8], [0, 256, 0, 256, 0, 256]).ravel()
    return h / max(float(h.sum()), 1.0)


def foreignness(frame: np.ndarray, mask: np.ndarray) -> float:
    """Colour-histogram distance between a region's inside and a ring just outside it.

    An added object stands out from its surroundings in the target but not in the source (the
    source shows the background continuing); a removed one the other way round; a replaced
    one stands out in both.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    m8 = mask.astype(np.uint8)
    ring = (cv2.dilate(m8, kernel, iterations=4) > 0) & ~(cv2.dilate(m8, kernel, iterations=1) > 0)
    core = cv2.erode(m8, kernel) > 0
    if core.sum() < 4 or ring.sum() < 4:
        return 0.0
    lab = cv2.cvtColor(frame, cv2.COLOR_RGB2Lab)
    return _hellinger(_lab_hist(lab, core), _lab_hist(lab, ring))


def kept_core(diff: np.ndarray, rel: float = 0.2, floor: float = 3.0) -> float:
    """Median over frames of the largest compact region whose change is tiny next to the frame's
    typical change (below max(`floor`, `rel` x median)): the kept foreground of a background swap
    (measured 0.015-0.055 of the frame), absent under a style filter (<= 0.007)."""
    h, w = diff.shape[1:]
    k = max(3, int(round(min(h, w) / 26)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    shares = []
    for d in diff:
        quiet = cv2.morphologyEx((d < max(floor, rel * float(np.median(d)))).astype(np.uint8), cv2.MORPH_OPEN, kernel)
        n, _, stats, _ = cv2.connectedComponentsWithStats(quiet, connectivity=8)
        shares.append(stats[1:, 4].max() / d.size if n > 1 else 0.0)
    return float(np.median(shares))


def colour_mapping_r2(source: np.ndarray, target: np.ndarray, bins: int = 8) -> float:
    """How well one colour lookup (source colour bin -> mean target colour) explains the target.

    A style filter is close to a function of the source pixel (measured R² 0.53-0.99 on synth
    styles, most > 0.88); a new background is new content (mostly < 0.6, smooth procedural
    backgrounds up to 0.9, which the kept-core test then separates).
    """
    src = source.reshape(-1, 3).astype(np.int64) * bins // 256
    tgt = target.reshape(-1, 3).astype(np.float64)
    index = (src[:, 0] * bins + src[:, 1]) * bins + src[:, 2]
    count = np.maximum(np.bincount(index, minlength=bins**3), 1)
    residual = 0.0
    for c in range(3):
        mean = np.bincount(index, weights=tgt[:, c], minlength=bins**3) / count
        residual += float(((tgt[:, c] - mean[index]) ** 2).sum())
    total = float(((tgt - tgt.mean(axis=0)) ** 2).sum())
    return 1.0 - residual / total if total > 1e-6 else 1.0


def mask_geometry(
    masks: np.ndarray, source: np.ndarray, target: np.ndarray, diff: np.ndarray | None = None, max_frames: int = 4
) -> MaskGeometry:
    """Measure area, border contact, structure, colour-only change, foreignness and kept core.

    Only the `max_frames` frames with the most mask are read: they carry the evidence. `diff`
    (ΔE' from `color_difference`) is computed for those frames when not given.
    """
    masks = masks.astype(bool)
    area = float(masks.mean())
    border = float(np.concatenate([masks[:, 0], masks[:, -1], masks[:, :, 0], masks[:, :, -1]], axis=1).mean())
    order = np.sort(np.argsort(-masks.reshape(len(masks), -1).sum(axis=1), kind="stable")[:max_frames])
    sub_diff = diff[order] if diff is not None else color_difference(source[order], target[order])[0]
    core_share = kept_core(sub_diff)
    mapping = colour_mapping_r2(source[order], target[order]) if area > 0.3 else 0.0
    grads_s, grads_t, dv, dc, f_s, f_t = [], [], [], [], [], []
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    for i in order:
        m = masks[i]
        if not m.any():
            continue
        s, t = source[i], target[i]
        gs, gt = _grad(s), _grad(t)
        core = cv2.erode(m.astype(np.uint8), kernel, iterations=2) > 0  # the rim mixes both sides
        core = core if core.sum() >= 16 else m
        grads_s.append(gs[core])
        grads_t.append(gt[core])
        vs = s.max(axis=-1).astype(np.float32) / 255.0
        vt = t.max(axis=-1).astype(np.float32) / 255.0
        dv.append(np.abs(vs - vt)[m])
        dc.append(np.abs(s.astype(np.float32) - t.astype(np.float32)).max(axis=-1)[m] / 255.0)
        f_s.append(foreignness(s, m))
        f_t.append(foreignness(t, m))
    if not grads_s:
        return MaskGeometry(area, border, 0.0, 1.0, 0.0, 0.0, core_share, mapping)
    a, b = np.concatenate(grads_s), np.concatenate(grads_t)
    structure = float(np.corrcoef(a, b)[0, 1]) if a.std() > 1e-6 and b.std() > 1e-6 else 0.0
    value_change = float(np.concatenate(dv).mean() / max(np.concatenate(dc).mean(), 1e-6))
    return MaskGeometry(
        area, border, structure, value_change, float(np.mean(f_s)), float(np.mean(f_t)), core_share, mapping
    )


def _grad(frame: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


#: Geometry thresholds, measured on 60 synth pairs (128x224) after normalization; see the benchmark.
FRAME_SCALE_AREA = 0.6  # a change above this share of the frame is a background or style edit
KEPT_CORE_MIN = 0.011  # a background swap keeps a compact unchanged foreground at least this big
KEPT_CORE_SURE = 0.03  # ... and one this big is a kept foreground whatever the colours do
FILTER_R2 = 0.93  # a colour mapping this good means a filter even if something stayed unchanged
FILTER_SURE = 0.95  # ... and this good, a filter even if a large flat area stayed unchanged
KEPT_CORE_LOOSE = 0.005  # a smaller kept core still means a swap when the colours are clearly new
NEW_CONTENT_R2 = 0.45
RECOLOR_VALUE_CHANGE = 0.15  # hue shifts keep HSV value: measured <= 0.10 for recolors, >= 0.20 otherwise
FOREIGN_GAP = 0.45  # |foreign_target - foreign_source| above this: something appeared or vanished
FOREIGN_BACKGROUND = 0.5  # ... provided the other side looks like background (below this)


def geometry_edit_type(g: MaskGeometry) -> tuple[str, float]:
    """Edit type from mask geometry alone, with a confidence in [0.5, 1].

    - most of the frame changed: a background swap if a compact foreground stayed untouched
      and the new colours are not a function of the old ones, else a global style;
    - a local region whose brightness (HSV value) was kept while its colour changed: a recolor;
    - a region that stands out from its surroundings only in the target: added; only in the
      source: removed; in both: replaced.
    """
    clip = lambda x: float(np.clip(x, 0.5, 1.0))  # noqa: E731
    if g.area > FRAME_SCALE_AREA or (g.area > 0.35 and g.border > 0.5):
        swap = g.colour_mapping < FILTER_SURE and (
            g.kept_core >= KEPT_CORE_SURE
            or (g.kept_core >= KEPT_CORE_MIN and g.colour_mapping < FILTER_R2)
            or (g.kept_core >= KEPT_CORE_LOOSE and g.colour_mapping < NEW_CONTENT_R2)
        )
        if swap:
            return "background_change", clip(0.5 + 20 * (g.kept_core - KEPT_CORE_MIN) + (FILTER_R2 - g.colour_mapping))
        return "global_style", clip(0.5 + 50 * (KEPT_CORE_MIN - g.kept_core) + (g.colour_mapping - FILTER_R2))
    if g.value_change < RECOLOR_VALUE_CHANGE:
        return "recolor", clip(0.5 + 5 * (RECOLOR_VALUE_CHANGE - g.value_change))
    gap = g.foreign_target - g.foreign_source
    if gap > FOREIGN_GAP and g.foreign_source < FOREIGN_BACKGROUND:
        return "local_add", clip(0.5 + 2 * (gap - FOREIGN_GAP))
    if -gap > FOREIGN_GAP and g.foreign_target < FOREIGN_BACKGROUND:
        return "local_remove", clip(0.5 + 2 * (-gap - FOREIGN_GAP))
    return "local_replace", clip(0.5 + 2 * (FOREIGN_GAP - abs(gap)))


#: Confidence ceilings when the instruction and the pixels disagree: within the local family
#: (add vs replace is partly a matter of wording) and across families (local vs whole frame).
DISAGREE_SAME_FAMILY = 0.75
DISAGREE_OTHER_FAMILY = 0.6


@dataclass(frozen=True)
class TypeDecision:
    """The typing step's verdict and both witnesses behind it."""

    edit_type: str
    confidence: float
    instruction_type: str | None  # what the prompt names (None: no known phrasing)
    pixel_type: str  # what mask geometry says on its own
    pixel_confidence: float

    @property
    def disagreement(self) -> bool:
        """True when the prompt names a type and the pixels show another one."""
        return self.instruction_type is not None and self.instruction_type != self.pixel_type

    def scores(self) -> dict[str, float]:
        """The decision as floats for a region's `scores` (types as indexes into EDIT_TYPES, -1 = none)."""
        return {
            "type_disagreement": float(self.disagreement),
            "instruction_type_code": float(EDIT_TYPES.index(self.instruction_type) if self.instruction_type else -1),
            "pixel_type_code": float(EDIT_TYPES.index(self.pixel_type)),
            "pixel_type_confidence": float(self.pixel_confidence),
        }

    @staticmethod
    def from_scores(scores: dict, edit_type: str, confidence: float) -> TypeDecision | None:
        """Rebuild from `scores()` output (None when the scores do not carry a decision)."""
        if "pixel_type_code" not in scores:
            return None
        code = int(scores.get("instruction_type_code", -1))
        return TypeDecision(
            edit_type,
            confidence,
            EDIT_TYPES[code] if code >= 0 else None,
            EDIT_TYPES[int(scores["pixel_type_code"])],
            float(scores.get("pixel_type_confidence", 0.0)),
        )


def decide_edit_type(instruction_type: str | None, pixel_type: str, pixel_confidence: float) -> TypeDecision:
    """Combine the two witnesses. The instruction is the stronger signal for intent, so its type
    is kept when it names one; agreement gives >= 0.9, a disagreement at most 0.75 (same family)
    or 0.6 (local vs whole frame); no known wording falls back to the pixels at 0.8 x their
    confidence."""
    if instruction_type is None:
        return TypeDecision(pixel_type, round(0.8 * pixel_confidence, 4), None, pixel_type, pixel_confidence)
    if instruction_type == pixel_type:
        conf = round(0.9 + 0.1 * pixel_confidence, 4)
        return TypeDecision(instruction_type, conf, instruction_type, pixel_type, pixel_confidence)
    same_family = (instruction_type in LOCAL_TYPES) == (pixel_type in LOCAL_TYPES)
    conf = DISAGREE_SAME_FAMILY if same_family else DISAGREE_OTHER_FAMILY
    return TypeDecision(instruction_type, conf, instruction_type, pixel_type, pixel_confidence)


def type_decision(
    prompt: str, masks: np.ndarray, source: np.ndarray, target: np.ndarray, diff: np.ndarray | None = None
) -> TypeDecision:
    """Parse the prompt, measure the mask's geometry and combine them (`decide_edit_type`)."""
    pixel_type, pixel_conf = geometry_edit_type(mask_geometry(masks, source, target, diff))
    return decide_edit_type(parse_instruction(prompt).edit_type, pixel_type, pixel_conf)
