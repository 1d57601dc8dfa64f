"""Blocking checks on `quadruplets`: the training table must point at intact files with sane scores."""

import dagster as dg

from assets.quality import quadruplets
from kiwi_platform.lib.check_results import gx_check_result
from kiwi_platform.lib.expectations import between, columns_present, not_null, unique, validate_dataframe, values_in_set
from kiwi_platform.lib.integrity import check_files
from kiwi_platform.partitions import batches
from kiwi_platform.refvie.types import EDIT_TYPES
from kiwi_platform.resources.store import MediaStore

FILE_HASH_COLUMNS = (("src_clip", "src_clip_sha256"), ("tgt_clip", "tgt_clip_sha256"), ("ref_image", "ref_sha256"), ("mask_file", "mask_sha256"))
TASKS = ("image", "video", "image_ref", "video_ref")


@dg.asset_check(asset=quadruplets, blocking=True, partitions_def=batches,
                description="Every file a quadruplet references exists and matches its recorded sha256.")  # fmt: skip
def quadruplet_files_intact(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    df = store.read_table(context.partition_key, "quadruplets")
    checked, found = check_files(df, store.root_path, FILE_HASH_COLUMNS)
    problems = [str(p) for p in found]
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"files_checked": checked, "problems": len(problems), "examples": dg.MetadataValue.json(problems[:20])},
    )


@dg.asset_check(asset=quadruplets, blocking=True, partitions_def=batches,
                description="Schema, unique pair ids, scores within [0, 1], known task and edit types.")  # fmt: skip
def quadruplets_valid(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    df = store.read_table(context.partition_key, "quadruplets")
    outcome = validate_dataframe(
        df,
        [
            columns_present(["pair_id", "prompt", "task", "edit_type", "src_clip", "tgt_clip", "ref_image", "judge_score"]),
            unique("pair_id"),
            not_null("prompt"),
            between("judge_score", 0.0, 1.0),
            between("type_confidence", 0.0, 1.0),
            between("dup_similarity", 0.0, 1.0),
            between("mask_area", 0.0, 1.0),
            values_in_set("task", TASKS),
            values_in_set("edit_type", EDIT_TYPES),
        ],
        suite_name="quadruplets",
    )
    return gx_check_result(outcome)


@dg.asset_check(asset=quadruplets, blocking=False, partitions_def=batches,
                description="Task-type and edit-type mix of the batch; warns when the batch yields no sample.")  # fmt: skip
def quadruplet_task_mix(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    df = store.read_table(context.partition_key, "quadruplets")
    tasks = {t: int((df["task"] == t).sum()) for t in TASKS}
    types = {t: int((df["edit_type"] == t).sum()) for t in EDIT_TYPES}
    table = "| task | samples |\n|---|---|\n" + "\n".join(f"| {t} | {n} |" for t, n in tasks.items())
    return dg.AssetCheckResult(
        passed=len(df) > 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"samples": len(df), "tasks": dg.MetadataValue.json(tasks), "edit_types": dg.MetadataValue.json(types),
                  "mix": dg.MetadataValue.md(table)},
    )  # fmt: skip
