"""The RefVIE asset pages show pictures: edit masks per edit type and the references per edit type.

A person checks a batch at a glance in the Dagster UI; these previews are built from the asset's
own table and files, one row per edit type, and are the same bytes for the same inputs.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kiwi_platform.lib.preview import image_markdown
from kiwi_platform.media.clips import write_clip
from kiwi_platform.refvie.mask_store import save_masks
from kiwi_platform.refvie.previews import reference_preview, region_preview

from .conftest import Pair


def _tables(pairs: list[Pair], root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An edit_regions-like and a reference_images-like table over the synthetic pairs (ground-truth masks)."""
    rows = []
    for p in pairs:
        pid = p.record["pair"]
        write_clip(root / f"{pid}.kclip", p.target, fps=16)
        save_masks(root / f"{pid}.npz", p.gt_masks)
        Image.fromarray(p.gt_reference).save(root / f"{pid}.png")
        has_ref = p.edit_type != "global_style"
        rows.append(
            {
                "pair_id": pid,
                "edit_type": p.edit_type,
                "tgt_clip": f"{pid}.kclip",
                "mask_file": f"{pid}.npz",
                "reference_file": f"{pid}.png" if has_ref else "",
                "reference_origin": "synthesized" if has_ref else "none",
            }
        )
    table = pd.DataFrame(rows)
    return table, table


def test_region_preview_has_a_row_per_edit_type_with_the_mask_tinted(pairs: list[Pair], tmp_path: Path) -> None:
    """One row per edit type present; the masked pixels are tinted red; the same input gives the same image."""
    regions, _ = _tables(pairs, tmp_path)
    img = region_preview(regions, tmp_path)
    n_types = regions["edit_type"].nunique()
    assert img is not None and img.height >= n_types * 112
    again = region_preview(regions, tmp_path)
    assert np.array_equal(np.asarray(img), np.asarray(again))
    pixels = np.asarray(img).reshape(-1, 3).astype(int)
    assert ((pixels[:, 0] > 180) & (pixels[:, 1] < 120) & (pixels[:, 2] < 120)).sum() > 100  # the red tint
    md = image_markdown(img, "edit masks")
    assert md.startswith("![edit masks](data:image/jpeg;base64,")


def test_reference_preview_shows_only_rows_with_a_reference(pairs: list[Pair], tmp_path: Path) -> None:
    """Edit types without a reference (global style) get no row; an all-empty table gives no preview."""
    _, refs = _tables(pairs, tmp_path)
    img = reference_preview(refs, tmp_path)
    with_ref = refs[refs["reference_file"] != ""]["edit_type"].nunique()
    assert img is not None and img.height == with_ref * 112 + (with_ref - 1) * 4
    assert reference_preview(refs.assign(reference_file=""), tmp_path) is None
    assert region_preview(refs.iloc[:0], tmp_path) is None
    Image.open(io.BytesIO(_jpeg(img))).verify()


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()
