"""A real two-node Ray cluster on loopback, and a small normalized batch to ground on it.

The cluster is what `KIWI_RAY_ADDRESS` points at in production, made small: `ray start --head`
(1 CPU, 100 MB object store, no dashboard) plus one `ray start --address` worker node, both in a
short temp dir of their own, with the repository on PYTHONPATH so workers import the test row
functions. Teardown kills exactly the processes these two commands started (found from the
temp dir, never `ray stop`, which would stop every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import psutil
import pytest

from kiwi_platform.synth import generate
from kiwi_platform.synth.clip_rows import normalized_rows

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
#: 6 pairs at 96x160x9: every edit type once, small enough that a batch takes seconds
N, FRAMES, HEIGHT, WIDTH = 6, 9, 96, 160


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster_processes(temp_dir: str) -> list[psutil.Process]:
    """Every process of the cluster living in `temp_dir` (its daemons, and their children: the workers)."""
    roots = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(temp_dir in arg for arg in proc.info["cmdline"] or []):
                roots.append(proc)
    found = {p.pid: p for p in roots}
    for proc in roots:
        with contextlib.suppress(psutil.Error):
            found.update({c.pid: c for c in proc.children(recursive=True)})
    return list(found.values())


@pytest.fixture(scope="session")
def ray_cluster() -> str:
    """The address (127.0.0.1:port) of a head + one worker node Ray cluster, stopped after the session."""
    temp_dir = tempfile.mkdtemp(prefix="kr", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    # a loopback-only cluster without token auth: Ray 2.60 turns auth on for a head that finds
    # ~/.ray/auth_token (any earlier local ray.init writes one) but not for a joining worker node
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")  # the test process, the driver, too
    mp.delenv("RAY_ADDRESS", raising=False)
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_TMPDIR": temp_dir, "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--object-store-memory", "100000000", "--node-ip-address", "127.0.0.1"]
    head = [RAY, "start", "--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", temp_dir]
    head += ["--ray-client-server-port", str(free_port()), "--disable-usage-stats", *common]
    worker = [RAY, "start", "--address", address, "--disable-usage-stats", *common]
    try:
        for cmd in (head, worker):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
            if done.returncode:
                tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
                pytest.fail(f"{' '.join(cmd[:3])} failed:\n" + "\n".join(tail), pytrace=False)
        yield address
    finally:
        with contextlib.suppress(Exception):
            import ray

            ray.shutdown()
        for proc in _cluster_processes(temp_dir):
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
        mp.undo()


@pytest.fixture(scope="session")
def clip_batch(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> tuple[pd.DataFrame, Path]:
    """A `normalized_clips`-shaped table of N synthetic pairs and the root its paths are relative to."""
    root = tmp_path_factory.mktemp("engine")
    out = root / "synth"
    generate(out, N, seed=5, frames=FRAMES, height=HEIGHT, width=WIDTH, image_share=0.0, demo_dir=demo_dir)
    rows = [row for _, row in normalized_rows(out, root, height=HEIGHT, width=WIDTH)]
    # a pair with no edit at all: target = source, so grounding rejects it (qc_no_edit)
    same = {**rows[0], "pair_id": "no-edit", "row": len(rows) + 1, "tgt_clip": rows[0]["src_clip"]}
    return pd.DataFrame([*rows, same]), root
