"""Ingestion: a manifest (CSV or released parquet chunks) becomes probed, hashed pairs, then clips.

A batch's manifest comes from the batch registry (`kiwi ingest`, the inbox sensor) or from the
run config, so a partition added in the UI plus a manifest in the Launchpad ingests a new batch;
both register through the same atomic batch registration. Logic lives in
`kiwi_platform.ingestion`; this module only declares the assets and their checks.
"""

import time
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from kiwi_platform.ingestion.clip_table import normalize_batch
from kiwi_platform.ingestion.ingest_run import ingest_source
from kiwi_platform.ingestion.manifest import scan_csv
from kiwi_platform.ingestion.origins import iter_originals, with_source_paths
from kiwi_platform.ingestion.remote import is_url
from kiwi_platform.ingestion.sources import open_source
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
from kiwi_platform.lib.preview import pair_strip_markdown, raw_pair_strip_markdown
from kiwi_platform.resources.batch_data import BatchData
from kiwi_platform.resources.engine import EngineResource
from kiwi_platform.resources.store import MediaStore


class RawPairsConfig(dg.Config):
    """Run config for `raw_edit_pairs`: which manifest a batch reads (new batches) and the frame floor."""

    manifest: str | None = Field(
        None,
        description=(
            "Manifest of this batch: an absolute path to a CSV (prompt, src_video, tgt_video[, ref_image]) or a glob "
            "of released RefVIE parquet chunks ('/data/refvie/chunk_*.parquet'). Empty: the manifest the batch was "
            "registered with (kiwi ingest, the inbox sensor). Setting it registers the batch, so a partition added "
            "in the UI plus a manifest here ingests a new batch."
        ),
    )
    base_path: str | None = Field(
        None,
        description=(
            "Folder that relative media paths in the manifest start from (upstream's --dataset_base_path), or a "
            "URL prefix such as s3://bucket/data. Empty: the manifest's own folder. Absolute media paths and "
            "URLs are used as written."
        ),
    )
    copy_raw: bool = Field(
        False,
        description=(
            "Copy every raw file into the batch folder (content-addressed, DVC-versioned) instead of recording its "
            "URI, size and sha256 and reading it in place. Use it for sources that may disappear; "
            "`kiwi lineage --verify` reports originals that changed or vanished (kiwi ingest --copy-raw)."
        ),
    )
    replace: bool = Field(
        False,
        description="Let a batch already registered with a different manifest read `manifest` instead (kiwi ingest --replace).",
    )
    min_frames: int = Field(
        81, description="Videos shorter than this many frames (frames, not seconds) are quarantined as too_few_frames."
    )


class NormalizeConfig(dg.Config):
    """Run config for `normalized_clips` (sample preparation, docs/contract.md §1)."""

    num_frames: int = Field(
        81, description="Frames kept per clip, the first N from frame 0 (images always give 1). Model side: 4k+1."
    )
    max_area: int = Field(
        1280 * 720,
        description="Pixel budget per frame (width x height, px^2; 921600 = 1280x720): larger frames are scaled down keeping the aspect ratio.",
    )
    multiple: int = Field(32, description="Both sides are floored to a multiple of this many px, then center-cropped.")
    clip_storage: Literal["jpeg", "video"] = Field(
        "jpeg",
        description="How clips are stored: jpeg (every frame a quality-95 JPEG; cheap to write and to read any frame) "
        "or video (near-lossless H.264: 2-3x fewer bytes, 7-15x the CPU to encode); docs/clips.md. Changing it "
        "rebuilds the batch's clips on the next run.",
    )
    reference_originals: bool = Field(
        True,
        description="Keep no copy of an original's pixels: its clip names the original and its sha256, and readers "
        "decode the original, re-hashed on every read (docs/clips.md). Applies to local originals and copies in "
        "the batch; remote ones are always copied.",
    )
    reference_resized: bool = Field(
        True,
        description="With reference_originals, reference originals above the area cap too: every read then decodes "
        "and resizes the full-size original (measured at 1080p: 1.2-2.4x the CPU of reading a whole JPEG copy, "
        "10-18x for a few frames) instead of storing a JPEG copy of ~19x the original's bytes. False copies "
        "them (cheaper reads, more bytes). Changing it rebuilds those clips on the next run.",
    )


def _batch_entry(store: MediaStore, batch: str, config: RawPairsConfig) -> dict:
    """The registry entry this run reads: registered now from the run config, or registered before."""
    if not config.manifest or not config.manifest.strip():
        return store.batch_source(batch)
    source = open_source(config.manifest, config.base_path)  # a bad manifest stops here with one line
    store.check_registration(batch, source.spec, replace=config.replace, base_path=config.base_path)
    return store.register_batch(batch, source.spec, replace=config.replace, base_path=config.base_path)


@batch_asset(group_name="ingestion", kinds={"python", "csv"})
def raw_edit_pairs(
    context: dg.AssetExecutionContext, config: RawPairsConfig, data: BatchData, engine: EngineResource
) -> dg.MaterializeResult:
    """Manifest rows of one batch (CSV or parquet chunks), every media file probed (PyAV) and sha256-hashed; bad rows quarantined."""
    batch, store = context.partition_key, data.store
    entry = _batch_entry(store, batch, config)
    base = entry.get("base_path")
    source = open_source(entry["manifest"], base)
    context.log.info(f"batch {batch}: {source.rows} rows from {source.spec} (media under {source.base_dir})")
    started = time.perf_counter()
    step = max(50, source.rows // 20)

    def progress(done: int, total: int) -> None:
        if done == total or done % step == 0:
            context.log.info(f"probed {done}/{total} rows")

    settings = engine.settings()
    context.log.info(f"probing files: {settings.describe(source.rows)}")
    out = ingest_source(
        source,
        store,
        batch,
        min_frames=config.min_frames,
        copy_raw=config.copy_raw,
        progress=progress,
        engine=settings,
    )
    # the preview reads files: originals kept by reference are read where they are, remote ones skipped
    local = _local_rows(with_source_paths(out.table.head(64), store.batch_dir(batch)))
    preview = (
        {"preview": dg.MetadataValue.md(raw_pair_strip_markdown(store.root_path, local.head(4)))} if len(local) else {}
    )
    return data.publish(
        context,
        "raw_edit_pairs",
        out.table,
        out.quarantined,
        rows_in=out.rows_in,
        extra_metadata={
            "manifest": dg.MetadataValue.path(source.spec),
            "manifest_format": source.kind,
            "manifest_files": len(source.files),
            "base_path": dg.MetadataValue.path(str(source.base_dir)),
            "manifest_sha256": source.sha256,
            "rows_repaired": source.repaired_rows,
            "videos": out.videos,
            "images": out.images,
            "embedded_references": out.embedded_refs,
            "raw_media": "copied" if config.copy_raw else "by_reference",
            "seconds": round(time.perf_counter() - started, 2),
            **preview,
        },
        # lakeFS on: originals on an object store are imported zero-copy into the batch branch (copies are uploaded)
        raw_originals=None if config.copy_raw else iter_originals(out.table.path, store.batch_dir(batch)),
    )


def _local_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose source and target are local files, `src_file`/`tgt_file` naming them (the preview reads them)."""
    if not len(df):
        return df
    df = df.copy()
    for role in ("src", "tgt"):
        df[f"{role}_file"] = [stored or where for stored, where in zip(df[f"{role}_file"], df[f"{role}_path"])]
    keep = ~(df["src_file"].map(is_url) | df["tgt_file"].map(is_url)) & df["src_file"].astype(bool)
    return df[keep & df["tgt_file"].astype(bool)]


@batch_asset(group_name="ingestion", kinds={"python", "video"}, deps=[raw_edit_pairs])
def normalized_clips(
    context: dg.AssetExecutionContext, config: NormalizeConfig, data: BatchData, engine: EngineResource
) -> dg.MaterializeResult:
    """Accepted pairs decoded, first N frames, area-capped, sides in multiples of 32, center-cropped."""
    batch, store = context.partition_key, data.store
    raw = data.read_table(batch, "raw_edit_pairs")
    started = time.perf_counter()
    settings = {
        "num_frames": config.num_frames,
        "max_area": config.max_area,
        "multiple": config.multiple,
        "storage": config.clip_storage,
    }

    def progress(done: int, total: int, decoded: int, reused: int) -> None:
        if done % 10 == 0 or done == total:
            rate = done / max(time.perf_counter() - started, 1e-6) * 60
            context.log.info(f"normalized {done}/{total} new clips ({reused} reused, {rate:.0f} clips/min)")

    clip_dir = store.asset_dir(batch, "normalized_clips") / "clips"
    out = normalize_batch(
        raw,
        store,
        batch,
        clip_dir,
        settings,
        progress,
        engine=engine.settings(),
        log=context.log.info,
        reference_originals=config.reference_originals,
        reference_resized=config.reference_resized,
    )
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
    rows_in = scan_csv(folder / "manifest.csv").rows
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
