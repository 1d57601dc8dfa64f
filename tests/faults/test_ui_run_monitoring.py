"""A killed run worker of a run launched through the queue (UI, schedule, sensor) does not block forever.

The real `dagster-daemon` on a temp DAGSTER_HOME with the project's dagster.yaml (KiwiRunLauncher,
run monitoring, max_concurrent_runs 2, `gpu` pool of 1); only the monitoring poll interval and the
slot-freeing delay are shortened so the test takes a minute, not several. Runs are submitted with
`dagster job launch`, which queues them exactly as the UI's Launch button does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kiwi_platform.settings import PROJECT_ROOT
from tests.faults.conftest import kiwi_env

CODE = """
import os, time
from pathlib import Path
import dagster as dg

MARKERS = Path(os.environ["KIWI_TEST_MARKERS"])


def _hold(context) -> None:
    (MARKERS / context.run.run_id).write_text(str(os.getpid()))  # in-process executor: the run worker
    time.sleep(float(context.run.tags.get("hold_s", "0")))


@dg.asset(pool="gpu")
def hold_gpu(context: dg.AssetExecutionContext) -> None:
    _hold(context)


@dg.asset
def hold_place(context: dg.AssetExecutionContext) -> None:
    _hold(context)


defs = dg.Definitions(
    assets=[hold_gpu, hold_place],
    jobs=[
        dg.define_asset_job("gpu_job", [hold_gpu], executor_def=dg.in_process_executor),
        dg.define_asset_job("place_job", [hold_place], executor_def=dg.in_process_executor),
    ],
)
"""
DAGSTER = Path(sys.executable).parent


def _instance_yaml(home: Path) -> None:
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert config["run_launcher"]["class"] == "KiwiRunLauncher" and config["run_monitoring"]["enabled"]
    config["run_monitoring"].update(poll_interval_seconds=2, free_slots_after_run_end_seconds=1)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def _launch(workspace: Path, env: dict, job: str, hold_s: int) -> str:
    tags = json.dumps({"hold_s": str(hold_s)})
    proc = subprocess.run(
        [str(DAGSTER / "dagster"), "job", "launch", "-w", str(workspace), "-j", job, "--tags", tags],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _wait(what: str, condition, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_killed_queued_run_workers_are_failed_their_slots_freed_and_the_queue_moves(tmp_path, monkeypatch):
    """Two queued runs fill max_concurrent_runs (one holds the `gpu` slot) and a third gpu run waits
    in the queue; SIGKILL both run workers: both runs end failed (the code server that started them
    notices, or else the monitoring daemon's worker check), the daemon frees the dead run's `gpu`
    slot (without run monitoring the third run would wait for it forever), and the queued run then
    starts and succeeds."""
    import dagster as dg

    home, markers = tmp_path / "dagster", tmp_path / "markers"
    markers.mkdir()
    _instance_yaml(home)
    (tmp_path / "holders.py").write_text(CODE)
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_file": str(tmp_path / "holders.py")}]}))
    env = {**kiwi_env(tmp_path / "kiwi"), "DAGSTER_HOME": str(home), "KIWI_TEST_MARKERS": str(markers)}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    log = open(tmp_path / "daemon.log", "w")
    daemon = subprocess.Popen(
        [str(DAGSTER / "dagster-daemon"), "run", "-w", str(workspace)], env=env, stdout=log, stderr=log, cwd=tmp_path
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        _launch(workspace, env, "gpu_job", 600)
        _launch(workspace, env, "place_job", 600)
        _wait("both holders to run", lambda: len(list(markers.iterdir())) == 2)
        _launch(workspace, env, "gpu_job", 0)
        runs = {r.run_id: r for r in instance.get_runs()}
        holders = [run_id for run_id in runs if (markers / run_id).exists()]
        [waiting] = [run_id for run_id in runs if run_id not in holders]
        time.sleep(5)  # several monitoring and queue ticks with both holders alive
        assert instance.get_run_by_id(waiting).status == dg.DagsterRunStatus.QUEUED
        assert all(instance.get_run_by_id(r).status == dg.DagsterRunStatus.STARTED for r in holders)
        pids = {run_id: int((markers / run_id).read_text()) for run_id in holders}
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)

        done = _wait("the queued run to succeed", lambda: instance.get_run_by_id(waiting).is_finished)
        assert done and instance.get_run_by_id(waiting).status == dg.DagsterRunStatus.SUCCESS, (
            tmp_path / "daemon.log"
        ).read_text()[-3000:]
        for run_id in pids:
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        _wait(
            "the gpu slot to be free", lambda: not instance.event_log_storage.get_concurrency_info("gpu").claimed_slots
        )
    finally:
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
        instance.dispose()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_run_worker_health_check_fails_runs_whose_worker_is_gone(tmp_path, monkeypatch):
    """KiwiRunLauncher's check, which the monitoring daemon relies on when nobody else notices (the
    code server that started the worker died too): a queued run's worker that logged its pid is
    RUNNING while that process lives and FAILED once it is gone; a CLI run is judged by its owner
    tags; a worker on another host is never failed from here."""
    import socket

    import dagster as dg
    from dagster._core.events import EngineEventData
    from dagster._core.launcher import WorkerStatus
    from dagster._core.storage.tags import GRPC_INFO_TAG

    from kiwi_platform.lib.dead_runs import HOST_TAG, PID_TAG, STARTED_TAG, KiwiRunLauncher

    home = tmp_path / "dagster"
    _instance_yaml(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.from_config(str(home))
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    job = dg.GraphDefinition("g").to_job()
    try:
        launcher = instance.run_launcher
        assert isinstance(launcher, KiwiRunLauncher) and launcher.supports_check_run_worker_health

        def worker_run(host: str, pid: int) -> dg.DagsterRun:
            run = instance.create_run_for_job(job, tags={GRPC_INFO_TAG: json.dumps({"host": host})})
            instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
            return run

        assert launcher.check_run_worker_health(worker_run("localhost", alive.pid)).status == WorkerStatus.RUNNING
        dead = _dead_pid()
        result = launcher.check_run_worker_health(worker_run("localhost", dead))
        assert result.status == WorkerStatus.FAILED and f"pid {dead}" in result.msg
        assert launcher.check_run_worker_health(worker_run("gpu-node-7", dead)).status == WorkerStatus.RUNNING
        owner = {HOST_TAG: socket.gethostname(), PID_TAG: str(dead), STARTED_TAG: "1"}
        assert (
            launcher.check_run_worker_health(instance.create_run_for_job(job, tags=owner)).status == WorkerStatus.FAILED
        )
    finally:
        alive.kill()
        alive.wait()
        instance.dispose()
