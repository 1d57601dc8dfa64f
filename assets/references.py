"""RefVIE stages 2-3: where each edit happened (`edit_regions`) and the reference it implies
(`reference_images`). Backends are chosen by run config (`grounder`, `segmenter`, `inpainter`
plus a local `*_model_path` for the real-model ones); the defaults need no weights.
"""

import json
import time

import dagster as dg
import numpy as np
import pandas as pd
from PIL import Image

from assets.ingestion import normalized_clips
from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingest.reasons import QuarantineRecord
from kiwi_platform.lib.failures import user_failure
from kiwi_platform.lib.files import atomic_path, sha256_file
from kiwi_platform.lib.publish import publish_asset_folder
from kiwi_platform.media.clips import read_clip
from kiwi_platform.partitions import batches
from kiwi_platform.refvie.backends.registry import build_grounder, build_inpainter, build_segmenter
from kiwi_platform.refvie.mask_store import load_masks, save_masks
from kiwi_platform.refvie.pipeline import analyse_pair, synthesize_reference
from kiwi_platform.refvie.types import EditRegion, SampleRejected
from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.lakefs import LakeFSResource
from kiwi_platform.resources.store import MediaStore

# Global style edits have no reference in RefVIE (subject and background references only).
REFERENCE_TYPES = ("local_add", "local_replace", "local_remove", "recolor", "background_change")


class EditRegionsConfig(dg.Config):
    """Which grounder/segmenter find the edited region (see README, "Switching backends")."""

    grounder: str = "diff"  # diff | qwen
    grounder_model_path: str = ""  # local Qwen2.5-VL folder for grounder=qwen
    segmenter: str = "diff"  # diff | sam
    segmenter_model_path: str = ""  # local SAM folder for segmenter=sam


class ReferenceConfig(dg.Config):
    inpainter: str = "opencv"  # opencv | diffusers
    inpainter_model_path: str = ""  # local diffusers inpainting pipeline for inpainter=diffusers


def _reject(rec: dict, rej: SampleRejected, stage: str) -> QuarantineRecord:
    return QuarantineRecord(int(rec["row"]), rej.reason, rej.message, rec.get("tgt_clip", ""), stage, rej.score, rec["pair_id"])


def _progress(context: dg.AssetExecutionContext, i: int, total: int, started: float, what: str) -> None:
    if i % 10 == 0 or i == total:
        context.log.info(f"{what} {i}/{total} pairs ({i / max(time.perf_counter() - started, 1e-6) * 60:.0f} pairs/min)")


@dg.asset(
    partitions_def=batches,
    deps=[normalized_clips],
    group_name="refvie",
    kinds={"python", "pytorch", "dvc"},
    description="Edited region per pair: per-frame mask, box and edit type (pluggable grounder + segmenter).",
)
def edit_regions(
    context: dg.AssetExecutionContext, config: EditRegionsConfig, store: MediaStore, dvc: DvcRepo, lakefs: LakeFSResource
) -> dg.MaterializeResult:
    batch = context.partition_key
    try:
        clips = store.read_table(batch, "normalized_clips")
        grounder = build_grounder(config.grounder, model_path=config.grounder_model_path or None)
        segmenter = build_segmenter(config.segmenter, model_path=config.segmenter_model_path or None)
    except KiwiUserError as exc:
        raise user_failure(exc) from None
    folder = store.asset_dir(batch, "edit_regions")
    rows, rejected, kept, started = [], [], set(), time.perf_counter()
    for i, rec in enumerate(clips.to_dict("records"), start=1):
        try:
            source, target = read_clip(store.root_path / rec["src_clip"]), read_clip(store.root_path / rec["tgt_clip"])
            region = analyse_pair(source, target, rec["prompt"], grounder=grounder, segmenter=segmenter)
            mask_path = save_masks(folder / "masks" / f"{rec['pair_id']}.npz", region.masks)
            kept.add(mask_path)
            rows.append({**rec, **_region_columns(region), "mask_file": store.rel(mask_path), "mask_sha256": sha256_file(mask_path)})
        except SampleRejected as rej:
            rejected.append(_reject(rec, rej, "edit_regions"))
        _progress(context, i, len(clips), started, "grounded")
    _remove_stale(folder / "masks", kept)
    table = pd.DataFrame(rows, columns=list(clips.columns) + REGION_COLUMNS + ["mask_file", "mask_sha256"])
    types = table["edit_type"].value_counts().to_dict() if len(table) else {}
    return publish_asset_folder(
        context, store=store, dvc=dvc, lakefs=lakefs, asset="edit_regions", table=table, quarantined=rejected,
        rows_in=len(clips),
        extra_metadata={"grounder": config.grounder, "segmenter": config.segmenter,
                        "edit_types": dg.MetadataValue.json({k: int(v) for k, v in types.items()}),
                        "seconds": round(time.perf_counter() - started, 2)},
    )  # fmt: skip


REGION_COLUMNS = ["edit_type", "type_confidence", "box", "mask_area", "region_scores"]


def _region_columns(region: EditRegion) -> dict:
    return {
        "edit_type": region.edit_type,
        "type_confidence": float(region.type_confidence),
        "box": json.dumps([int(v) for v in region.box]),
        "mask_area": float(region.masks.mean()),
        "region_scores": json.dumps({k: float(v) for k, v in region.scores.items()}, sort_keys=True),
    }


def _remove_stale(folder, kept: set) -> None:
    if folder.is_dir():
        for stale in set(folder.iterdir()) - kept:
            stale.unlink()


def region_from_row(rec: dict, store: MediaStore) -> EditRegion:
    """Rebuild an EditRegion from an `edit_regions` table row (masks from disk)."""
    masks = load_masks(store.root_path / rec["mask_file"])
    return EditRegion(
        masks=masks,
        box=tuple(json.loads(rec["box"])),
        frame_boxes=[],
        edit_type=rec["edit_type"],
        type_confidence=float(rec["type_confidence"]),
        scores=json.loads(rec["region_scores"]),
    )


@dg.asset(
    partitions_def=batches,
    deps=[edit_regions],
    group_name="refvie",
    kinds={"python", "image", "dvc"},
    description="Reference image per pair: object on a white canvas (local edits) or the inpainted clean background.",
)
def reference_images(
    context: dg.AssetExecutionContext, config: ReferenceConfig, store: MediaStore, dvc: DvcRepo, lakefs: LakeFSResource
) -> dg.MaterializeResult:
    batch = context.partition_key
    try:
        regions = store.read_table(batch, "edit_regions")
        inpainter = build_inpainter(config.inpainter, model_path=config.inpainter_model_path or None)
    except KiwiUserError as exc:
        raise user_failure(exc) from None
    folder = store.asset_dir(batch, "reference_images")
    rows, rejected, kept, started = [], [], set(), time.perf_counter()
    origins: dict[str, int] = {}
    for i, rec in enumerate(regions.to_dict("records"), start=1):
        out = {**rec, "reference_file": "", "reference_sha256": "", "reference_origin": "none"}
        try:
            if rec["ref_file"]:  # the manifest brought its own reference: keep it as given
                out.update(reference_file=rec["ref_file"], reference_sha256=rec["ref_sha256"], reference_origin="manifest")
            elif rec["edit_type"] in REFERENCE_TYPES:
                region = region_from_row(rec, store)
                source = read_clip(store.root_path / rec["src_clip"])
                target = read_clip(store.root_path / rec["tgt_clip"])
                image = synthesize_reference(target, source, region, inpainter=inpainter)
                path = folder / "images" / f"{rec['pair_id']}.png"
                with atomic_path(path) as tmp:
                    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
                kept.add(path)
                out.update(reference_file=store.rel(path), reference_sha256=sha256_file(path), reference_origin="synthesized")
        except SampleRejected as rej:
            # the pair stays usable as an instruction-only sample; the dropped reference is recorded
            rejected.append(_reject(rec, rej, "reference_images"))
            out["reference_origin"] = f"rejected:{rej.reason}"
        origins[out["reference_origin"]] = origins.get(out["reference_origin"], 0) + 1
        rows.append(out)
        _progress(context, i, len(regions), started, "references for")
    _remove_stale(folder / "images", kept)
    columns = list(regions.columns) + ["reference_file", "reference_sha256", "reference_origin"]
    return publish_asset_folder(
        context, store=store, dvc=dvc, lakefs=lakefs, asset="reference_images", table=pd.DataFrame(rows, columns=columns),
        quarantined=rejected, rows_in=len(regions),
        extra_metadata={"inpainter": config.inpainter, "reference_origin": dg.MetadataValue.json(origins),
                        "seconds": round(time.perf_counter() - started, 2)},
    )  # fmt: skip
