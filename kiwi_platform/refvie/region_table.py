"""The `edit_regions` table: per pair, where the edit happened (masks on disk, box, edit type).

Also the way back: `region_from_row` rebuilds an EditRegion from a table row, for the stages
that read regions (references, QC) and for export.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from kiwi_platform.lib.files import remove_stale, sha256_file
from kiwi_platform.lib.quarantine import QuarantineRecord
from kiwi_platform.media.clips import read_clip
from kiwi_platform.refvie.mask_store import load_masks, save_masks
from kiwi_platform.refvie.pipeline import analyse_pair
from kiwi_platform.refvie.types import EditRegion, Grounder, SampleRejected, Segmenter

REGION_COLUMNS = ["edit_type", "type_confidence", "box", "mask_area", "region_scores"]

Progress = Callable[[int, int], None]


def rejection_record(rec: dict, rej: SampleRejected, stage: str) -> QuarantineRecord:
    """The quarantine record of a pair a RefVIE stage rejected (the pair's target clip as the path)."""
    return QuarantineRecord(
        int(rec["row"]), rej.reason, rej.message, rec.get("tgt_clip", ""), stage, rej.score, rec["pair_id"]
    )


def ground_batch(
    clips: pd.DataFrame,
    root: Path,
    folder: Path,
    *,
    grounder: Grounder,
    segmenter: Segmenter,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, list[QuarantineRecord]]:
    """Find the edited region of every normalized pair; masks go to `folder/masks/<pair_id>.npz`."""
    rows, rejected, kept = [], [], set()
    for i, rec in enumerate(clips.to_dict("records"), start=1):
        try:
            source, target = read_clip(root / rec["src_clip"]), read_clip(root / rec["tgt_clip"])
            region = analyse_pair(source, target, rec["prompt"], grounder=grounder, segmenter=segmenter)
            mask_path = save_masks(folder / "masks" / f"{rec['pair_id']}.npz", region.masks)
            kept.add(mask_path)
            rel = os.path.relpath(mask_path, root)
            rows.append({**rec, **region_columns(region), "mask_file": rel, "mask_sha256": sha256_file(mask_path)})
        except SampleRejected as rej:
            rejected.append(rejection_record(rec, rej, "edit_regions"))
        if progress:
            progress(i, len(clips))
    remove_stale(folder / "masks", kept)
    table = pd.DataFrame(rows, columns=list(clips.columns) + REGION_COLUMNS + ["mask_file", "mask_sha256"])
    return table, rejected


def region_columns(region: EditRegion) -> dict:
    return {
        "edit_type": region.edit_type,
        "type_confidence": float(region.type_confidence),
        "box": json.dumps([int(v) for v in region.box]),
        "mask_area": float(region.masks.mean()),
        "region_scores": json.dumps({k: float(v) for k, v in region.scores.items()}, sort_keys=True),
    }


def region_from_row(rec: dict, root: Path) -> EditRegion:
    """Rebuild an EditRegion from an `edit_regions` table row (masks from disk under `root`)."""
    return EditRegion(
        masks=load_masks(root / rec["mask_file"]),
        box=tuple(json.loads(rec["box"])),
        frame_boxes=[],
        edit_type=rec["edit_type"],
        type_confidence=float(rec["type_confidence"]),
        scores=json.loads(rec["region_scores"]),
    )
