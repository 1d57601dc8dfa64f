"""Blocking Great Expectations checks on real asset output: a failing one holds back the batch's
downstream steps, and a batch whose blocking check failed does not start retraining.

How the check is made to fail: through the asset's own input, not by editing its output. The
small synthetic batch gets one more manifest row, a thumbnail-sized (24x40 px) image pair, and
`normalized_clips` runs with clip sides in multiples of 16. Ingestion accepts the pair (nothing
in validation limits the size) and normalizes it to a 16-px-wide clip, which breaks the
`width in [32, 8192]` expectation of the blocking check `normalized_clips_valid`.
"""

from __future__ import annotations

import copy
import csv
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image

from kiwi_platform.automation import retrain_on_new_quadruplets
from kiwi_platform.runner import RunOutcome, materialize
from tests.integration.conftest import SMALL_RUN_CONFIG, add_batch

BATCH = "thumb"
#: SMALL_RUN_CONFIG with 16-px multiples: the 24-px-wide pair becomes a 16-px-wide clip.
RUN_CONFIG_16 = copy.deepcopy(SMALL_RUN_CONFIG)
RUN_CONFIG_16["ops"]["normalized_clips"]["config"]["multiple"] = 16


def _batch_with_thumbnail_pair(small_synth: Path, folder: Path) -> Path:
    """A copy of the small synthetic batch whose manifest ends with a 24x40 px image pair."""
    shutil.copytree(small_synth.parent, folder)
    rng = np.random.default_rng(0)
    for name in ("thumb_src.png", "thumb_tgt.png"):
        Image.fromarray(rng.integers(0, 256, (40, 24, 3), dtype=np.uint8)).save(folder / name)
    with open(folder / "manifest.csv", "a", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerow(["make the thumbnail red", "thumb_src.png", "thumb_tgt.png"])
    return folder / "manifest.csv"


def _check_metadata(instance: dg.DagsterInstance, asset: str, name: str, run_id: str) -> dict:
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    [record] = [
        r for r in instance.event_log_storage.get_asset_check_execution_history(key, limit=20) if r.run_id == run_id
    ]
    evaluation = record.event.dagster_event.event_specific_data
    return {k: v.value for k, v in evaluation.metadata.items()}


def _fails_normalized_clips_valid(outcome: RunOutcome) -> None:
    assert not outcome.ok
    assert [(c.asset, c.name) for c in outcome.failed_blocking_checks] == [
        ("normalized_clips", "normalized_clips_valid")
    ]
    assert {"raw_edit_pairs", "normalized_clips"} <= set(outcome.materialized)


def test_failing_gx_check_on_normalized_clips_blocks_edit_regions(platform, small_synth, tmp_path):
    """A manifest row with a thumbnail-sized image pair ends up as a 16-px-wide clip in the real
    normalized_clips table; the blocking GX check normalized_clips_valid fails on exactly that
    width, and edit_regions, selected in the same run, is held back instead of materialized."""
    defs, resources, instance = platform
    add_batch(platform, BATCH, _batch_with_thumbnail_pair(small_synth, tmp_path / "batch"))

    [outcome] = materialize("group:ingestion or key:edit_regions", [BATCH], defs=defs, run_config=RUN_CONFIG_16)

    _fails_normalized_clips_valid(outcome)
    assert "edit_regions" not in outcome.materialized
    planned = instance.all_logs(outcome.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    assert "edit_regions" in {e.dagster_event.asset_key.to_user_string() for e in planned}  # held back, not left out
    assert instance.get_latest_materialization_event(dg.AssetKey("edit_regions")) is None
    # the check read the table the asset really wrote: six 96-px-wide clips and the 16-px one
    table = resources["store"].read_table(BATCH, "normalized_clips")
    assert sorted(table["width"]) == [16] + [96] * 6
    meta = _check_metadata(instance, "normalized_clips", "normalized_clips_valid", outcome.run_id)
    failing = [line for line in meta["report"].splitlines() if line.startswith("| ❌")]
    assert meta["failed"] == 1 and len(failing) == 1, meta["report"]
    assert "width in [32, 8192]" in failing[0] and failing[0].rstrip(" |").endswith("16"), failing[0]


def test_batch_whose_blocking_check_failed_does_not_trigger_retraining(platform, small_synth, tmp_path):
    """Quadruplets built in a later run (`kiwi run group:refvie`) from a batch whose blocking
    ingestion check failed pass their own checks, yet the retraining sensor does not fire for them,
    not even after the batch is re-ingested cleanly; quadruplets rebuilt after the checks passed
    do trigger one retraining request."""
    defs, resources, instance = platform
    add_batch(platform, BATCH, _batch_with_thumbnail_pair(small_synth, tmp_path / "batch"))
    [ingest] = materialize("group:ingestion", [BATCH], defs=defs, run_config=RUN_CONFIG_16)
    _fails_normalized_clips_valid(ingest)

    [refvie] = materialize("group:refvie", [BATCH], defs=defs, run_config=RUN_CONFIG_16)
    assert refvie.ok and "quadruplets" in refvie.materialized, refvie.errors  # own checks pass: only ingestion failed
    quadruplets = instance.get_latest_materialization_event(dg.AssetKey("quadruplets")).asset_materialization
    assert quadruplets.partition == BATCH and quadruplets.metadata["accepted"].value > 0
    with dg.build_sensor_context(instance=instance) as context:
        assert isinstance(retrain_on_new_quadruplets(context), dg.SkipReason)
        cursor = context.cursor

    [fixed] = materialize("group:ingestion", [BATCH], defs=defs, run_config=SMALL_RUN_CONFIG)  # 32-px multiples
    assert fixed.ok, fixed.errors
    # a sensor turned on only now reads the whole history: those quadruplets still predate passing checks
    with dg.build_sensor_context(instance=instance) as context:
        assert isinstance(retrain_on_new_quadruplets(context), dg.SkipReason)

    [rebuilt] = materialize("group:refvie", [BATCH], defs=defs, run_config=SMALL_RUN_CONFIG)
    assert rebuilt.ok, rebuilt.errors
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        requests = retrain_on_new_quadruplets(context)
    assert [r.tags["kiwi/new_batch"] for r in requests] == [BATCH]
