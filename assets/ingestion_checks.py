"""Blocking checks on the ingestion tables (Great Expectations, imported lazily).

A failed blocking check stops the downstream assets of that run, so a broken batch never
reaches training.
"""


import dagster as dg
import pandas as pd

from assets.ingestion import normalized_clips, raw_edit_pairs
from kiwi_platform.ingest.manifest import read_manifest
from kiwi_platform.lib.check_results import gx_check_result
from kiwi_platform.lib.expectations import between, columns_present, greater_than, non_blank, not_null, unique, validate_dataframe
from kiwi_platform.lib.integrity import check_files
from kiwi_platform.partitions import batches
from kiwi_platform.resources.store import MediaStore


@dg.asset_check(asset=raw_edit_pairs, blocking=True, partitions_def=batches,
                description="Every manifest row is either accepted or quarantined: nothing silently dropped.")  # fmt: skip
def raw_rows_accounted(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    batch = context.partition_key
    folder = store.asset_dir(batch, "raw_edit_pairs")
    rows_in = len(read_manifest(folder / "manifest.csv").rows)
    accepted = len(store.read_table(batch, "raw_edit_pairs"))
    quarantined = len(pd.read_parquet(folder / "quarantine.parquet"))
    return dg.AssetCheckResult(
        passed=rows_in == accepted + quarantined,
        metadata={"rows_in": rows_in, "accepted": accepted, "quarantined": quarantined},
    )


@dg.asset_check(asset=raw_edit_pairs, blocking=True, partitions_def=batches,
                description="Schema, non-blank prompts, unique pair ids, hashes present.")  # fmt: skip
def raw_pairs_valid(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    df = store.read_table(context.partition_key, "raw_edit_pairs")
    outcome = validate_dataframe(
        df,
        [
            columns_present(["pair_id", "row", "prompt", "media", "src_sha256", "tgt_sha256", "src_file", "tgt_file"]),
            unique("pair_id"),
            not_null("prompt"),
            non_blank("prompt"),
            not_null("src_sha256"),
            not_null("tgt_sha256"),
        ],
        suite_name="raw_edit_pairs",
    )
    return gx_check_result(outcome)


@dg.asset_check(asset=normalized_clips, blocking=True, partitions_def=batches,
                description="Schema, non-null prompts, unique pair ids, resolution/frame bounds, fps > 0 for videos, clip files intact.")  # fmt: skip
def normalized_clips_valid(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    df = store.read_table(context.partition_key, "normalized_clips")
    videos = df[df["media"] == "video"] if len(df) else df
    outcome = validate_dataframe(
        df,
        [
            columns_present(["pair_id", "prompt", "src_clip", "tgt_clip", "frames", "height", "width", "fps"]),
            unique("pair_id"),
            not_null("prompt"),
            non_blank("prompt"),
            between("height", 32, 8192),
            between("width", 32, 8192),
            between("frames", 1, 100_000),
        ],
        suite_name="normalized_clips",
    )
    fps = validate_dataframe(videos, [greater_than("fps", 0)], suite_name="normalized_clips_fps")
    outcome.results.extend(fps.results)
    outcome.success = outcome.success and fps.success
    _, problems = check_files(df, store.root_path, (("src_clip", "src_clip_sha256"), ("tgt_clip", "tgt_clip_sha256")))
    broken = [p.path for p in problems]
    if broken:
        outcome.success = False
    return gx_check_result(outcome, broken_clips=dg.MetadataValue.json(broken[:20]), broken_count=len(broken))
