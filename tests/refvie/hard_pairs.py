"""Small hard edit pairs built in numpy, with known masks: moving objects, a shared camera pan and a
target regenerated over the whole frame (gain/colour shift, sensor noise, lossy JPEG, a slight shift).

Why not `kiwi synth`: these cases exercise the grounding primitives directly and stay independent
of the generator, so a change to either is caught by the other's tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class HardPair:
    source: np.ndarray  # (T,H,W,3) uint8
    target: np.ndarray
    masks: np.ndarray  # (T,H,W) bool, on the target's grid
    prompt: str
    edit_type: str


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured scene: smooth colour fields at two scales plus a few flat-coloured boxes."""
    img = np.zeros((h, w, 3), np.float32)
    for scale, amp in ((8, 70.0), (32, 25.0)):
        small = rng.uniform(-1, 1, (max(2, h // scale), max(2, w // scale), 3)).astype(np.float32)
        img += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img += rng.uniform(70, 170, 3).astype(np.float32)
    for _ in range(6):
        y, x = int(rng.integers(0, h - 20)), int(rng.integers(0, w - 20))
        img[y : y + int(rng.integers(8, 20)), x : x + int(rng.integers(8, 30))] = rng.uniform(30, 220, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def regenerate(
    clip: np.ndarray,
    rng: np.random.Generator,
    gain=(1.08, 0.94, 1.04),
    offset=(6.0, -5.0, 3.0),
    noise: float = 3.0,
    quality: int = 60,
    shift: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """What a generative editor does to every pixel: gain/offset per channel, noise, a lossy re-encode,
    optionally a small global shift (dy, dx) of the content."""
    out = clip.astype(np.float32) * np.asarray(gain, np.float32) + np.asarray(offset, np.float32)
    out += rng.normal(0, noise, out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if shift != (0, 0):
        m = np.float32([[1, 0, shift[1]], [0, 1, shift[0]]])
        out = np.stack([cv2.warpAffine(f, m, f.shape[1::-1], borderMode=cv2.BORDER_REPLICATE) for f in out])
    return np.stack([_jpeg(f, quality) for f in out])


def hard_pair(
    kind: str,
    seed: int = 0,
    frames: int = 9,
    h: int = 96,
    w: int = 160,
    pan: int = 3,
    shift: tuple[int, int] = (0, 0),
    photometric: bool = True,
    size: float = 1.0,
    regen: dict | None = None,
) -> HardPair:
    """One pair of `kind` ("add", "remove", "recolor", "none") with an object moving left to right
    (and a little down) across the clip while the camera pans `pan` px per frame; `size` scales the
    object, `regen` overrides `regenerate`'s settings."""
    rng = np.random.default_rng(seed)
    scene = _background(rng, h + 8, w + pan * frames + 8)
    colour = [230, int(rng.integers(90, 150)), 30]  # saturated, then its channels shuffled
    colour = [colour[i] for i in rng.permutation(3)]
    src, tgt, masks = [], [], []
    ry, rx = max(2, int(size * h / 7)), max(2, int(size * w / 10))
    for i in range(frames):
        x0 = pan * i + 4
        view = scene[4 : 4 + h, x0 : x0 + w].copy()
        cx = int(rx + 6 + (w - 2 * rx - 12) * i / max(1, frames - 1))
        cy = int(h // 3 + (h // 3) * i / max(1, frames - 1))
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (cx, cy), (rx, ry), 15.0 * i, 0, 360, 1, -1)
        with_obj = view.copy()
        with_obj[m > 0] = colour
        if kind == "add":
            s, t = view, with_obj
        elif kind == "remove":
            s, t = with_obj, view
        elif kind == "recolor":
            s = with_obj
            t = with_obj.copy()
            t[m > 0] = colour[1:] + colour[:1]  # channels rotated: a clear hue change
        else:
            s, t = view, view
        src.append(_jpeg(s, 95))
        tgt.append(t)
        masks.append(m > 0 if kind != "none" else np.zeros((h, w), bool))
    source, target = np.stack(src), np.stack(tgt)
    target = (
        regenerate(target, rng, shift=shift, **(regen or {}))
        if photometric
        else np.stack([_jpeg(f, 95) for f in target])
    )
    prompts = {
        "add": ("Add a ball rolling from left to right.", "local_add"),
        "remove": ("Remove the ball from the video.", "local_remove"),
        "recolor": ("Change the color of the ball to blue.", "recolor"),
        "none": ("Add a ball rolling from left to right.", "none"),
    }
    prompt, edit_type = prompts[kind]
    gt = np.stack(masks)
    if shift != (0, 0):  # masks live on the target's grid: they move with its content
        gt = np.roll(gt, shift, axis=(1, 2))
    return HardPair(source, target, gt, prompt, edit_type)
