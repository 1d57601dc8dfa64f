"""The `edit_regions` table: per pair, where the edit happened (masks on disk, box, edit type).

Also the way back: `region_from_row` rebuilds an EditRegion from a table row, for the stages
that read regions (references, QC) and for export.

The per-pair work (`GroundRow`) runs through `kiwi_platform.engine.stream_rows`, in this process or
on Ray workers, so it is a module-level class holding only paths and backend *names*
(`BackendSpec`); each worker process builds its backends once, on first use.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kiwi_platform.engine import EngineSettings, Progress, Rejection, stream_rows
from kiwi_platform.engine.frames import TableRows, extend_frame
from kiwi_platform.lib import shards
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.lib.quarantine import QuarantineRecord
from kiwi_platform.media.clips import read_clip
from kiwi_platform.refvie.mask_store import load_masks, save_masks
from kiwi_platform.refvie.pipeline import analyse_pair
from kiwi_platform.refvie.types import EditRegion, Grounder, SampleRejected, Segmenter

MASKS_PER_SHARD = shards.MAX_MEMBERS
STAGING = shards.STAGING
REGION_COLUMNS = ["edit_type", "type_confidence", "box", "mask_area", "region_scores"]
ADDED_COLUMNS = [*REGION_COLUMNS, "mask_file", "mask_sha256"]  # what edit_regions adds to a clips row

__all__ = ["BackendSpec", "GroundRow", "Progress", "ground_batch", "region_from_row", "rejection_record"]


@dataclass(frozen=True)
class BackendSpec:
    """A RefVIE backend by registry name and options, built where it runs (a Ray worker loads its own model)."""

    kind: str
    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, kind: str, name: str, **options: Any) -> BackendSpec:
        """Options set to None or "" count as not set (as in `backends.registry.build`)."""
        return cls(kind, name, tuple(sorted((k, v) for k, v in options.items() if v not in (None, ""))))

    def validate(self) -> None:
        """Fail now, in the driver, on an unknown backend name (one KiwiUserError line)."""
        from kiwi_platform.refvie.backends.registry import backend_class

        backend_class(self.kind, self.name)


@functools.lru_cache(maxsize=16)
def _built(spec: BackendSpec) -> Any:
    from kiwi_platform.refvie.backends.registry import build

    return build(spec.kind, spec.name, **dict(spec.options))


def resolve(backend: Any) -> Any:
    """A backend instance: built once per process from a BackendSpec, or the instance given."""
    return _built(backend) if isinstance(backend, BackendSpec) else backend


def rejection_record(rec: dict, rej: SampleRejected | Rejection, stage: str) -> QuarantineRecord:
    """The quarantine record of a pair a RefVIE stage rejected (the pair's target clip as the path)."""
    return QuarantineRecord(
        int(rec["row"]), rej.reason, rej.message, rec.get("tgt_clip", ""), stage, rej.score, rec["pair_id"]
    )


@dataclass(frozen=True)
class GroundRow:
    """One `normalized_clips` row -> what `edit_regions` adds to it (mask staged under `folder/masks/.staging/`)."""

    root: str
    folder: str
    grounder: Grounder | BackendSpec
    segmenter: Segmenter | BackendSpec

    def setup(self) -> None:
        resolve(self.grounder), resolve(self.segmenter)

    def __call__(self, rec: dict) -> dict:
        root = Path(self.root)
        source, target = read_clip(root / rec["src_clip"]), read_clip(root / rec["tgt_clip"])
        grounder, segmenter = resolve(self.grounder), resolve(self.segmenter)
        region = analyse_pair(source, target, rec["prompt"], grounder=grounder, segmenter=segmenter)
        mask_path = save_masks(staged_mask(Path(self.folder), rec), region.masks)
        rel = os.path.relpath(mask_path, root)  # the driver packs it and sets the shard reference
        added = {**region_columns(region), "mask_file": rel, "mask_sha256": sha256_file(mask_path)}
        return {"pair_id": rec["pair_id"], **added}


def mask_member(rec: dict) -> str:
    return f"{rec['pair_id']}.npz"


def staged_mask(folder: Path, rec: dict) -> Path:
    """Where a row leaves its mask until the driver packs the batch's masks into shards."""
    return folder / "masks" / STAGING / mask_member(rec)


def ground_batch(
    clips: pd.DataFrame,
    root: Path,
    folder: Path,
    *,
    grounder: Grounder | BackendSpec,
    segmenter: Segmenter | BackendSpec,
    progress: Progress | None = None,
    engine: EngineSettings | None = None,
) -> tuple[pd.DataFrame, list[QuarantineRecord]]:
    """Find the edited region of every normalized pair; masks go to shards in `folder/masks/`.

    `mask_file` is `<shard>#<pair_id>.npz` (relative to `root`); `mask_sha256` the member's sha256.

    `engine` says where the pairs run (default: this process); the table is the same either way.
    """
    records = TableRows(clips)
    shutil.rmtree(folder / "masks" / STAGING, ignore_errors=True)  # what a killed run left
    for backend in (grounder, segmenter):
        if isinstance(backend, BackendSpec):
            backend.validate()
    fn = GroundRow(str(root), str(folder), grounder, segmenter)
    outcomes = stream_rows(fn, records, settings=engine, rejects=(SampleRejected,), progress=progress)
    kept: list[int] = []  # the accepted rows' indices; per pair only what this stage adds is held
    added: dict[str, list] = {c: [] for c in ADDED_COLUMNS}
    staged: list[dict] = []
    rejected = []
    for outcome in outcomes:
        if not outcome.ok:
            rejected.append(rejection_record(records[outcome.index], outcome.rejection, "edit_regions"))
            continue
        kept.append(outcome.index)
        for c in ADDED_COLUMNS:
            added[c].append(outcome.value[c])
        staged.append({"pair_id": outcome.value["pair_id"], "mask_file": outcome.value["mask_file"]})
    shards.pack_rows(staged, "mask_file", mask_member, root, folder / "masks", MASKS_PER_SHARD, "*.npz")
    added["mask_file"] = [row["mask_file"] for row in staged]
    table = extend_frame(clips, added, kept)
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
    """Rebuild an EditRegion from an `edit_regions` table row (masks from their shard under `root`)."""
    return EditRegion(
        masks=load_masks(root / rec["mask_file"]),
        box=tuple(json.loads(rec["box"])),
        frame_boxes=[],
        edit_type=rec["edit_type"],
        type_confidence=float(rec["type_confidence"]),
        scores=json.loads(rec["region_scores"]),
    )
