"""The `reference_images` table: the reference each pair's edit implies, or why it has none.

A reference brought by the manifest is kept as given; otherwise local and background edits get a
synthesized one (object on white, or the inpainted clean background). Global style edits have no
reference in RefVIE. A rejected reference leaves the pair usable as an instruction-only sample.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kiwi_platform.lib.files import atomic_path, remove_stale, sha256_file
from kiwi_platform.lib.quarantine import QuarantineRecord
from kiwi_platform.media.clips import read_clip
from kiwi_platform.refvie.pipeline import synthesize_reference
from kiwi_platform.refvie.region_table import Progress, region_from_row, rejection_record
from kiwi_platform.refvie.types import Inpainter, SampleRejected

REFERENCE_TYPES = ("local_add", "local_replace", "local_remove", "recolor", "background_change")
REFERENCE_COLUMNS = ["reference_file", "reference_sha256", "reference_origin"]


def synthesize_batch(
    regions: pd.DataFrame, root: Path, folder: Path, *, inpainter: Inpainter, progress: Progress | None = None
) -> tuple[pd.DataFrame, list[QuarantineRecord], dict[str, int]]:
    """A reference per `edit_regions` row; images go to `folder/images/<pair_id>.png`.

    Returns the table, the rejected references and how many rows came from each origin.
    """
    rows, rejected, kept, origins = [], [], set(), {}
    for i, rec in enumerate(regions.to_dict("records"), start=1):
        out = {**rec, "reference_file": "", "reference_sha256": "", "reference_origin": "none"}
        try:
            if rec["ref_file"]:  # the manifest brought its own reference: keep it as given
                out.update(
                    reference_file=rec["ref_file"], reference_sha256=rec["ref_sha256"], reference_origin="manifest"
                )
            elif rec["edit_type"] in REFERENCE_TYPES:
                path = _synthesize(rec, root, folder / "images", inpainter)
                kept.add(path)
                rel = os.path.relpath(path, root)
                out.update(reference_file=rel, reference_sha256=sha256_file(path), reference_origin="synthesized")
        except SampleRejected as rej:
            rejected.append(rejection_record(rec, rej, "reference_images"))
            out["reference_origin"] = f"rejected:{rej.reason}"
        origins[out["reference_origin"]] = origins.get(out["reference_origin"], 0) + 1
        rows.append(out)
        if progress:
            progress(i, len(regions))
    remove_stale(folder / "images", kept)
    return pd.DataFrame(rows, columns=list(regions.columns) + REFERENCE_COLUMNS), rejected, origins


def _synthesize(rec: dict, root: Path, image_dir: Path, inpainter: Inpainter) -> Path:
    region = region_from_row(rec, root)
    source = read_clip(root / rec["src_clip"])
    target = read_clip(root / rec["tgt_clip"])
    image = synthesize_reference(target, source, region, inpainter=inpainter)
    path = image_dir / f"{rec['pair_id']}.png"
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
    return path
