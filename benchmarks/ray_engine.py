"""edit_regions throughput: the in-process loop vs Ray Data (a local Ray, and a loopback cluster).

Generates N synthetic pairs (`kiwi synth`), normalizes them as ingestion does, then grounds the
batch with the same function the asset calls (`ground_batch`) on each engine:

- `local`: the in-process loop (what a small batch gets with `engine: auto`),
- `ray-local`: a Ray started in this process, sized to the machine (`engine: ray`, no address),
- `ray-cluster`: `ray start --head` + one `ray start --address` worker node on 127.0.0.1, used
  through its address as KIWI_RAY_ADDRESS would be (`--cluster-cpus` CPUs per node).

Each Ray engine runs twice: the first (cold) run includes connecting/starting Ray and worker
start-up, the second (warm) is the steady state. All runs must write identical tables (mask
hashes), else the benchmark fails.

    .venv/bin/python benchmarks/ray_engine.py --n 24 [--frames 17 --height 128 --width 224]
        [--cluster-cpus 1] [--skip-cluster]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiwi_platform.engine import EngineSettings  # noqa: E402
from kiwi_platform.refvie.region_table import BackendSpec, ground_batch  # noqa: E402
from kiwi_platform.synth import generate  # noqa: E402
from kiwi_platform.synth.clip_rows import normalized_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def make_batch(root: Path, n: int, frames: int, height: int, width: int) -> pd.DataFrame:
    out = root / "synth"
    generate(out, n, 7, frames=frames, height=height, width=width, image_share=0.0)
    return pd.DataFrame([row for _, row in normalized_rows(out, root, height=height, width=width)])


def run(clips: pd.DataFrame, root: Path, name: str, engine: EngineSettings) -> tuple[float, list[str]]:
    started = time.perf_counter()
    table, rejected = ground_batch(
        clips,
        root,
        root / name,
        grounder=BackendSpec.of("grounder", "diff"),
        segmenter=BackendSpec.of("segmenter", "diff"),
        engine=engine,
    )
    seconds = time.perf_counter() - started
    return seconds, list(table["mask_sha256"]) + [r.pair_id for r in rejected]


@contextlib.contextmanager
def loopback_cluster(cpus: int):
    """Head + one worker node on 127.0.0.1 in a temp dir of their own; killed (only they) on exit."""
    temp_dir = tempfile.mkdtemp(prefix="kb", dir="/tmp")
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_TMPDIR": temp_dir, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    ray = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    common = ["--num-cpus", str(cpus), "--object-store-memory", "100000000", "--node-ip-address", "127.0.0.1"]
    head = [ray, "start", "--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", temp_dir]
    worker = [ray, "start", "--address", f"127.0.0.1:{port}"]
    try:
        subprocess.run(
            [*head, "--ray-client-server-port", str(_free_port()), *common], env=env, check=True, capture_output=True
        )
        subprocess.run([*worker, *common], env=env, check=True, capture_output=True)
        yield f"127.0.0.1:{port}"
    finally:
        import ray as ray_module

        ray_module.shutdown()
        procs = {}
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(temp_dir in a for a in proc.info["cmdline"] or []):
                    procs[proc.pid] = proc
                    procs.update({c.pid: c for c in proc.children(recursive=True)})
        for proc in procs.values():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--cluster-cpus", type=int, default=1)
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    # loopback benchmark clusters run without token auth: Ray 2.60 enables it for a head that finds
    # ~/.ray/auth_token (a local ray.init writes one) but not for the joining worker node
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clips = make_batch(root, args.n, args.frames, args.height, args.width)
        results = []
        seconds, reference = run(clips, root, "local", EngineSettings(engine="local"))
        results.append(("local (in-process loop)", seconds))
        runs = [("ray-local", EngineSettings(engine="ray"), contextlib.nullcontext(""))]
        if not args.skip_cluster:
            runs.append(("ray-cluster", None, loopback_cluster(args.cluster_cpus)))
        for name, settings, cluster in runs:
            with cluster as address:
                settings = settings or EngineSettings(engine="ray", ray_address=address)
                for attempt in ("cold", "warm"):
                    seconds, hashes = run(clips, root, f"{name}-{attempt}", settings)
                    if hashes != reference:
                        raise SystemExit(f"{name} {attempt}: table differs from the in-process one")
                    results.append((f"{name} ({attempt})", seconds))
            if name == "ray-local":
                import ray

                ray.shutdown()
    print(f"edit_regions, {args.n} pairs at {args.height}x{args.width}x{args.frames}, {os.cpu_count()} cores")
    print(f"{'engine':28s} {'seconds':>8s} {'pairs/s':>8s}")
    for name, seconds in results:
        print(f"{name:28s} {seconds:8.2f} {args.n / seconds:8.2f}")
    print("tables identical across engines: yes")


if __name__ == "__main__":
    main()
