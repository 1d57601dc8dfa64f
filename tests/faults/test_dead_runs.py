"""A run whose `kiwi` process was SIGKILLed does not hold its pool slot forever.

The next command that launches runs fails the dead run, frees its `gpu` slot, says so in one line,
and then runs; a run that must wait for a live holder says what it waits for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.conftest import kiwi_env

SCRIPT = """
import sys, time
from pathlib import Path
import dagster as dg
from kiwi_platform.env import prepare_environment
prepare_environment()
from kiwi_platform.run_logger import kiwi_console
from kiwi_platform.runner import materialize

marker, seconds = Path(sys.argv[1]), float(sys.argv[2])

@dg.asset(pool="gpu")
def hold_gpu() -> None:
    marker.write_text("holding")
    time.sleep(seconds)

[outcome] = materialize("hold_gpu", defs=dg.Definitions(assets=[hold_gpu], loggers={"kiwi_console": kiwi_console}))
print("OK" if outcome.ok else f"FAILED {outcome.errors}")
"""


def _start(tmp_path: Path, home: Path, name: str, seconds: float) -> tuple[subprocess.Popen, Path, Path]:
    script, marker, err = tmp_path / "hold_gpu.py", tmp_path / f"{name}.marker", tmp_path / f"{name}.err"
    script.write_text(SCRIPT)
    with open(err, "w") as fe:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(marker), str(seconds)],
            env=kiwi_env(home),
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            stderr=fe,
            text=True,
        )
    return proc, marker, err


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"holder exited early ({proc.returncode})"
        assert time.monotonic() < deadline, "the holding run never started"
        time.sleep(0.2)


@pytest.mark.slow
def test_killed_run_is_failed_and_its_gpu_slot_freed_by_the_next_command(tmp_path, monkeypatch):
    """SIGKILL a CLI run holding the `gpu` slot; the next run marks it failed, frees the slot in one
    stderr line naming the dead pid, and completes instead of waiting forever."""
    import dagster as dg

    home = tmp_path / "home"
    zombie, marker, _ = _start(tmp_path, home, "zombie", 600)
    _wait_for(marker, zombie)
    os.kill(zombie.pid, signal.SIGKILL)
    zombie.wait(timeout=30)

    nxt, marker2, err2 = _start(tmp_path, home, "next", 0)
    out, _ = nxt.communicate(timeout=240)
    stderr = err2.read_text()
    assert nxt.returncode == 0 and out.strip() == "OK", stderr[-3000:]
    assert marker2.exists()
    cleaned = [line for line in stderr.splitlines() if "marked failed" in line]
    assert len(cleaned) == 1 and f"pid {zombie.pid}" in cleaned[0], stderr[-3000:]

    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        statuses = sorted(r.status.value for r in instance.get_runs())
        info = instance.event_log_storage.get_concurrency_info("gpu")
    finally:
        instance.dispose()
    assert statuses == ["FAILURE", "SUCCESS"]
    assert info.claimed_slots == []


@pytest.mark.slow
def test_a_run_waiting_for_a_live_holder_says_what_it_waits_for(tmp_path):
    """While a live run holds the `gpu` slot, a second run prints which run holds the pool, is not
    reaped (its owner is alive), and completes once the holder finishes."""
    home = tmp_path / "home"
    holder, marker, _ = _start(tmp_path, home, "holder", 8)
    _wait_for(marker, holder)
    waiter, marker2, err2 = _start(tmp_path, home, "waiter", 0)
    out_w, _ = waiter.communicate(timeout=240)
    out_h, _ = holder.communicate(timeout=240)
    stderr = err2.read_text()
    assert (holder.returncode, out_h.strip()) == (0, "OK")
    assert (waiter.returncode, out_w.strip()) == (0, "OK"), stderr[-3000:]
    assert "waiting for a slot of pool `gpu`" in stderr and "held by run" in stderr, stderr[-3000:]
    assert "marked failed" not in stderr
