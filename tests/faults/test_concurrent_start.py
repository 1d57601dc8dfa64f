"""Several `kiwi` processes at once on one KIWI_HOME: first start, and one batch from two manifests.

Real processes, a real Dagster instance, DVC repo and MLflow database; nothing is mocked.
KIWI_FAULT_TRIALS (default 10) fresh KIWI_HOMEs with 4 `kiwi ingest` processes each, in the
suite's own loop. Time is bounded: once KIWI_FAULT_BUDGET_S (default 180) have passed, the
remaining trials are skipped, but never before MIN_TRIALS ran; the number run is printed. A trial
takes about 20-40 s on a busy 2-core machine (every process imports the whole code location
first). Before the init lock, 4 processes on a fresh home crashed with a traceback in most trials
and left two alembic heads in 8 of 10.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.resources.store import MediaStore
from tests.faults.conftest import HEADER, assert_clean, run_kiwi, run_together

TRIALS = int(os.environ.get("KIWI_FAULT_TRIALS", "10"))
BUDGET_S = float(os.environ.get("KIWI_FAULT_BUDGET_S", "180"))
MIN_TRIALS = min(3, TRIALS)
MLFLOW_TRIALS = max(1, TRIALS // 2)  # before the lock, 3-4 of 4 processes crashed in every trial
PROCESSES = 4


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_concurrent_first_ingests_all_succeed_and_leave_a_usable_instance(tmp_path, header_manifest, monkeypatch):
    """4 `kiwi ingest` processes (distinct batches) started at once on a fresh KIWI_HOME, in
    KIWI_FAULT_TRIALS trials (at least 3, more while the time budget lasts): every one exits 0
    without a traceback, and afterwards the Dagster instance opens (one alembic head) with all 4
    batches and 4 successful runs; a further command then materializes every batch."""
    names = [f"b{i}" for i in range(PROCESSES)]
    started, done = time.monotonic(), 0
    for trial in range(TRIALS):
        if done >= MIN_TRIALS and time.monotonic() - started > BUDGET_S:
            break
        home = tmp_path / f"trial{trial}" / "kiwi-home"
        commands = [("ingest", str(header_manifest), "--batch", name, "--select", "raw_edit_pairs") for name in names]
        results = run_together(commands, home)
        for result in results:
            assert_clean(result)
            assert result.returncode == 0, f"trial {trial}: {result.describe()}"
        monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))  # dagster.yaml reads it
        instance = dg.DagsterInstance.from_config(str(home / "dagster"))  # raises on a broken schema
        try:
            assert sorted(instance.get_dynamic_partitions("batch")) == names, f"trial {trial}"
            runs = instance.get_runs()
            assert len(runs) == PROCESSES and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            assert instance.get_materialized_partitions(dg.AssetKey("raw_edit_pairs")) == set(names)
        finally:
            instance.dispose()
        done += 1
    print(
        f"\nconcurrent first start: {done}/{TRIALS} trials of {PROCESSES} processes in {time.monotonic() - started:.0f} s"
    )
    assert done >= MIN_TRIALS
    again = run_kiwi("materialize", "--select", "raw_edit_pairs", home=home)
    assert again.returncode == 0, again.describe()
    for name in names:
        assert f"batch {name}: ok" in again.stdout, again.describe()


# Each process imports first, then waits at a barrier (a file per process in a shared folder) so
# that all of them open the store within milliseconds of each other, as racing training runs do.
_OPEN_TRACKING = """
import os, sys, time
from pathlib import Path
from kiwi_platform.resources.tracking import MlflowTracking
import mlflow
uri, artifacts, barrier, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
(barrier / str(os.getpid())).touch()
deadline = time.monotonic() + 120
while len(list(barrier.iterdir())) < n and time.monotonic() < deadline:
    time.sleep(0.005)
print(MlflowTracking(tracking_uri=uri, artifact_root=artifacts).experiment_id())
"""


@pytest.mark.slow
def test_concurrent_first_opens_of_the_mlflow_store_all_succeed(tmp_path):
    """4 processes opening a fresh SQLite MLflow store at once through the tracking resource (as
    concurrent training runs would), in KIWI_FAULT_TRIALS / 2 trials: all exit 0 without a traceback,
    agree on the experiment id, and the database opens afterwards (migrated, one alembic head)."""
    from mlflow import MlflowClient

    for trial in range(MLFLOW_TRIALS):
        home = tmp_path / f"trial{trial}"
        home.mkdir()
        uri, artifacts = f"sqlite:///{home / 'mlflow.db'}", str(home / "artifacts")
        barrier = home / "barrier"
        barrier.mkdir()
        argv0 = [sys.executable, "-c", _OPEN_TRACKING]
        results = run_together([(uri, artifacts, str(barrier), str(PROCESSES))] * PROCESSES, home, 300, argv0)
        for result in results:
            assert result.returncode == 0 and "Traceback" not in result.stderr, f"trial {trial}: {result.describe()}"
        ids = {result.stdout.strip().splitlines()[-1] for result in results}
        assert len(ids) == 1, f"trial {trial}: experiment ids {ids}"
        names = [e.name for e in MlflowClient(tracking_uri=uri).search_experiments()]
        assert "kiwi-edit" in names, names


def _manifest(folder: Path, name: str, prompt: str) -> Path:
    """A one-row manifest whose media do not exist: the row is quarantined, the content is distinct."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(HEADER + f"{name}.mp4,{name}-target.mp4,{prompt}\n")
    return path


@pytest.mark.slow
def test_same_batch_from_two_manifests_at_once_ingests_one_and_refuses_the_other(tmp_path):
    """Three `kiwi ingest --batch same` started at once, two with manifest A and one with B: the
    first manifest registered wins, every process given it exits 0 (they queue on the batch) and
    says it read what the batch now holds; every process given the other is refused in one line.
    Later the refused manifest is refused again, until `--replace` makes the batch read it."""
    home = tmp_path / "kiwi-home"
    a = _manifest(tmp_path / "a", "a.csv", "make it red")
    b = _manifest(tmp_path / "b", "b.csv", "make it blue")
    given = [a, b, a]
    raced = run_together([("ingest", str(m), "--batch", "same", "--select", "raw_edit_pairs") for m in given], home)
    report = "\n".join(r.describe() for r in raced)
    for result in raced:
        assert_clean(result)
    winners = {m for m, r in zip(given, raced) if r.returncode == 0}
    assert len(winners) == 1, report
    winner = winners.pop()
    loser = b if winner == a else a
    for manifest, result in zip(given, raced):
        if manifest == winner:
            assert result.returncode == 0 and f"rows from {winner}" in result.stdout, report
        else:
            assert result.returncode == 2, report
            assert "already registered with a different manifest" in result.stderr, report
    stored = home / "data" / "batches" / "same" / "raw_edit_pairs" / "manifest.csv"
    assert _sha(stored) == _sha(winner)
    assert json.loads((home / "data" / "registry" / "same.json").read_text())["sha256"] == _sha(winner)

    again = run_kiwi("ingest", str(loser), "--batch", "same", "--select", "raw_edit_pairs", home=home)
    assert_clean(again)
    assert again.returncode == 2 and "--replace" in again.stderr, again.describe()
    assert _sha(stored) == _sha(winner)

    replaced = run_kiwi("ingest", str(loser), "--batch", "same", "--select", "raw_edit_pairs", "--replace", home=home)
    assert replaced.returncode == 0, replaced.describe()
    assert f"rows from {loser}" in replaced.stdout
    assert _sha(stored) == _sha(loser)
    assert json.loads((home / "data" / "registry" / "same.json").read_text())["sha256"] == _sha(loser)


def test_registering_a_batch_is_idempotent_for_the_same_content_and_refuses_other_content(tmp_path):
    """The batch registry: the same manifest again (even from another folder) is accepted and
    points at the new path; a different manifest is refused with one line naming both and
    `--replace`, leaving the entry as it was; `replace=True` switches it. An entry still being
    written by another process (its temp file) is not listed as a batch."""
    store = MediaStore(root=str(tmp_path / "data"))
    a = _manifest(tmp_path / "a", "m.csv", "make it red")
    first = store.register_batch("b1", a)
    assert store.register_batch("b1", a) == first
    moved = _manifest(tmp_path / "moved", "m.csv", "make it red")
    assert store.register_batch("b1", moved)["manifest"] == str(moved.resolve())
    other = _manifest(tmp_path / "other", "m.csv", "make it blue")
    with pytest.raises(KiwiUserError, match="already registered with a different manifest") as refused:
        store.register_batch("b1", other)
    assert "\n" not in str(refused.value) and "--replace" in str(refused.value)
    assert store.batch_manifest("b1") == moved.resolve()
    assert store.register_batch("b1", other, replace=True)["sha256"] == _sha(other)
    assert store.batch_manifest("b1") == other.resolve()
    (store.root_path / "registry" / ".b2.x1y2z3.json").write_text("{")  # another process mid-write
    assert store.batches() == ["b1"]
