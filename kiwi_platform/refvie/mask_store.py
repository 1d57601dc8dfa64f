"""Per-pair edit masks on disk: (T, H, W) bool packed to bits in a compressed .npz, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kiwi_platform.lib.files import atomic_path


def save_masks(path: Path, masks: np.ndarray) -> Path:
    if masks.dtype != bool or masks.ndim != 3:
        raise ValueError(f"masks must be (T,H,W) bool, got {masks.dtype} {masks.shape}")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, bits=np.packbits(masks, axis=-1), shape=np.array(masks.shape, dtype=np.int64))
    return path


def load_masks(path: Path) -> np.ndarray:
    with np.load(path) as data:
        t, h, w = (int(v) for v in data["shape"])
        return np.unpackbits(data["bits"], axis=-1, count=w).astype(bool).reshape(t, h, w)
