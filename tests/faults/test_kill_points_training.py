"""SIGKILL a real `kiwi materialize` while a training stage writes its checkpoint, and while
`benchmark_results` generates its outputs; the next command reaps the dead run, and rerunning the
same command gets what the uninterrupted run got.

One KIWI_HOME per module, built once with the integration tests' tiny settings (6 synthetic pairs
of 9 frames, 2 training steps per stage, 1 case per synthetic suite) and copied aside before
training and before evaluation. Each test puts the matching copy back at the same path (every
absolute path in the Dagster, MLflow and DVC state stays valid), kills, checks what is visible,
reruns and compares with what the uninterrupted run wrote from the same copy.

The kill comes from tests/faults/kill_at.py; `--run-config` gives the runs the tiny settings the
CLI has no flags for (as the UI's Launchpad would).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiwi_platform.lib.files import sha256_file
from kiwi_platform.training import checkpoint as ckpt
from tests.faults.conftest import Finished, assert_clean, run_together
from tests.integration.conftest import SMALL_RUN_CONFIG
from tests.integration.test_refvie_assets import STAGE_CONFIG

KILL_AT = [sys.executable, "-m", "tests.faults.kill_at"]
BATCH = "b"
RUN_CONFIG = {
    "ops": {
        **SMALL_RUN_CONFIG["ops"],
        "benchmark_suites": {"config": {"n": 1, "frames": 5, "height": 64, "width": 96}},
        **{f"stage{i}_checkpoint": {"config": STAGE_CONFIG} for i in (1, 2, 3)},
    }
}
UPSTREAM = "group:ingestion or group:refvie or key:training_manifests or key:benchmark_suites"
STAGES = "key:stage1_checkpoint or key:stage2_checkpoint or key:stage3_checkpoint"
TRAIN = ("materialize", "--select", "stage1_checkpoint")
EVALUATE = ("materialize", "--select", "key:benchmark_results or key:promoted_model")
# killed as the 2nd checkpoint (step 2 of 2) is being written: weights, optimizer, scheduler and
# RNG files are in its temp folder, state.json and MANIFEST.json are not
CHECKPOINT_WRITE = ("kiwi_platform.training.checkpoint:write_state", 2)
# killed as the 2nd case of the candidate starts generating: the 1st case's output is written
SECOND_CASE = ("kiwi_platform.evaluation.generate:generate_case", 2)


@dataclass
class Home:
    """The module's KIWI_HOME, its copies before training / evaluation, and the uninterrupted results."""

    path: Path
    run_config: Path
    before_training: Path
    before_evaluation: Path
    training: dict
    evaluation: dict


def _kiwi(home: Path, run_config: Path, *args: str, kill: tuple[str, int] = ("-", 0)) -> Finished:
    """`kiwi ARGS` with the tiny run config; with `kill`, SIGKILLed as call N of that function starts."""
    target, nth = kill
    [done] = run_together([(target, str(nth), *args)], home, argv0=[*KILL_AT, "--run-config", str(run_config)])
    return done


def _ok(done: Finished) -> None:
    assert_clean(done)
    assert done.returncode == 0, done.describe()


def _restore(home: Home, copy: Path) -> None:
    shutil.rmtree(home.path)
    shutil.copytree(copy, home.path, symlinks=True)


@contextlib.contextmanager
def _instance(home: Path) -> Iterator:
    """A fresh Dagster instance on `home` (its dagster.yaml reads DAGSTER_HOME), disposed on exit."""
    import dagster as dg

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home / "dagster"))
        instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        try:
            yield instance
        finally:
            instance.dispose()


def _metadata(home: Path, asset: str) -> dict | None:
    """The latest materialization's metadata of `asset`, None when it was never materialized."""
    import dagster as dg

    with _instance(home) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None:
        return None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _mlflow(home: Path, sql: str) -> list[tuple]:
    """Rows of a query on the MLflow database, read-only with a connection of its own (a cached MLflow
    store would still see the database file this test replaced); none while MLflow was never used."""
    path = home / "mlflow.db"
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute(sql).fetchall()


def _champion(home: Path) -> str | None:
    """The version behind `models:/kiwi-edit@champion`."""
    rows = _mlflow(home, "SELECT version FROM registered_model_aliases WHERE name = 'kiwi-edit' AND alias = 'champion'")
    return str(rows[0][0]) if rows else None


def _versions(home: Path) -> list[str]:
    """Every registered version of `kiwi-edit`."""
    return sorted(str(v) for (v,) in _mlflow(home, "SELECT version FROM model_versions WHERE name = 'kiwi-edit'"))


def _stage1(home: Path) -> dict:
    """What the registered stage-1 model is: every checkpoint file's sha256 (kiwi-checkpoint.json), the
    trained weights' digest and the loss history."""
    meta = _metadata(home, "stage1_checkpoint")
    assert meta is not None and meta.get("model_version"), "stage1_checkpoint registered no model"
    folder = Path(meta["checkpoint_dir"])
    result = json.loads((folder.parent.parent / "train_result.json").read_text())
    return {
        "checkpoint files": json.loads((folder / "kiwi-checkpoint.json").read_text())["files"],
        "weights_sha256": meta["weights_sha256"],
        "losses": result["losses"],
        "val_losses": result["val_losses"],
    }


VOLATILE = {"timings", "generated", "reused"}  # how long it took, and how much a rerun could reuse


def _evaluation(home: Path) -> dict:
    """The candidate's evaluation: results.json and the output sidecars (without timings), and the sha256 of
    every other visible file (generated media, cases.csv, tables, images), plus the recorded summary and alias."""
    [folder] = (home / "evaluations").iterdir()
    files, sidecars = {}, {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = str(path.relative_to(folder))
        if rel == "results.json":
            continue
        if path.suffix == ".json" and rel.startswith("outputs/"):
            sidecars[rel] = {k: v for k, v in json.loads(path.read_text()).items() if k != "seconds"}
        else:
            files[rel] = sha256_file(path)
    results = json.loads((folder / "results.json").read_text())
    meta = _metadata(home, "benchmark_results")
    assert meta is not None, "benchmark_results was not materialized"
    return {
        "results.json": {k: v for k, v in results.items() if k not in VOLATILE},
        "sidecars": sidecars,
        "files": files,
        "summary": meta["summary"],
        "champion": _champion(home),
    }


@pytest.fixture(scope="module")
def home(tmp_path_factory, demo_dir) -> Home:
    """Ingest, RefVIE, training manifests and suites; copy; train (uninterrupted reference); copy;
    evaluate and promote (uninterrupted reference)."""
    from kiwi_platform.synth import generate

    root = tmp_path_factory.mktemp("kill-training")
    generate(root / "synth", 6, seed=3, frames=9, height=64, width=96, image_share=0.34, demo_dir=demo_dir)
    run_config = root / "run-config.json"
    run_config.write_text(json.dumps(RUN_CONFIG))
    path = root / "kiwi-home"
    _ok(_kiwi(path, run_config, "ingest", str(root / "synth" / "manifest.csv"), "--batch", BATCH, "--select", UPSTREAM))
    before_training = root / "before-training"
    shutil.copytree(path, before_training, symlinks=True)
    _ok(_kiwi(path, run_config, "materialize", "--select", STAGES))
    training = _stage1(path)
    before_evaluation = root / "before-evaluation"
    shutil.copytree(path, before_evaluation, symlinks=True)
    assert _champion(path) is None
    _ok(_kiwi(path, run_config, *EVALUATE))
    evaluation = _evaluation(path)
    assert evaluation["champion"] == "3", evaluation["champion"]  # the first evaluated model is promoted
    return Home(path, run_config, before_training, before_evaluation, training, evaluation)


def _killed_run(home: Path) -> tuple[str, str]:
    """(run id, pid) of the one run left STARTED by the killed process, checked to still hold a `gpu` slot."""
    import dagster as dg

    with _instance(home) as instance:
        [run] = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        holders = {slot.run_id for slot in instance.event_log_storage.get_concurrency_info("gpu").claimed_slots}
    assert holders == {run.run_id}, holders  # what would block every later training or evaluation run
    return run.run_id, run.tags["kiwi/pid"]


def _reaped(home: Path, rerun: Finished, run_id: str, pid: str) -> None:
    """The rerun said in one line that it failed the dead run; the run is failed and no `gpu` slot is held."""
    import dagster as dg

    lines = [line for line in rerun.stderr.splitlines() if "marked failed" in line]
    assert len(lines) == 1 and run_id[:8] in lines[0] and f"pid {pid}" in lines[0], rerun.describe()
    with _instance(home) as instance:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("gpu").claimed_slots == []


@pytest.mark.slow
def test_kill_during_checkpoint_write_then_rerun_resumes_to_the_same_model(home):
    """SIGKILL `kiwi materialize --select stage1_checkpoint` while it writes its step-2 checkpoint: only
    complete checkpoints are visible (step 1; the interrupted write stays a hidden temp folder), nothing
    is registered, and the dead run holds the `gpu` slot. The same command then frees the slot in one
    line, resumes from step 1 and registers a model whose kiwi-checkpoint.json (every file's sha256),
    weights digest and loss history equal the uninterrupted run's. The killed stage's MLflow runs, left
    RUNNING by the kill, are marked KILLED by that command."""
    _restore(home, home.before_training)
    killed = _kiwi(home.path, home.run_config, *TRAIN, kill=CHECKPOINT_WRITE)
    assert killed.returncode == -9, killed.describe()

    [output] = (home.path / "training").glob("stage1-*")
    root = output / "checkpoints"
    visible = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    assert visible == ["latest", "step-1"], visible
    assert ckpt.verify(root / "step-1") is None
    assert (root / "latest").read_text().strip() == "step-1"
    partial = [p for p in root.iterdir() if p.name.startswith(".")]
    assert partial and not any((p / ckpt.MANIFEST).exists() for p in partial)  # it died mid-write
    assert ckpt.find_resumable(root) == (root / "step-1", [])  # the temp folder is not a candidate
    assert not (output / "final").exists() and not (output / "runs").exists()
    assert _metadata(home.path, "stage1_checkpoint") is None and _versions(home.path) == []
    run_id, pid = _killed_run(home.path)

    rerun = _kiwi(home.path, home.run_config, *TRAIN)
    _ok(rerun)
    _reaped(home.path, rerun, run_id, pid)
    statuses = _mlflow(
        home.path,
        "SELECT r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
        f"WHERE t.key = 'kiwi.dagster_run_id' AND t.value = '{run_id}'",
    )
    assert ("KILLED",) in statuses and ("RUNNING",) not in statuses, statuses
    assert "marked KILLED" in rerun.stderr
    assert _metadata(home.path, "stage1_checkpoint")["resumed_from"] == str(root / "step-1")
    assert _versions(home.path) == ["1"]  # one version: the killed run registered nothing
    assert _stage1(home.path) == home.training
    assert all(ckpt.verify(p) is None for p in ckpt.checkpoints(root))


@pytest.mark.slow
def test_kill_during_evaluation_then_rerun_gives_the_same_results(home):
    """SIGKILL `kiwi materialize --select 'key:benchmark_results or key:promoted_model'` as the 2nd case
    is generated: no results.json or cases.csv, the one finished output is whole (and byte-identical
    to the uninterrupted run's), no champion was set, and the dead run holds the `gpu` slot. The same
    command then frees the slot in one line and gives the uninterrupted run's outputs, scores, summary
    and champion."""
    _restore(home, home.before_evaluation)
    killed = _kiwi(home.path, home.run_config, *EVALUATE, kill=SECOND_CASE)
    assert killed.returncode == -9, killed.describe()

    [folder] = (home.path / "evaluations").iterdir()
    visible = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert not visible & {"results.json", "cases.csv"}, visible
    [sidecar] = [name for name in visible if name.endswith(".json")]
    output = str(Path(sidecar).with_name(json.loads((folder / sidecar).read_text())["file"]))
    assert visible == {sidecar, output}, visible
    assert sha256_file(folder / output) == home.evaluation["files"][output]
    assert _metadata(home.path, "benchmark_results") is None
    assert _champion(home.path) is None  # the killed run promoted nothing
    run_id, pid = _killed_run(home.path)

    rerun = _kiwi(home.path, home.run_config, *EVALUATE)
    _ok(rerun)
    _reaped(home.path, rerun, run_id, pid)
    assert _evaluation(home.path) == home.evaluation
