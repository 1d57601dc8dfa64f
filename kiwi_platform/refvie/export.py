"""`kiwi export`: a batch's RefVIE outputs as plain files, one folder per manifest row.

    DIR/<row>/masks/<frame:04d>.png   binary 0/255 masks at the normalized target resolution,
                                      frame i = frame i of the normalized clip
    DIR/<row>/reference.png           the reference (synthesized, or the manifest's own)
    DIR/<row>/meta.json               edit type, box, scores, hashes, quarantine reasons

    DIR/kiwi-export.json              what this export wrote (batch, rows, every file): the mark that
                                      lets the next export replace DIR, and only those files

Every manifest row gets a folder, quarantined ones too (meta.json says why), so nothing is lost.
The whole export is written beside DIR and renamed into place when complete; what may be at DIR
already, and what happens to it, is `export_target`'s business (it never deletes the user's files).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingestion.manifest import read_manifest
from kiwi_platform.lib import quarantine, shards
from kiwi_platform.refvie.export_target import ExportTarget, Outcome
from kiwi_platform.refvie.mask_store import load_masks
from kiwi_platform.resources.store import MediaStore


@dataclass
class ExportSummary:
    rows: int
    with_masks: int
    with_reference: int
    quarantined: int
    out_dir: Path
    outcome: Outcome  # what happened to what was at out_dir before (replaced, moved aside)


def _optional_table(store: MediaStore, batch: str, asset: str) -> pd.DataFrame | None:
    path = store.asset_dir(batch, asset) / "table.parquet"
    return pd.read_parquet(path) if path.exists() else None


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def export_batch(
    store: MediaStore,
    batch: str,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    *,
    overwrite: bool = False,
    protected: Sequence[Path] = (),
) -> ExportSummary:
    """Export `batch` to `out_dir` (see the module doc). `overwrite`: move a folder that is not a previous
    export aside instead of refusing it; `protected`: folders the export must not be, contain or be inside
    (the store's root always is)."""
    target = ExportTarget(out_dir, overwrite=overwrite, protected=[store.root_path, *protected])
    raw_folder = store.asset_dir(batch, "raw_edit_pairs")
    if not (raw_folder / "manifest.csv").exists():
        raise KiwiUserError(f"batch {batch!r} has not been ingested (no {raw_folder / 'manifest.csv'})")
    regions = _optional_table(store, batch, "edit_regions")
    if regions is None:
        raise KiwiUserError(
            f"batch {batch!r} has no edit_regions yet; run `kiwi materialize --select +quadruplets --batch {batch}`"
        )
    refs = _optional_table(store, batch, "reference_images")
    quads = _optional_table(store, batch, "quadruplets")
    by_row = {int(r["row"]): r for r in regions.to_dict("records")}
    ref_by_row = {int(r["row"]): r for r in refs.to_dict("records")} if refs is not None else {}
    quad_by_row = {int(r["row"]): r for r in quads.to_dict("records")} if quads is not None else {}
    q = quarantine.read_batch(store.batch_dir(batch))
    q_by_row: dict[int, list[dict]] = {}
    for rec in q.to_dict("records"):
        q_by_row.setdefault(int(rec["row"]), []).append(
            {k: _clean(rec[k]) for k in ("stage", "reason", "message", "path", "score")}
        )
    rows = len(read_manifest(raw_folder / "manifest.csv").rows)
    counts = {"with_masks": 0, "with_reference": 0, "quarantined": 0}
    with target.staging({"batch": batch, "rows": rows}) as tmp:
        for row in range(1, rows + 1):
            folder = tmp / str(row)
            folder.mkdir()
            meta: dict = {"batch": batch, "row": row, "quarantine": q_by_row.get(row, [])}
            region = by_row.get(row)
            if region is not None:
                meta.update(_region_meta(region))
                masks = load_masks(store.root_path / region["mask_file"])
                (folder / "masks").mkdir()
                for i, mask in enumerate(masks):
                    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / f"{i:04d}.png")
                counts["with_masks"] += 1
            ref = ref_by_row.get(row)
            quad = quad_by_row.get(row)
            # the reference training uses: the quadruplet's (QC may have dropped it); before QC ran, the synthesized one
            ref_file = quad.get("ref_image") if quad else ((ref or {}).get("reference_file") if quads is None else "")
            if ref_file:
                with shards.open_member(store.root_path / ref_file) as fh, Image.open(fh) as img:
                    img.convert("RGB").save(folder / "reference.png")
                meta["reference"] = {
                    "file": ref_file,
                    "origin": (ref or {}).get("reference_origin"),
                    "sha256": (quad or {}).get("ref_sha256") or (ref or {}).get("reference_sha256"),
                }
                hashes = meta.setdefault("hashes", {})
                hashes["ref_sha256"] = hashes.get("ref_sha256") or meta["reference"]["sha256"]
                counts["with_reference"] += 1
            meta["status"] = "quadruplet" if quad else ("quarantined" if meta["quarantine"] else "not_processed")
            if quad:
                meta["task"] = quad["task"]
                meta["scores"] = {
                    k: _clean(quad[k]) for k in ("judge_score", "type_confidence", "dup_similarity", "mask_area")
                }
            counts["quarantined"] += meta["status"] == "quarantined"
            (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=_clean))
            if progress:
                progress(row, rows)
    assert target.outcome is not None
    return ExportSummary(rows, **counts, out_dir=target.path, outcome=target.outcome)


def _region_meta(region: dict) -> dict:
    return {
        "pair_id": region["pair_id"],
        "prompt": region["prompt"],
        "media": region["media"],
        "edit_type": region["edit_type"],
        "type_confidence": _clean(region["type_confidence"]),
        "box": json.loads(region["box"]),
        "frames": int(region["frames"]),
        "size": [int(region["height"]), int(region["width"])],
        "hashes": {
            k: region[k]
            for k in ("src_sha256", "tgt_sha256", "ref_sha256", "src_clip_sha256", "tgt_clip_sha256", "mask_sha256")
        },
        "region_scores": json.loads(region["region_scores"]),
    }
