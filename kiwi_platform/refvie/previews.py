"""Preview images of the RefVIE assets, for the Dagster UI: what a person checks at a glance.

`edit_regions`: per edit type, a few target frames with the found mask tinted red, so a wrong
region or a wrong edit type is visible without opening files. `reference_images`: per edit type,
the references the stage kept, so a blank or mis-cropped reference stands out. Both are built
from the asset's own table and files (the same bytes for the same inputs) and are never needed
by a later stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kiwi_platform.lib import shards
from kiwi_platform.lib.contact_sheet import labelled_grid, mask_overlay
from kiwi_platform.media.clips import read_clip
from kiwi_platform.refvie.mask_store import load_masks
from kiwi_platform.refvie.types import EDIT_TYPES

PER_GROUP = 4


def _by_type(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Rows grouped by edit type in the canonical order, each sorted by pair id (deterministic)."""
    known = [t for t in EDIT_TYPES if t in set(table["edit_type"])]
    other = sorted(set(table["edit_type"]) - set(EDIT_TYPES))
    return [(t, table[table["edit_type"] == t].sort_values("pair_id", kind="stable")) for t in known + other]


def _image(path: Path) -> np.ndarray:
    """An image file or shard member as an RGB array."""
    with shards.open_member(path) as fh, Image.open(fh) as img:
        return np.asarray(img.convert("RGB"))


def region_preview(table: pd.DataFrame, root: Path, per_type: int = PER_GROUP) -> Image.Image | None:
    """One row per edit type: the middle target frame of up to `per_type` pairs, mask tinted red."""
    if not len(table):
        return None
    groups = []
    for edit_type, rows in _by_type(table):
        images = []
        for rec in rows.head(per_type).to_dict("records"):
            masks = load_masks(root / rec["mask_file"])
            t = len(masks) // 2
            frame = read_clip(root / rec["tgt_clip"], [t])[0]
            images.append(mask_overlay(frame, masks[t]))
        groups.append(([edit_type, f"{len(rows)} pair(s)", "red = edit mask"], images))
    return labelled_grid(groups)


def reference_preview(table: pd.DataFrame, root: Path, per_type: int = PER_GROUP) -> Image.Image | None:
    """One row per edit type with references: up to `per_type` of them (synthesized or from the manifest)."""
    with_ref = table[table["reference_file"].astype(bool)] if len(table) else table
    if not len(with_ref):
        return None
    groups = []
    for edit_type, rows in _by_type(with_ref):
        images = [_image(root / rec["reference_file"]) for rec in rows.head(per_type).to_dict("records")]
        origins = rows["reference_origin"].value_counts().sort_index()
        groups.append(([edit_type, *(f"{n} {origin}" for origin, n in origins.items())], images))
    return labelled_grid(groups)
