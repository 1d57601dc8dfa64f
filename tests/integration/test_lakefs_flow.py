"""lakeFS in the pipeline (optional resource): branch per batch, commits carrying the Dagster run id,
merge into main once the batch passed QC, through the real `lakefs` SDK against the fake server."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from kiwi_platform.env import prepare_environment
from kiwi_platform.resources import build_resources
from kiwi_platform.resources.lakefs import batch_branch_name
from kiwi_platform.runner import materialize, register_batch
from tests.fakes.lakefs_server import point_kiwi_at, run_fake_lakefs
from tests.integration.conftest import SMALL_RUN_CONFIG


@pytest.fixture
def lakefs_env(kiwi_home: Path, monkeypatch: pytest.MonkeyPatch):
    with run_fake_lakefs() as server:
        point_kiwi_at(server, monkeypatch)
        yield server


def test_batch_branch_commits_then_merges_after_checks(lakefs_env, kiwi_home: Path, small_synth: Path):
    """Every asset folder of a batch is committed on `batch-<name>` with the run id; once QC passed,
    training_manifests merges the batch and the manifests into main, and records main's commit."""
    settings = prepare_environment()
    from kiwi_platform.definitions import build_definitions

    defs = build_definitions()
    resources = build_resources(settings)
    assert resources["lakefs"].enabled
    instance = dg.DagsterInstance.get()
    resources["store"].register_batch("lk", small_synth)
    register_batch(instance, "lk")
    outcomes = materialize(
        "group:ingestion or group:refvie or key:training_manifests", ["lk"], defs=defs, run_config=SMALL_RUN_CONFIG
    )
    assert all(o.ok for o in outcomes), [o.errors for o in outcomes]
    state, repo = lakefs_env.state, resources["lakefs"].repository
    branch = batch_branch_name("lk")
    head = state.commit_at(repo, branch)
    assert head.metadata["dagster_run_id"] == outcomes[0].run_id
    on_main = state.objects_at(repo, "main")
    for asset in ("raw_edit_pairs", "normalized_clips", "edit_regions", "reference_images", "quadruplets"):
        assert f"batches/lk/{asset}/table.parquet" in on_main, asset
    assert "training/manifests/stage1.parquet" in on_main
    event = instance.get_latest_materialization_event(dg.AssetKey("training_manifests"))
    assert event.asset_materialization.metadata["lakefs_commit"].value == state.commit_at(repo, "main").id
    instance.dispose()
