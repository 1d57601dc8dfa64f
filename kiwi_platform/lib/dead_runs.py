"""Runs whose process died (kill -9, OOM killer, a closed laptop) are failed and their pool slots freed.

A CLI run executes inside the `kiwi` process, so when that process dies the run stays STARTED in
the instance and keeps its `gpu` pool slot: the next training run would wait forever and the
run queue counts it against `max_concurrent_runs`. Every CLI run therefore records its owner
(host, pid and the process's start time, so a recycled pid is not mistaken for it), and each
`kiwi` command that launches runs first fails the runs whose owner is gone and frees their slots.
"""

from __future__ import annotations

import os
import socket
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


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of the runs it executes."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), STARTED_TAG: _process_start(os.getpid()) or ""}


def _owner_alive(tags: dict[str, str]) -> bool:
    started = _process_start(int(tags[PID_TAG]))
    return started is not None and started in ("unknown", tags.get(STARTED_TAG, ""))


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail this host's CLI runs whose owning process is gone and free their pool slots; one line each."""
    host, cleaned = socket.gethostname(), []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=LIVE_STATUSES, tags={HOST_TAG: host})):
        if PID_TAG not in run.tags or _owner_alive(run.tags):
            continue
        pid = run.tags[PID_TAG]
        instance.report_run_failed(run, message=f"the kiwi process running it (pid {pid}) is gone; marked failed")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        cleaned.append(f"run {run.run_id[:8]} ({run.job_name}, pid {pid} is gone): marked failed, its pool slots freed")
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
