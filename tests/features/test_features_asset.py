"""`training_features` in a real Dagster instance (real DVC repo and MLflow store in a tmp KIWI_HOME),
and a stage that trains from it through its declared dependency."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from kiwi_platform.lib.materializations import latest_metadata

STEPS = 2
STAGE_RUN = {"max_steps": STEPS, "eval_every": 0, "checkpoint_every": STEPS, "register_model": False}


def _metric(resources, run_id: str, name: str) -> list[float]:
    client = resources["tracking"].client()
    return [m.value for m in sorted(client.get_metric_history(run_id, name), key=lambda m: m.step)]


@pytest.mark.slow
def test_features_materialize_and_a_stage_trains_from_them(stage_platform, training_data):
    """training_features materializes (DVC-tracked shards + index, its check passes, metadata names the
    encoder hashes); stage1_checkpoint then reads every sample from the cache: feature_cache_hits
    counts each step's sample and no sample misses. A second materialization encodes nothing."""
    from kiwi_platform.runner import materialize

    defs, resources, instance = stage_platform
    [outcome] = materialize("training_features", defs=defs)
    assert outcome.ok, outcome.errors
    meta = latest_metadata(instance, "training_features")
    assert meta["entries"] == meta["written"] > 0 and meta["reused"] == 0 and meta["unkeyed_rows"] == 0
    folder = Path(str(meta["features_dir"]))
    assert sorted(p.name for p in folder.glob("shard-*.safetensors")) == sorted(meta["new_shards"])
    pointer = resources["store"].root_path / f"{meta['dvc_path']}.dvc"
    assert yaml.safe_load(pointer.read_text())["outs"][0]["md5"] == meta["dvc_md5"]
    check = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("training_features"), "training_features_intact"), limit=1
    )
    assert check and check[0].status.value == "SUCCEEDED"

    [again] = materialize("training_features", defs=defs)
    assert again.ok, again.errors
    second = latest_metadata(instance, "training_features")
    assert second["written"] == 0 and second["reused"] == meta["entries"]
    assert second["content_id"] == meta["content_id"]

    [stage] = materialize(
        "stage1_checkpoint", defs=defs, run_config={"ops": {"stage1_checkpoint": {"config": STAGE_RUN}}}
    )
    assert stage.ok, stage.errors
    run_id = latest_metadata(instance, "stage1_checkpoint")["mlflow_run_id"]
    assert _metric(resources, run_id, "feature_cache_hits") == [1.0, 2.0]  # stage 1: one sample per step
    assert _metric(resources, run_id, "feature_cache_misses") == [0.0, 0.0]
    assert len(_metric(resources, run_id, "loss")) == STEPS
