"""The `reference_images` table: the reference each pair's edit implies, or why it has none.

A reference brought by the manifest is kept as given; otherwise local and background edits get a
synthesized one (object on white, or the inpainted clean background). Global style edits have no
reference in RefVIE. A rejected reference leaves the pair usable as an instruction-only sample.

The per-pair work (`SynthesizeRow`) runs through `kiwi_platform.engine.stream_rows`, in this process
or on Ray workers; like `GroundRow` it holds paths and a backend name, never a built model. The
driver reads the regions a window at a time and keeps only the three new columns per pair (the
reference's path, sha256 and origin), so its memory does not grow with per-row dicts.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kiwi_platform.engine import EngineSettings, stream_rows
from kiwi_platform.engine.frames import TableRows, extend_frame
from kiwi_platform.lib import shards
from kiwi_platform.lib.files import atomic_path, sha256_file
from kiwi_platform.lib.quarantine import QuarantineRecord
from kiwi_platform.media.clips import read_clip
from kiwi_platform.refvie.pipeline import synthesize_reference
from kiwi_platform.refvie.region_table import BackendSpec, Progress, region_from_row, rejection_record, resolve
from kiwi_platform.refvie.types import Inpainter, SampleRejected

REFERENCE_TYPES = ("local_add", "local_replace", "local_remove", "recolor", "background_change")
REFERENCE_COLUMNS = ["reference_file", "reference_sha256", "reference_origin"]
IMAGES_PER_SHARD = shards.MAX_MEMBERS
STAGING = shards.STAGING


@dataclass(frozen=True)
class SynthesizeRow:
    """One `edit_regions` row -> its `reference_images` row (image staged under `folder/images/.staging/`)."""

    root: str
    folder: str
    inpainter: Inpainter | BackendSpec

    def setup(self) -> None:
        resolve(self.inpainter)

    def __call__(self, rec: dict) -> dict:
        out = {**rec, "reference_file": "", "reference_sha256": "", "reference_origin": "none"}
        if rec["ref_file"]:  # the manifest brought its own reference: keep it as given
            out.update(reference_file=rec["ref_file"], reference_sha256=rec["ref_sha256"], reference_origin="manifest")
        elif rec["edit_type"] in REFERENCE_TYPES:
            root = Path(self.root)
            path = _synthesize(rec, root, staged_image(Path(self.folder), rec), resolve(self.inpainter))
            rel = os.path.relpath(path, root)  # the driver packs it and sets the shard reference
            out.update(reference_file=rel, reference_sha256=sha256_file(path), reference_origin="synthesized")
        return out


def image_member(rec: dict) -> str:
    return f"{rec['pair_id']}.png"


def staged_image(folder: Path, rec: dict) -> Path:
    """Where a row leaves its reference until the driver packs the batch's references into shards."""
    return folder / "images" / STAGING / image_member(rec)


def synthesize_batch(
    regions: pd.DataFrame,
    root: Path,
    folder: Path,
    *,
    inpainter: Inpainter | BackendSpec,
    progress: Progress | None = None,
    engine: EngineSettings | None = None,
) -> tuple[pd.DataFrame, list[QuarantineRecord], dict[str, int]]:
    """A reference per `edit_regions` row; synthesized images go to shards in `folder/images/`
    (`reference_file` = `<shard>#<pair_id>.png`, relative to `root`).

    Returns the table, the rejected references and how many rows came from each origin. `engine`
    says where the pairs run (default: this process); the table is the same either way.
    """
    records = TableRows(regions)
    shutil.rmtree(folder / "images" / STAGING, ignore_errors=True)  # what a killed run left
    if isinstance(inpainter, BackendSpec):
        inpainter.validate()
    fn = SynthesizeRow(str(root), str(folder), inpainter)
    outcomes = stream_rows(fn, records, settings=engine, rejects=(SampleRejected,), progress=progress)
    added = {c: [] for c in REFERENCE_COLUMNS}  # per pair: only what this stage adds to the regions table
    rejected, origins, synthesized = [], {}, []
    for outcome in outcomes:
        if outcome.ok:
            out = {c: outcome.value[c] for c in REFERENCE_COLUMNS}
        else:
            rejected.append(rejection_record(records[outcome.index], outcome.rejection, "reference_images"))
            out = {
                "reference_file": "",
                "reference_sha256": "",
                "reference_origin": f"rejected:{outcome.rejection.reason}",
            }
        origins[out["reference_origin"]] = origins.get(out["reference_origin"], 0) + 1
        if out["reference_origin"] == "synthesized":
            synthesized.append({"index": outcome.index, "pair_id": outcome.value["pair_id"], **out})
        for c in REFERENCE_COLUMNS:
            added[c].append(out[c])
    shards.pack_rows(synthesized, "reference_file", image_member, root, folder / "images", IMAGES_PER_SHARD, "*.png")
    for row in synthesized:
        added["reference_file"][row["index"]] = row["reference_file"]
    return extend_frame(regions, added), rejected, origins


def _synthesize(rec: dict, root: Path, path: Path, inpainter: Inpainter) -> Path:
    region = region_from_row(rec, root)
    source = read_clip(root / rec["src_clip"])
    target = read_clip(root / rec["tgt_clip"])
    image = synthesize_reference(target, source, region, inpainter=inpainter)
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
    return path
