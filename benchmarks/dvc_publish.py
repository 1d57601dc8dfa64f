"""DVC cost of one asset publish (`DvcRepo.track`: add + commit pointer + push), and how it grows.

Why: every data asset ends in `DvcRepo.track`, once per asset per batch, so its fixed cost is paid
five times per batch and its growth with the number of tracked folders makes many batches cost
more than their data. Target: <= 1 s per publish, flat in the number of tracked `.dvc` files.

    .venv/bin/python benchmarks/dvc_publish.py [--publishes 5] [--tracked 0,300] [--files 8] [--kib 256]

Each scenario is a fresh data repo (real git + DVC + local remote in a temp dir) holding `--tracked`
folders already tracked, then `--publishes` new asset folders of `--files` files published one by
one in this process, as a `kiwi ingest` run does. It reports wall seconds and CPU seconds (this
process plus its child processes) per publish, the first publish (DVC import, remote set-up) apart
from the steady state, and the data repo's bytes on disk (workspace + cache, hardlinks counted
once; the DVC remote not counted) per published byte: 2.0 when the cache holds a second copy. Prints a table and writes benchmarks/results/dvc_publish.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiwi_platform.resources.dvc import DvcRepo  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "dvc_publish.json"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _fill(folder: Path, files: int, kib: int, seed: str) -> None:
    """An asset folder like a batch's: a few binary files plus a table, distinct content per folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        block = f"{seed}/{i}/".encode() * (kib * 1024 // max(1, len(f"{seed}/{i}/")) + 1)
        (folder / f"clip_{i:03d}.bin").write_bytes(block[: kib * 1024])
    (folder / "table.parquet").write_bytes(f"table of {seed}".encode())


def _disk_bytes(root: Path) -> int:
    """Bytes the data repo (workspace + DVC cache, not .git) holds on disk: each inode counted once."""
    seen, total = set(), 0
    for p in root.rglob("*"):
        if ".git" in p.relative_to(root).parts[:1] or not p.is_file() or p.is_symlink():
            continue
        st = p.stat()
        if st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_size
    return total


def _pretrack(repo: DvcRepo, n: int, files: int) -> None:
    """`n` folders already tracked and committed, made in one DVC call (set-up, not measured)."""
    if n <= 0:
        return
    from dvc.repo import Repo

    targets = []
    for i in range(n):
        folder = repo.root_path / "batches" / f"old{i:05d}" / "asset"
        _fill(folder, min(files, 2), 4, f"old{i}")
        targets.append(str(folder.relative_to(repo.root_path)))
    cwd = os.getcwd()
    try:
        os.chdir(repo.root_path)
        with Repo(str(repo.root_path)) as dvc_repo:
            dvc_repo.add(targets)
    finally:
        os.chdir(cwd)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", f"{n} tracked folders")


def scenario(tracked: int, publishes: int, files: int, kib: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="kiwi-dvc-bench-") as tmp:
        repo = DvcRepo(root=str(Path(tmp) / "data"), remote_url=str(Path(tmp) / "remote"))
        repo.ensure()
        _pretrack(repo, tracked, files)
        walls, cpus = [], []
        for i in range(publishes):
            folder = repo.root_path / "batches" / f"new{i:03d}" / "asset"
            _fill(folder, files, kib, f"new{i}")
            c0, t0 = _cpu(), time.perf_counter()
            repo.track(folder, f"publish {i}")
            walls.append(time.perf_counter() - t0)
            cpus.append(_cpu() - c0)
        published = sum(f.stat().st_size for f in (repo.root_path / "batches").rglob("*") if f.is_file())
        steady = walls[1:] or walls
        return {
            "tracked_before": tracked,
            "publishes": publishes,
            "files_per_folder": files + 1,
            "kib_per_file": kib,
            "first_wall_s": round(walls[0], 3),
            "steady_wall_s_median": round(statistics.median(steady), 3),
            "steady_wall_s_max": round(max(steady), 3),
            "steady_cpu_s_median": round(statistics.median(cpus[1:] or cpus), 3),
            "disk_per_published_byte": round(_disk_bytes(repo.root_path) / published, 2),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--publishes", type=int, default=5)
    ap.add_argument("--tracked", default="0,300", help="comma-separated counts of already-tracked folders")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--kib", type=int, default=256)
    args = ap.parse_args()
    rows = [scenario(int(n), args.publishes, args.files, args.kib) for n in args.tracked.split(",")]
    header = f"{'tracked':>8} {'first s':>8} {'steady s':>9} {'max s':>7} {'cpu s':>7} {'disk/data':>10}"
    print(header)
    for r in rows:
        print(
            f"{r['tracked_before']:>8} {r['first_wall_s']:>8.3f} {r['steady_wall_s_median']:>9.3f} "
            f"{r['steady_wall_s_max']:>7.3f} {r['steady_cpu_s_median']:>7.3f} {r['disk_per_published_byte']:>10.2f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
