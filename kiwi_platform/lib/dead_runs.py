"""Runs whose process died (kill -9, OOM killer, a closed laptop) are failed and their pool slots freed.

A CLI run executes inside the `kiwi` process, so when that process dies the run stays STARTED in
the instance and keeps its `gpu` pool slot: the next training run would wait forever and the
run queue counts it against `max_concurrent_runs`. Every CLI run therefore records its owner
(host, pid and the process's start time, so a recycled pid is not mistaken for it), and each
`kiwi` command that launches runs first fails the runs whose owner is gone and frees their slots.

Runs launched from the UI, a schedule or a sensor execute in a run worker process that the code
server starts (Dagster's DefaultRunLauncher). That launcher cannot tell whether its worker still
lives, so Dagster's run monitoring (`run_monitoring:` in dagster.yaml, run by `dagster-daemon`)
would never fail a killed one. `KiwiRunLauncher` is the same launcher plus that check: the worker
is the pid it logged when it started ("Started process for run (pid: N)"), alive only if a
process with that pid started before that event; a CLI run's worker is its owner (tags above).
The monitoring daemon then marks a dead worker's run failed, frees its pool slots
(`free_slots_after_run_end_seconds`) and the queue starts the next run.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import dagster as dg

HOST_TAG, PID_TAG, STARTED_TAG = "kiwi/host", "kiwi/pid", "kiwi/pid_start"
LIVE_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if not Path("/proc/self/stat").exists():  # no procfs: fall back to "does the pid exist"
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                return "unknown"
            return "unknown"
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 counted after the parenthesised command name


def _process_started_at(pid: int) -> float | None:
    """Epoch seconds at which `pid` started, None when it is gone (or a zombie: dead, not yet reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            return None
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
    except (OSError, IndexError, StopIteration, ValueError):
        return None if Path("/proc/self/stat").exists() else time.time()  # no procfs: cannot tell, assume alive
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of the runs it executes."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), STARTED_TAG: _process_start(os.getpid()) or ""}


def _owner_alive(tags: dict[str, str]) -> bool:
    started = _process_start(int(tags[PID_TAG]))
    return started is not None and started in ("unknown", tags.get(STARTED_TAG, ""))


def reap_dead_runs(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    """Fail this host's CLI runs whose owning process is gone and free their pool slots.

    Returns (run id, one line for the user) per reaped run, so the caller can also close what the
    run had open elsewhere (its MLflow runs)."""
    host, cleaned = socket.gethostname(), []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=LIVE_STATUSES, tags={HOST_TAG: host})):
        if PID_TAG not in run.tags or _owner_alive(run.tags):
            continue
        pid = run.tags[PID_TAG]
        instance.report_run_failed(run, message=f"the kiwi process running it (pid {pid}) is gone; marked failed")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        cleaned.append(
            (
                run.run_id,
                f"run {run.run_id[:8]} ({run.job_name}, pid {pid} is gone): marked failed, its pool slots freed",
            )
        )
    return cleaned


def pool_waits(instance: dg.DagsterInstance, pools: set[str]) -> list[str]:
    """For each pool with no free slot: which runs hold it (one line each), so a waiting run says why."""
    lines = []
    for pool in sorted(pools):
        info = instance.event_log_storage.get_concurrency_info(pool)
        limit = info.slot_count or info.limit
        if limit and len(info.claimed_slots) >= limit:
            holders = ", ".join(sorted({f"{s.run_id[:8]} ({s.step_key})" for s in info.claimed_slots}))
            lines.append(f"waiting for a slot of pool `{pool}` ({limit} slot(s), held by run {holders})")
    return lines


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", socket.gethostname()}
_WORKER_STARTED = ("Started process for run", "Started process for resuming job")


class KiwiRunLauncher(dg.DefaultRunLauncher):
    """Dagster's default launcher with a run worker health check, for run monitoring (see above)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun):
        from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

        if PID_TAG in run.tags:  # a CLI run: its worker is the kiwi process that owns it
            if run.tags.get(HOST_TAG) != socket.gethostname() or _owner_alive(run.tags):
                return CheckRunHealthResult(WorkerStatus.RUNNING, "owner process alive or on another host")
            return CheckRunHealthResult(
                WorkerStatus.FAILED, f"the kiwi process running it (pid {run.tags[PID_TAG]}) is gone"
            )
        worker = self._worker(run)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not local or not started yet")
        pid, logged_at = worker
        started_at = _process_started_at(pid)
        if started_at is not None and started_at <= logged_at + 1.0:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker pid {pid} alive")
        return CheckRunHealthResult(WorkerStatus.FAILED, f"its run worker (pid {pid}) is gone")

    def _worker(self, run: dg.DagsterRun) -> tuple[int, float] | None:
        """(pid, when it logged its start) of the run's latest worker on this host, or None."""
        from dagster._core.storage.tags import GRPC_INFO_TAG

        try:
            host = json.loads(run.tags.get(GRPC_INFO_TAG, "{}")).get("host", "")
        except ValueError:
            host = ""
        if host not in _LOCAL_HOSTS:
            return None  # a code server elsewhere: its pids mean nothing here
        events = self._instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        for event in reversed(events):
            if event.message and event.message.startswith(_WORKER_STARTED):
                pid = event.dagster_event.engine_event_data.metadata.get("pid") if event.dagster_event else None
                if pid is not None:
                    return int(pid.value), event.timestamp
        return None
