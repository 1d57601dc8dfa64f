"""Difficulty factors for `kiwi synth`: what real edited videos do that the easy set does not.

Why a module of its own: the easy set (no factor) must stay byte-identical, so every factor is
an opt-in step drawn from its own random stream (`[seed, 3, pair]`), never from the stream that
decides the easy pair. The ground truth stays exact under every factor:

- motion: the edited object grows or shrinks along its path and passes behind a static pole
  (in source and target); the mask is the object's visible pixels, frame by frame;
- camera: one pan/zoom per pair applied to source, target and masks alike with nearest-pixel
  sampling, so every output pixel copies one input pixel and its mask label;
- regenerate: the target is re-rendered over the whole frame (per-channel gain and offset,
  sensor noise, then a lossy re-encode); the mask stays the semantic edit;
- distractors: 1-3 unedited objects on their own paths, drawn over source and target alike
  (where one passes in front of the edit, those pixels are not edited);
- resize_replace: a replace's new object is 0.6-0.75x or 1.3-1.5x the old one's size;
- photometric_only: bad input, a target that differs from the source only by regeneration
  (no semantic edit, empty masks); the pipeline must answer `qc_no_edit`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.synth.objects import make_sprite, motion_path, sprite_side

#: x264 quality of a regenerated target: visibly lossy, like a generative editor's output.
REGEN_CRF = 32
#: JPEG quality a regenerated 1-frame target goes through.
REGEN_JPEG_QUALITY = 75
PRESETS = ("easy", "hard")


@dataclass(frozen=True)
class Difficulty:
    """Which factors are on. The `hard` preset turns on all but `photometric_only` (bad input)."""

    motion: bool = False
    camera: bool = False
    regenerate: bool = False
    distractors: bool = False
    resize_replace: bool = False
    photometric_only: bool = False

    @classmethod
    def preset(cls, name: str, **extra: bool) -> Difficulty:
        """`easy` (no factor) or `hard` (every semantic factor), plus factors switched on by name."""
        if name not in PRESETS:
            raise KiwiUserError(f"--difficulty must be one of {', '.join(PRESETS)}, got {name!r}", code="bad_argument")
        base = {f.name: name == "hard" and f.name != "photometric_only" for f in fields(cls)}
        return cls(**{k: base[k] or bool(extra.get(k, False)) for k in base})

    @property
    def factors(self) -> list[str]:
        """Names of the factors that are on, in a fixed order (recorded in the ground truth)."""
        return [f.name for f in fields(self) if getattr(self, f.name)]

    @property
    def any(self) -> bool:
        return bool(self.factors)


def scale_schedule(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Per-frame object scale: from one of 0.6-1.4 to another at least 0.3 apart (grow or shrink)."""
    if frames == 1:
        return np.array([rng.uniform(0.6, 1.4)])
    a = rng.uniform(0.6, 1.0)
    b = rng.uniform(a + 0.3, 1.4)
    s = np.linspace(a, b, frames)
    return s if rng.random() < 0.5 else s[::-1].copy()


def occlude_with_pole(
    rng: np.random.Generator, src: np.ndarray, tgt: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A static striped pole in front of everything, through the edit's middle-frame centre.

    Vertical when the edit moves more sideways than up/down. Its width is about a third of the
    edit's, so the object is only partly hidden. Drawn identically in source and target, so the
    pole's pixels leave the mask.
    """
    t, h, w = mask.shape
    mid = mask[t // 2] if mask[t // 2].any() else mask.any(axis=0)
    if not mid.any():
        return src, tgt, mask
    ys, xs = np.nonzero(mid)
    centres = [np.argwhere(m).mean(axis=0) for m in mask if m.any()]
    spread = np.ptp(np.array(centres), axis=0) if len(centres) > 1 else np.zeros(2)
    vertical = spread[1] >= spread[0]
    extent = (xs.max() - xs.min() + 1) if vertical else (ys.max() - ys.min() + 1)
    thick = max(2, int(round(extent * rng.uniform(0.25, 0.4))))
    centre = int(round(xs.mean() if vertical else ys.mean()))
    pole = np.zeros((h, w), bool)
    lo = int(np.clip(centre - thick // 2, 0, (w if vertical else h) - thick))
    if vertical:
        pole[:, lo : lo + thick] = True
    else:
        pole[lo : lo + thick, :] = True
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = ((yy if vertical else xx) // 6) % 2 == 0
    colour = np.where(stripes[..., None], [96, 72, 48], [150, 120, 84]).astype(np.uint8)
    src, tgt = src.copy(), tgt.copy()
    src[:, pole], tgt[:, pole] = colour[pole], colour[pole]
    return src, tgt, mask & ~pole[None]


def add_distractors(
    rng: np.random.Generator, src: np.ndarray, tgt: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """1-3 unedited objects on their own paths, drawn over source and target alike; their names."""
    from kiwi_platform.synth.objects import paste  # local: paste is the easy builders' compositor

    t, h, w = mask.shape
    names, cover = [], np.zeros_like(mask)
    for _ in range(int(rng.integers(1, 4))):
        side = sprite_side(rng, h, w, 0.12, 0.22)
        sprite = make_sprite(rng, side, side)
        path, _ = motion_path(rng, t, h, w, sprite.size)
        src, drawn, _ = paste(src, sprite, path)
        tgt, _, _ = paste(tgt, sprite, path)
        cover |= drawn
        names.append(sprite.name)
    return src, tgt, mask & ~cover, names


def camera_move(rng: np.random.Generator, frames: int, height: int, width: int) -> np.ndarray:
    """Per-frame 2x3 affine maps (zoom 1.0 -> 1.08-1.2 or back, pan within the zoom margin)."""
    z = rng.uniform(1.08, 1.2)
    zoom = np.linspace(1.0, z, frames) if rng.random() < 0.5 else np.linspace(z, 1.0, frames)
    end = rng.uniform(-0.9, 0.9, size=(2, 2))  # start/end pan as a share of the zoom margin (x, y)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    out = np.zeros((frames, 2, 3), np.float64)
    for i, s in enumerate(zoom):
        k = i / max(frames - 1, 1)
        px, py = (1 - k) * end[0] + k * end[1]
        tx, ty = px * (s - 1) * cx, py * (s - 1) * cy
        out[i] = [[s, 0, (1 - s) * cx + tx], [0, s, (1 - s) * cy + ty]]
    return out


def apply_camera(
    moves: np.ndarray, src: np.ndarray, tgt: np.ndarray, mask: np.ndarray, boxes: list[list[int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int]]]:
    """Warp source, target and masks by the same per-frame maps (nearest pixel: exact labels); boxes too."""
    t, h, w = mask.shape
    warp = lambda img, m: cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)  # noqa: E731
    src2 = np.stack([warp(src[i], moves[i]) for i in range(t)])
    tgt2 = np.stack([warp(tgt[i], moves[i]) for i in range(t)])
    mask2 = np.stack([warp(mask[i].astype(np.uint8), moves[i]) > 0 for i in range(t)])
    out_boxes = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        m = moves[min(i, t - 1)]
        nx0, nx1 = (m[0, 0] * np.array([x0, x1]) + m[0, 2]).round().astype(int)
        ny0, ny1 = (m[1, 1] * np.array([y0, y1]) + m[1, 2]).round().astype(int)
        out_boxes.append(
            [int(np.clip(nx0, 0, w)), int(np.clip(ny0, 0, h)), int(np.clip(nx1, 0, w)), int(np.clip(ny1, 0, h))]
        )
    return src2, tgt2, mask2, out_boxes


def regenerate(rng: np.random.Generator, frames: np.ndarray) -> np.ndarray:
    """Re-render frames the way a generative editor does: gain/colour shift and noise over the
    whole frame (the lossy re-encode follows at write time); 1-frame pairs also go through JPEG."""
    gain = rng.uniform(0.92, 1.08, size=3)
    offset = rng.uniform(-6, 6, size=3)
    sigma = rng.uniform(1.5, 3.5)
    out = frames.astype(np.float32) * gain + offset
    out += rng.normal(0.0, sigma, size=out.shape).astype(np.float32)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    if len(out) == 1:
        bgr = cv2.cvtColor(out[0], cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, REGEN_JPEG_QUALITY])
        out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)[None]
    return out
