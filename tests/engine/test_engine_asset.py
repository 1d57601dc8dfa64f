"""The engine behind the real `edit_regions` asset: a Dagster run in a real instance and data repo.

KIWI_RAY_ADDRESS moves the asset onto a cluster with no code change and its progress still shows
in the run's logs; an address that does not answer fails the run in one line, with nothing
written or registered.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from kiwi_platform.env import prepare_environment
from kiwi_platform.resources import build_resources
from kiwi_platform.resources.engine import EngineResource
from kiwi_platform.runner import register_batch
from tests.engine.conftest import free_port

BATCH = "engine"


@pytest.fixture
def staged(kiwi_home: Path, clip_batch: tuple[pd.DataFrame, Path], monkeypatch: pytest.MonkeyPatch):
    """(resources, instance) with the batch's `normalized_clips` table already in the data repo."""
    monkeypatch.delenv("KIWI_RAY_ADDRESS", raising=False)
    resources = build_resources(prepare_environment())
    store = resources["store"]
    clips, source_root = clip_batch
    folder = store.asset_dir(BATCH, "normalized_clips") / "clips"
    shutil.copytree(source_root / "norm", folder)
    table = clips.assign(
        src_clip=[store.rel(folder / Path(p).name) for p in clips["src_clip"]],
        tgt_clip=[store.rel(folder / Path(p).name) for p in clips["tgt_clip"]],
    )
    store.write_table(BATCH, "normalized_clips", table)
    instance = dg.DagsterInstance.get()
    register_batch(instance, BATCH)
    yield resources, instance
    instance.dispose()


def _materialize(
    resources: dict, instance: dg.DagsterInstance, engine: EngineResource, *, references: bool = False
) -> dg.ExecuteInProcessResult:
    from assets.refvie import edit_regions, reference_images

    return dg.materialize(
        [edit_regions, reference_images] if references else [edit_regions],
        partition_key=BATCH,
        resources={**resources, "engine": engine},
        instance=instance,
        raise_on_error=False,
    )


@pytest.mark.slow
def test_refvie_assets_run_on_the_cluster_named_by_the_address(staged, ray_cluster):
    """With KIWI_RAY_ADDRESS set, the unchanged edit_regions and reference_images assets run their pairs on
    the cluster, log their progress, and publish every row as accepted or quarantined."""
    resources, instance = staged
    result = _materialize(resources, instance, EngineResource(ray_address=ray_cluster), references=True)
    assert result.success
    logs = "\n".join(r.user_message for r in instance.all_logs(result.run_id))
    assert f"engine: Ray Data on Ray cluster at {ray_cluster}" in logs
    table = resources["store"].read_table(BATCH, "edit_regions")
    quarantined = resources["store"].read_table(BATCH, "edit_regions", name="quarantine")
    assert len(table) + len(quarantined) == 7 and table["pair_id"].is_unique
    assert "grounded 7/7 pairs" in logs and f"references for {len(table)}/{len(table)} pairs" in logs
    refs = resources["store"].read_table(BATCH, "reference_images")
    assert list(refs["pair_id"]) == list(table["pair_id"])


def test_unreachable_ray_address_fails_the_run_in_one_line_and_registers_nothing(staged):
    """A wrong KIWI_RAY_ADDRESS: the step fails with one line naming it; no materialization, no files."""
    resources, instance = staged
    address = f"127.0.0.1:{free_port()}"
    result = _materialize(resources, instance, EngineResource(ray_address=address))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    assert f"KIWI_RAY_ADDRESS={address}" in failure.message and "\n" not in failure.message.strip()
    assert instance.get_latest_materialization_event(dg.AssetKey("edit_regions")) is None
    assert not resources["store"].asset_dir(BATCH, "edit_regions").exists()
