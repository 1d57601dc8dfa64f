"""Per-pair edit masks: (T, H, W) bool packed to bits in a compressed .npz, written atomically.

A batch keeps them as members of shard files (`kiwi_platform.lib.shards`, docs/shards.md);
`load_masks` reads a plain `.npz` file or a shard reference (`shard.zip#<pair_id>.npz`) alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kiwi_platform.lib import shards
from kiwi_platform.lib.files import atomic_path


def save_masks(path: Path, masks: np.ndarray) -> Path:
    if masks.dtype != bool or masks.ndim != 3:
        raise ValueError(f"masks must be (T,H,W) bool, got {masks.dtype} {masks.shape}")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, bits=np.packbits(masks, axis=-1), shape=np.array(masks.shape, dtype=np.int64))
    return path


def load_masks(path: Path | str) -> np.ndarray:
    with shards.open_member(path) as fh, np.load(fh) as data:
        t, h, w = (int(v) for v in data["shape"])
        return np.unpackbits(data["bits"], axis=-1, count=w).astype(bool).reshape(t, h, w)
