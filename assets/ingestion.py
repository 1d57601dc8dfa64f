"""Ingestion: a registered manifest becomes probed, hashed pairs, then normalized clips.

Logic lives in `kiwi_platform.ingestion`; this module only declares the assets and their checks.
"""

import time

import dagster as dg
import pandas as pd
from pydantic import Field

from kiwi_platform.ingestion.clip_table import normalize_batch
from kiwi_platform.ingestion.manifest import read_manifest
from kiwi_platform.ingestion.raw_table import raw_table, store_accepted_media
from kiwi_platform.ingestion.validate import validate_manifest
from kiwi_platform.lib.batch_asset import batch_asset, batch_check
from kiwi_platform.lib.check_results import gx_check_result
from kiwi_platform.lib.expectations import (
    between,
    columns_present,
    greater_than,
    non_blank,
    not_null,
    unique,
    validate_dataframe,
)
from kiwi_platform.lib.integrity import check_files
from kiwi_platform.lib.preview import pair_strip_markdown
from kiwi_platform.lib.publish import copy_into
from kiwi_platform.resources.batch_data import BatchData
from kiwi_platform.resources.store import MediaStore


class RawPairsConfig(dg.Config):
    """Run config for `raw_edit_pairs`."""

    min_frames: int = Field(81, description="Videos shorter than this many frames are quarantined (too_few_frames).")


class NormalizeConfig(dg.Config):
    """Run config for `normalized_clips` (sample preparation, docs/contract.md §1)."""

    num_frames: int = Field(81, description="Keep the first N frames from frame 0; images always give 1 frame.")
    max_area: int = Field(1280 * 720, description="Resize so width*height <= max_area, keeping the aspect ratio.")
    multiple: int = Field(32, description="Floor both sides to a multiple of this, then center-crop.")


@batch_asset(group_name="ingestion", kinds={"python", "csv"})
def raw_edit_pairs(context: dg.AssetExecutionContext, config: RawPairsConfig, data: BatchData) -> dg.MaterializeResult:
    """Manifest rows of one batch, every media file probed (PyAV) and sha256-hashed; bad rows quarantined."""
    batch, store = context.partition_key, data.store
    manifest = read_manifest(store.batch_manifest(batch))
    context.log.info(f"batch {batch}: {len(manifest.rows)} rows from {manifest.path}")
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            context.log.info(f"probed {done}/{total} rows")

    result = validate_manifest(manifest, min_frames=config.min_frames, progress=progress)
    folder = store.asset_dir(batch, "raw_edit_pairs")
    store_accepted_media(result.accepted, store, folder / "media")
    (folder / "manifest.csv").unlink(missing_ok=True)  # the manifest may change under the same batch name
    copy_into(manifest.path, folder / "manifest.csv")
    table = raw_table(result.accepted, batch, manifest.sha256)
    return data.publish(
        context,
        "raw_edit_pairs",
        table,
        result.quarantined,
        rows_in=len(manifest.rows),
        extra_metadata={
            "manifest": dg.MetadataValue.path(str(manifest.path)),
            "manifest_sha256": manifest.sha256,
            "rows_repaired": manifest.repaired_rows,
            "videos": int((table["media"] == "video").sum()) if len(table) else 0,
            "images": int((table["media"] == "image").sum()) if len(table) else 0,
            "seconds": round(time.perf_counter() - started, 2),
        },
    )


@batch_asset(group_name="ingestion", kinds={"python", "video"}, deps=[raw_edit_pairs])
def normalized_clips(
    context: dg.AssetExecutionContext, config: NormalizeConfig, data: BatchData
) -> dg.MaterializeResult:
    """Accepted pairs decoded, first N frames, area-capped, sides in multiples of 32, center-cropped."""
    batch, store = context.partition_key, data.store
    raw = data.read_table(batch, "raw_edit_pairs")
    started = time.perf_counter()
    settings = {"num_frames": config.num_frames, "max_area": config.max_area, "multiple": config.multiple}

    def progress(done: int, total: int, decoded: int, reused: int) -> None:
        if done % 10 == 0 or done == total:
            context.log.info(f"normalized {done}/{total} pairs ({decoded} clips decoded, {reused} reused)")

    clip_dir = store.asset_dir(batch, "normalized_clips") / "clips"
    out = normalize_batch(raw, store, batch, clip_dir, settings, progress)
    extra = {
        "clips_decoded": out.decoded,
        "clips_reused": out.reused,
        "seconds": round(time.perf_counter() - started, 2),
        **settings,
    }
    if len(out.table):
        extra["preview"] = dg.MetadataValue.md(pair_strip_markdown(store.root_path, out.table.head(4)))
    return data.publish(context, "normalized_clips", out.table, out.rejected, rows_in=len(raw), extra_metadata=extra)


@batch_check(raw_edit_pairs)
def raw_rows_accounted(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    """Every manifest row is either accepted or quarantined: nothing silently dropped."""
    batch = context.partition_key
    folder = store.asset_dir(batch, "raw_edit_pairs")
    rows_in = len(read_manifest(folder / "manifest.csv").rows)
    accepted = len(store.read_table(batch, "raw_edit_pairs"))
    quarantined = len(pd.read_parquet(folder / "quarantine.parquet"))
    return dg.AssetCheckResult(
        passed=rows_in == accepted + quarantined,
        metadata={"rows_in": rows_in, "accepted": accepted, "quarantined": quarantined},
    )


@batch_check(raw_edit_pairs)
def raw_pairs_valid(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    """Schema, non-blank prompts, unique pair ids, hashes present."""
    df = store.read_table(context.partition_key, "raw_edit_pairs")
    required = ["pair_id", "row", "prompt", "media", "src_sha256", "tgt_sha256", "src_file", "tgt_file"]
    expectations = [columns_present(required), unique("pair_id"), not_null("prompt"), non_blank("prompt")]
    expectations += [not_null("src_sha256"), not_null("tgt_sha256")]
    return gx_check_result(validate_dataframe(df, expectations, suite_name="raw_edit_pairs"))


@batch_check(normalized_clips)
def normalized_clips_valid(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    """Schema, non-null prompts, unique pair ids, resolution/frame bounds, fps > 0 for videos, clip files intact."""
    df = store.read_table(context.partition_key, "normalized_clips")
    videos = df[df["media"] == "video"] if len(df) else df
    required = ["pair_id", "prompt", "src_clip", "tgt_clip", "frames", "height", "width", "fps"]
    expectations = [columns_present(required), unique("pair_id"), not_null("prompt"), non_blank("prompt")]
    expectations += [between("height", 32, 8192), between("width", 32, 8192), between("frames", 1, 100_000)]
    outcome = validate_dataframe(df, expectations, suite_name="normalized_clips")
    fps = validate_dataframe(videos, [greater_than("fps", 0)], suite_name="normalized_clips_fps")
    outcome.results.extend(fps.results)
    outcome.success = outcome.success and fps.success
    pairs = (("src_clip", "src_clip_sha256"), ("tgt_clip", "tgt_clip_sha256"))
    _, problems = check_files(df, store.root_path, pairs)
    broken = [p.path for p in problems]
    if broken:
        outcome.success = False
    return gx_check_result(outcome, broken_clips=dg.MetadataValue.json(broken[:20]), broken_count=len(broken))
