"""The engine's contract without a cluster: order, rejections as records, back-end choice, bad addresses."""

from __future__ import annotations

import pytest

from kiwi_platform.engine import EngineSettings, Rejection, map_rows
from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.region_table import BackendSpec, ground_batch
from kiwi_platform.resources.engine import EngineResource
from tests.engine.conftest import free_port
from tests.engine.rowfns import LoadOnce


def test_rows_come_back_in_input_order_with_rejections_in_their_slot(tmp_path):
    """A stage's table lines up with its input: every row once, in order, a refused row as a Rejection."""
    seen = []
    rows = [3, -1, 7, 0, -5]
    out = map_rows(
        LoadOnce(str(tmp_path)), rows, rejects=(ValueError,), progress=lambda done, total: seen.append((done, total))
    )
    assert [o.index for o in out] == list(range(len(rows)))
    assert [o.value for o in out] == [30, None, 70, 0, None]
    assert [o.rejection for o in out if not o.ok] == [Rejection("ValueError", "negative")] * 2
    assert seen == [(i, len(rows)) for i in range(1, len(rows) + 1)]
    assert len(list(tmp_path.iterdir())) == 1  # the model was loaded once for the batch


def test_an_exception_that_is_not_a_rejection_fails_the_batch(tmp_path):
    """A bug in a stage stops the batch instead of being quarantined as if the data were bad."""
    with pytest.raises(ValueError):
        map_rows(LoadOnce(str(tmp_path)), [1, -1], rejects=(KeyError,))


@pytest.mark.parametrize(
    ("settings", "rows", "expected"),
    [
        (EngineSettings(engine="auto"), 5, "local"),
        (EngineSettings(engine="auto"), EngineSettings().ray_min_rows - 1, "local"),
        (EngineSettings(engine="auto"), EngineSettings().ray_min_rows, "ray"),
        (EngineSettings(engine="auto", ray_address="10.0.0.1:6379"), 1, "ray"),
        (EngineSettings(engine="local", ray_address="10.0.0.1:6379"), 500, "local"),
        (EngineSettings(engine="ray"), 1, "ray"),
    ],
)
def test_auto_runs_small_batches_in_process_and_clusters_or_large_batches_on_ray(settings, rows, expected):
    """A 5-pair batch never pays Ray's start-up; a cluster address or a large batch always uses Ray."""
    assert settings.backend_for(rows) == expected


def test_engine_settings_come_from_the_environment(monkeypatch):
    """KIWI_RAY_ADDRESS / KIWI_ENGINE move the stages to a cluster with no code change; bad values are one line."""
    monkeypatch.setenv("KIWI_RAY_ADDRESS", "ray://head:10001")
    monkeypatch.setenv("KIWI_RAY_MIN_ROWS", "8")
    settings = EngineResource.from_env().settings()
    assert (settings.engine, settings.ray_address, settings.ray_min_rows) == ("auto", "ray://head:10001", 8)
    assert settings.backend_for(1) == "ray"
    monkeypatch.setenv("KIWI_ENGINE", "spark")
    with pytest.raises(KiwiUserError, match="KIWI_ENGINE=spark"):
        EngineResource.from_env()


def test_unreachable_ray_address_is_one_line_naming_it_and_writes_nothing(tmp_path):
    """A wrong KIWI_RAY_ADDRESS fails before any pair runs: one line naming the address, no mask written."""
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    clips = _one_row_table()
    with pytest.raises(KiwiUserError) as err:
        ground_batch(
            clips,
            tmp_path,
            tmp_path / "edit_regions",
            grounder=BackendSpec.of("grounder", "diff"),
            segmenter=BackendSpec.of("segmenter", "diff"),
            engine=EngineSettings(engine="auto", ray_address=address),
        )
    message = str(err.value)
    assert f"KIWI_RAY_ADDRESS={address}" in message and "unreachable" in message and "\n" not in message
    assert err.value.code == "ray_unreachable"
    assert not (tmp_path / "edit_regions").exists()


def test_unknown_backend_name_fails_in_the_driver(tmp_path):
    """A misspelt backend is one line before any worker starts, as when backends were built in the asset."""
    with pytest.raises(KiwiUserError, match="unknown grounder backend 'dif'"):
        ground_batch(
            _one_row_table(),
            tmp_path,
            tmp_path / "edit_regions",
            grounder=BackendSpec.of("grounder", "dif"),
            segmenter=BackendSpec.of("segmenter", "diff"),
        )


def _one_row_table():
    import pandas as pd

    return pd.DataFrame([{"pair_id": "p", "row": 1, "prompt": "x", "src_clip": "a", "tgt_clip": "b"}])


def test_cheap_rows_of_a_large_batch_never_start_a_local_ray(tmp_path, monkeypatch):
    """`auto` without a cluster times the first rows: when the whole batch would take less than a local
    Ray's start is worth, it stays in this process (Ray is never asked) and gives the usual outcomes."""
    from kiwi_platform.engine import ray_runner

    def no_ray(*args, **kwargs):
        raise AssertionError("a local Ray was started for rows cheaper than its start")

    monkeypatch.setattr(ray_runner, "stream_on_ray", no_ray)
    settings = EngineSettings(engine="auto", ray_min_rows=8, probe_s=0.0, ray_worth_s=3600.0)
    rows = list(range(200))
    out = map_rows(LoadOnce(str(tmp_path)), rows, settings=settings, rejects=(ValueError,))
    assert [o.value for o in out] == [10 * r for r in rows]
    assert [o.index for o in out] == list(range(len(rows)))
    assert "moves to a local Ray" in settings.describe(len(rows))


def test_rows_too_cheap_for_ray_stay_in_process_however_long_the_batch(tmp_path, monkeypatch):
    """`auto` without a cluster keeps a long batch of cheap rows in this process when the machine's
    other cores cannot win back what a Ray task costs per row (row x (cores - 1) < ray_task_overhead_s):
    measured on 2 cores, 0.02-0.05 s rows ran 1.7-2.4x slower on a local Ray. Same outcomes."""
    from kiwi_platform.engine import ray_runner

    def no_ray(*args, **kwargs):
        raise AssertionError("a local Ray was started for rows cheaper than its per-row cost")

    monkeypatch.setattr(ray_runner, "stream_on_ray", no_ray)
    settings = EngineSettings(
        engine="auto", ray_min_rows=8, num_cpus=2, probe_s=0.0, ray_worth_s=0.0, ray_task_overhead_s=3600.0
    )
    rows = list(range(100))
    out = map_rows(LoadOnce(str(tmp_path)), rows, settings=settings, rejects=(ValueError,))
    assert [o.value for o in out] == [10 * r for r in rows]
