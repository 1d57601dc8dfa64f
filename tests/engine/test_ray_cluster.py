"""The Ray back end on a real two-node cluster (tests/engine/conftest.py), used as KIWI_RAY_ADDRESS would be.

Slow: the cluster takes ~15 s to start on 2 cores; the module's tests share it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psutil
import pytest

from kiwi_platform.engine import ActorPool, EngineSettings, map_rows
from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.reference_table import synthesize_batch
from kiwi_platform.refvie.region_table import BackendSpec, ground_batch
from tests.engine.rowfns import LoadOnce, VictimGrounder, kill_first_victim, missing_model

pytestmark = pytest.mark.slow

GROUNDER, SEGMENTER = BackendSpec.of("grounder", "diff"), BackendSpec.of("segmenter", "diff")
INPAINTER = BackendSpec.of("inpainter", "opencv")


def _on(address: str) -> EngineSettings:
    return EngineSettings(engine="auto", ray_address=address)


def _regions(clips: pd.DataFrame, root: Path, folder: Path, engine: EngineSettings | None, grounder=GROUNDER):
    return ground_batch(clips, root, folder, grounder=grounder, segmenter=SEGMENTER, engine=engine)


def test_ray_and_in_process_engines_write_identical_tables(ray_cluster, clip_batch):
    """Moving edit_regions and reference_images to a cluster changes where they run, not one byte they write:
    same rows in the same order, same mask and reference hashes, same quarantine records."""
    clips, root = clip_batch
    folder = root / "identical"
    local, local_rejected = _regions(clips, root, folder / "edit_regions", None)
    local_masks = {p.name: p.read_bytes() for p in (folder / "edit_regions" / "masks").iterdir()}
    remote, remote_rejected = _regions(clips, root, folder / "edit_regions", _on(ray_cluster))
    pd.testing.assert_frame_equal(local, remote)
    assert local_rejected == remote_rejected and [r.reason for r in remote_rejected] == ["qc_no_edit"]
    assert len(remote) + len(remote_rejected) == len(clips)
    assert {p.name: p.read_bytes() for p in (folder / "edit_regions" / "masks").iterdir()} == local_masks

    refs_dir = folder / "reference_images"
    local_refs, local_ref_rejected, local_origins = synthesize_batch(local, root, refs_dir, inpainter=INPAINTER)
    remote_refs, remote_ref_rejected, remote_origins = synthesize_batch(
        local, root, refs_dir, inpainter=INPAINTER, engine=_on(ray_cluster)
    )
    pd.testing.assert_frame_equal(local_refs, remote_refs)
    assert (local_ref_rejected, local_origins) == (remote_ref_rejected, remote_origins)
    assert local_origins.get("synthesized", 0) > 0


def test_killed_ray_worker_mid_batch_loses_and_duplicates_no_row(ray_cluster, clip_batch, tmp_path):
    """kill -9 of the worker grounding a pair: Ray reruns its task, and the table still has every pair once,
    the same as an uninterrupted run."""
    clips, root = clip_batch
    expected, expected_rejected = _regions(clips, root, tmp_path / "uninterrupted", None)
    marker = tmp_path / "victim.pid"
    killed: list[int] = []

    killer = kill_first_victim(marker, killed)
    grounder = VictimGrounder(str(marker))
    table, rejected = _regions(clips, root, tmp_path / "killed", _on(ray_cluster), grounder=grounder)
    killer.join(timeout=5)
    assert killed, "no worker was killed"
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
    assert sorted(table["pair_id"]) == sorted(set(table["pair_id"]))  # no duplicate
    assert len(table) + len(rejected) == len(clips)  # none lost
    assert list(table["pair_id"]) == list(expected["pair_id"])
    assert list(table["mask_sha256"]) == list(expected["mask_sha256"])
    assert rejected == expected_rejected


def test_actor_pool_loads_the_model_once_per_actor(ray_cluster, tmp_path):
    """GPU stages' mode: a class-based row function runs in a fixed pool of actors, each loading once,
    results in input order and rejections kept in their slot."""
    loads = tmp_path / "loads"
    loads.mkdir()
    rows = [4, -2, 9, 1, 0, 6, -7, 3]
    out = map_rows(
        LoadOnce(str(loads)),
        rows,
        settings=EngineSettings(engine="ray", ray_address=ray_cluster),
        rejects=(ValueError,),
        pool=ActorPool(size=1, num_cpus=1),
    )
    assert [o.value for o in out] == [40, None, 90, 10, 0, 60, None, 30]
    assert [o.rejection.reason for o in out if not o.ok] == ["ValueError", "ValueError"]
    assert len(list(loads.iterdir())) == 1


def test_a_batch_above_max_tasks_runs_in_that_many_tasks_each_row_once(ray_cluster, tmp_path):
    """Ray Data's driver keeps state per task until a batch ends, so a large batch puts more rows in
    each task instead of making more tasks: 10 rows with max_tasks=3 run as 3 tasks (one setup each),
    every row once, in input order, rejections in their slot."""
    loads = tmp_path / "loads"
    loads.mkdir()
    rows = [4, -2, 9, 1, 0, 6, -7, 3, 5, 2]
    settings = EngineSettings(engine="ray", ray_address=ray_cluster, max_tasks=3)
    out = map_rows(LoadOnce(str(loads)), rows, settings=settings, rejects=(ValueError,))
    assert [o.index for o in out] == list(range(len(rows)))
    assert [o.value for o in out] == [40, None, 90, 10, 0, 60, None, 30, 50, 20]
    assert len(list(loads.iterdir())) == 3


def test_user_error_inside_a_worker_reaches_the_step_as_its_one_line(ray_cluster):
    """A backend that cannot load on the cluster fails the step with the user's one line, not Ray's traceback."""
    with pytest.raises(KiwiUserError) as err:
        map_rows(missing_model, [1, 2], settings=EngineSettings(engine="ray", ray_address=ray_cluster))
    assert str(err.value) == "grounder backend 'qwen' needs option(s) model_path"
    assert err.value.code == "bad_backend_option"


def test_costly_rows_of_a_large_batch_move_to_a_local_ray_after_the_probe(tmp_path, monkeypatch):
    """`auto` without a cluster runs the first rows in process and, once the rest is estimated to be
    worth a local Ray, sends only the rest there: every row once, in input order, the same values and
    rejections as the in-process loop, and progress counts through to the end."""
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    rows = [3, -1, 7, 0, -5, 2, 9, 4]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    expected = map_rows(LoadOnce(str(tmp_path / "a")), rows, rejects=(ValueError,))
    seen: list[tuple[int, int]] = []
    settings = EngineSettings(
        engine="auto", ray_min_rows=4, num_cpus=1, probe_s=0.0, ray_worth_s=0.0, ray_task_overhead_s=0.0
    )
    try:
        out = map_rows(
            LoadOnce(str(tmp_path / "b")),
            rows,
            settings=settings,
            rejects=(ValueError,),
            progress=lambda done, total: seen.append((done, total)),
        )
        assert ray.is_initialized()  # the rest went to a local Ray
    finally:
        ray.shutdown()
    assert out == expected
    assert seen[0] == (1, len(rows)) and seen[-1] == (len(rows), len(rows))
