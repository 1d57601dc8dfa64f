"""Procedural textured objects (sprites) and smooth motion paths to paste them along.

Sprites have a hard (binary) alpha so the ground-truth mask is exactly the set of pixels an
edit changes; their colors are built in HSV so a recolor is a pure hue shift.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from kiwi_platform.synth.palette import COLORS, hue_distance

SHAPES = ("ball", "square", "triangle", "star", "diamond", "hexagon")
TEXTURES = ("solid", "striped", "checkered", "polka-dot", "ringed")


@dataclass(frozen=True)
class Sprite:
    """An object: RGB pixels, a boolean alpha, and the words a prompt uses for it."""

    rgb: np.ndarray
    alpha: np.ndarray
    color: str
    texture: str
    shape: str
    pattern: np.ndarray  # bool (h,w): which pixels use the dark tone (kept for recolors)
    saturation: float

    @property
    def name(self) -> str:
        """E.g. "red striped star" ("solid" is left out)."""
        texture = "" if self.texture == "solid" else f"{self.texture} "
        return f"{self.color} {texture}{self.shape}"

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the sprite box."""
        return self.alpha.shape  # type: ignore[return-value]


def _shape_mask(shape: str, h: int, w: int) -> np.ndarray:
    canvas = np.zeros((h, w), np.uint8)
    cx, cy, rx, ry = (w - 1) / 2, (h - 1) / 2, (w - 1) / 2, (h - 1) / 2
    if shape == "ball":
        cv2.ellipse(canvas, (round(cx), round(cy)), (round(rx), round(ry)), 0, 0, 360, 1, -1, cv2.LINE_8)
    elif shape == "square":
        m = max(1, round(0.08 * min(h, w)))
        canvas[m : h - m, m : w - m] = 1
    else:
        if shape == "triangle":
            pts = [(cx, 0), (w - 1, h - 1), (0, h - 1)]
        elif shape == "diamond":
            pts = [(cx, 0), (w - 1, cy), (cx, h - 1), (0, cy)]
        elif shape == "hexagon":
            pts = [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 7)[:-1]]
        elif shape == "star":
            angles = np.linspace(-np.pi / 2, 1.5 * np.pi, 11)[:-1]
            radii = np.tile([1.0, 0.45], 5)
            pts = [(cx + r * rx * np.cos(a), cy + r * ry * np.sin(a)) for a, r in zip(angles, radii)]
        else:
            raise ValueError(f"unknown shape {shape!r}")
        cv2.fillPoly(canvas, [np.round(np.array(pts)).astype(np.int32)], 1, cv2.LINE_8)
    return canvas.astype(bool)


def _pattern(texture: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(4.0, min(h, w) / rng.uniform(3, 5))
    if texture == "solid":
        return np.zeros((h, w), bool)
    if texture == "striped":
        a = rng.uniform(0, np.pi)
        return np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period) > 0
    if texture == "checkered":
        return ((xx // (period / 2)).astype(int) + (yy // (period / 2)).astype(int)) % 2 == 1
    if texture == "polka-dot":
        return (np.hypot(xx % period - period / 2, yy % period - period / 2)) < period * 0.28
    if texture == "ringed":
        return np.sin(2 * np.pi * np.hypot(xx - w / 2, yy - h / 2) / period) > 0
    raise ValueError(f"unknown texture {texture!r}")


def _render(hue: int, saturation: float, pattern: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Two tones of one hue (bright and dark), shaded towards the edges, black outside alpha."""
    h, w = alpha.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = 1.0 - 0.25 * np.clip(np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)), 0, 1)
    value = np.where(pattern, 0.55, 0.95) * shade
    hsv = (
        np.stack(
            [np.full((h, w), hue, np.float32), np.full((h, w), saturation * 255, np.float32), value * 255], axis=-1
        )
        .round()
        .astype(np.uint8)
    )
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    rgb[~alpha] = 0
    return rgb


def make_sprite(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    color: str | None = None,
    shape: str | None = None,
    texture: str | None = None,
) -> Sprite:
    """A random textured object of the given box size; any attribute can be fixed."""
    color = color or str(rng.choice(list(COLORS)))
    shape = shape or str(rng.choice(SHAPES))
    texture = texture or str(rng.choice(TEXTURES))
    saturation = float(rng.uniform(0.75, 0.95))
    alpha = _shape_mask(shape, height, width)
    pattern = _pattern(texture, height, width, rng)
    return Sprite(_render(COLORS[color], saturation, pattern, alpha), alpha, color, texture, shape, pattern, saturation)


def recolor(sprite: Sprite, color: str) -> Sprite:
    """The same object with its hue shifted to `color` (texture, shading and alpha unchanged)."""
    return replace(sprite, color=color, rgb=_render(COLORS[color], sprite.saturation, sprite.pattern, sprite.alpha))


def other_color(rng: np.random.Generator, color: str, min_distance: int = 40) -> str:
    """A named color whose hue is far from `color`, so a recolor changes every object pixel."""
    options = [c for c, h in COLORS.items() if hue_distance(h, COLORS[color]) >= min_distance]
    return str(rng.choice(options))


def sprite_side(rng: np.random.Generator, height: int, width: int, lo: float, hi: float) -> int:
    """A sprite box side as a fraction of the shorter frame side (at least 8 px)."""
    return max(8, int(round(min(height, width) * rng.uniform(lo, hi))))


def motion_path(
    rng: np.random.Generator, frames: int, height: int, width: int, box: tuple[int, int]
) -> tuple[np.ndarray, str]:
    """Top-left positions (T,2) as (y,x) along a quadratic Bezier that keeps the box inside the frame.

    Returns the path and a phrase for the prompt ("from left to right", "in the upper left").
    """
    bh, bw = box
    span = np.array([height - bh, width - bw], np.float32)
    if frames == 1:
        p = rng.uniform(0.1, 0.9, size=2) * span
        vert = "upper" if p[0] + bh / 2 < height / 2 else "lower"
        horiz = "left" if p[1] + bw / 2 < width / 2 else "right"
        return np.round(p)[None].astype(int), f"in the {vert} {horiz} of the image"
    horizontal = rng.random() < 0.7
    a, b = rng.uniform(0.0, 0.2), rng.uniform(0.8, 1.0)
    if rng.random() < 0.5:
        a, b = b, a
    other = rng.uniform(0.15, 0.85, size=3)
    if horizontal:
        p0, p2 = np.array([other[0], a]), np.array([other[1], b])
    else:
        p0, p2 = np.array([a, other[0]]), np.array([b, other[1]])
    p1 = rng.uniform(0.1, 0.9, size=2)
    s = np.linspace(0, 1, frames)[:, None]
    curve = (1 - s) ** 2 * p0 + 2 * (1 - s) * s * p1 + s**2 * p2
    path = np.round(np.clip(curve, 0, 1) * span).astype(int)
    if horizontal:
        phrase = "from left to right" if p2[1] > p0[1] else "from right to left"
    else:
        phrase = "from top to bottom" if p2[0] > p0[0] else "from bottom to top"
    return path, phrase


def paste(frames: np.ndarray, sprite: Sprite, path: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Composite the sprite onto a copy of frames along path.

    Returns (frames, masks (T,H,W) bool, per-frame boxes [x0, y0, x1, y1], x1/y1 exclusive).
    """
    out = frames.copy()
    masks = np.zeros(frames.shape[:3], bool)
    boxes: list[list[int]] = []
    bh, bw = sprite.size
    ys, xs = np.nonzero(sprite.alpha)
    for t, (y, x) in enumerate(path):
        region = out[t, y : y + bh, x : x + bw]
        region[sprite.alpha] = sprite.rgb[sprite.alpha]
        masks[t, y : y + bh, x : x + bw] = sprite.alpha
        boxes.append([int(x + xs.min()), int(y + ys.min()), int(x + xs.max() + 1), int(y + ys.max() + 1)])
    return out, masks, boxes


def on_white(sprite: Sprite, margin: float = 0.25) -> np.ndarray:
    """The object on a clean white canvas with a margin: the reference image of a local edit."""
    bh, bw = sprite.size
    m = max(4, int(round(margin * max(bh, bw))))
    canvas = np.full((bh + 2 * m, bw + 2 * m, 3), 255, np.uint8)
    canvas[m : m + bh, m : m + bw][sprite.alpha] = sprite.rgb[sprite.alpha]
    return canvas
