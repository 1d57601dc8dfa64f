"""Deterministic test pictures shared by the upstream-conformance tests and the fixture generator.

tests/fixtures/upstream/README.md generated the goldens from the same formulas (same seeds), so the
inputs here are bit-identical to the ones upstream's code saw.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"


def synth(w: int, h: int, seed: int, mode: str = "RGB") -> Image.Image:
    """Gradients plus uniform noise in [-40, 40]; RGBA adds a soft elliptical alpha."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) * 255 // max(w + h - 2, 1)], -1)
    rgb = np.clip(base + rng.integers(-40, 41, (h, w, 3)), 0, 255).astype(np.uint8)
    if mode == "RGBA":
        d = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        alpha = np.clip((1.2 - d) * 255, 0, 255).astype(np.uint8)
        return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    return Image.fromarray(rgb)


def solid(w: int, h: int, i: int) -> Image.Image:
    return Image.new("RGB", (w, h), (i, 255 - i, (7 * i) % 256))


def sha(x) -> str:
    """sha256 of an array's bytes (PIL images, numpy arrays, tensors; bf16 tensors by their raw bits)."""
    if isinstance(x, Image.Image):
        x = np.asarray(x)
    if isinstance(x, (list, tuple)):
        x = np.stack([np.asarray(f) for f in x])
    if isinstance(x, torch.Tensor):
        x = x.contiguous().view(torch.uint8) if x.dtype == torch.bfloat16 else x.contiguous()
        x = x.cpu().numpy()
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()
