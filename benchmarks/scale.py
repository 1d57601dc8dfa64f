"""The whole data path at growing N: does the cost per pair stay flat, and what piles up under KIWI_HOME?

For each N (default 100, 1,000 and 10,000) it makes a fresh KIWI_HOME, generates N synthetic pairs
at the tiny model's size (128x224, 17 frames), and runs the real CLI as a user would, one command
per stage so every stage's wall time, CPU time and peak RSS are its own:

    ingest         `kiwi ingest MANIFEST --batch sN` (raw_edit_pairs + normalized_clips + checks)
    edit_regions   `kiwi materialize --select edit_regions --batch sN`
    references     `kiwi materialize --select reference_images --batch sN`
    quadruplets    `kiwi materialize --select quadruplets --batch sN`
    features       `kiwi materialize --select training_features ...` when that asset exists

and then times `kiwi dvc status`. Per stage it reports seconds per pair (wall and CPU), peak RSS of
the command's process tree (the largest child, from wait4), and after the run the files and bytes
under KIWI_HOME with the DVC remote counted separately, against the raw input's bytes. CPU time
counts the command's own processes: work shipped to Ray workers (RefVIE stages of 64+ pairs) is
not in it, so read their wall time.

    .venv/bin/python benchmarks/scale.py [--n 100 1000 10000] [--frames 17] [--height 128] [--width 224]
                                         [--ray-address HOST:PORT] [--clip-storage jpeg|video] [--copy-at-size]
                                         [--feature-precision float32|bfloat16] [--warm]
                                         [--out benchmarks/results/scale.json]

`--ray-address` runs the same commands with KIWI_RAY_ADDRESS set (a cluster started with
`ray start --head` plus a worker), so the cluster path's throughput sits next to the in-process one.
Prints a markdown table (paste it into benchmarks/measured/) and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIWI = [sys.executable, "-m", "kiwi_platform"]


def _run(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    """Run one command; wall seconds, CPU seconds (user+sys of its children) and peak RSS in MiB."""
    started = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    failed = os.waitstatus_to_exitcode(status) != 0
    if failed:
        print(f"  {' '.join(cmd[2:5])} failed (exit {os.waitstatus_to_exitcode(status)}); see {log}", flush=True)
    # ru_maxrss of wait4 is the largest RSS of the process and its waited-for descendants (KiB on Linux)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "failed": failed,
    }


def _tree(path: Path, skip: Path | None = None, seen: set | None = None) -> tuple[int, int]:
    """Files and bytes under `path` (not following links, leaving out `skip`), each inode once: the
    DVC cache hardlinks the workspace's files, and a link costs neither a file's storage nor its bytes.
    Pass one `seen` set to several calls to count each inode in the first part that holds it."""
    seen = set() if seen is None else seen
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(path):
        if skip is not None and Path(dirpath) == skip.parent:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            files += 1
            size += st.st_size
    return files, size


def _manifest_media(manifest: Path) -> dict[str, int]:
    """Files and bytes of the media the manifest names (not the generator's ground truth beside them)."""
    import csv

    paths = set()
    with open(manifest, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            paths.update(manifest.parent / row[c] for c in ("src_video", "tgt_video", "ref_image") if row.get(c))
    return {"files": len(paths), "bytes": sum(p.stat().st_size for p in paths)}


def _has_features() -> bool:
    return (ROOT / "assets" / "features.py").is_file()


def measure(n: int, args: argparse.Namespace) -> dict:
    base = Path(tempfile.mkdtemp(prefix=f"kiwi-scale-{n}-"))
    home = base / "home"
    env = {
        **os.environ,
        "KIWI_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "PYTHONUNBUFFERED": "1",
    }
    if args.ray_address:
        env["KIWI_RAY_ADDRESS"] = args.ray_address
    log = base / "commands.log"
    raw = base / "raw"
    synth = [
        *KIWI,
        "synth",
        "--out",
        str(raw),
        "--n",
        str(n),
        "--frames",
        str(args.frames),
        "--height",
        str(args.height),
        "--width",
        str(args.width),
    ]
    result: dict = {"n": n, "synth": _run(synth, env, log)}
    result["raw_input"] = _manifest_media(raw / "manifest.csv")
    batch = f"s{n}"
    short = base / "run-config.yaml"  # the default 81-frame minimum would quarantine every short clip
    short.write_text(
        f"ops:\n  raw_edit_pairs: {{config: {{min_frames: {args.frames}}}}}\n"
        f"  normalized_clips: {{config: {{num_frames: {args.frames}, clip_storage: {args.clip_storage}, "
        f"reference_originals: {str(not args.copy_at_size).lower()}}}}}\n"
    )
    stages = {
        "ingest": [*KIWI, "ingest", str(raw / "manifest.csv"), "--batch", batch, "--config", str(short)],
        "edit_regions": [*KIWI, "materialize", "--select", "edit_regions", "--batch", batch],
        "references": [*KIWI, "materialize", "--select", "reference_images", "--batch", batch],
        "quadruplets": [*KIWI, "materialize", "--select", "quadruplets", "--batch", batch],
    }
    # the cache covers the training mixes, so they come first (not timed as a stage)
    if _has_features() and not args.no_features:
        stages["manifests"] = [*KIWI, "materialize", "--select", "training_manifests"]
        features = base / "features-config.yaml"
        features.write_text(f"ops:\n  training_features: {{config: {{precision: {args.feature_precision}}}}}\n")
        stages["features"] = [*KIWI, "materialize", "--select", "training_features", "--config", str(features)]
    if args.warm:  # every command below is forked from it; their CPU and RSS are the worker's, not ours
        result["worker_start"] = _run([*KIWI, "worker", "start"], env, log)
    try:
        for name, cmd in stages.items():
            print(f"N={n}: {name} ...", flush=True)
            result[name] = _run(cmd, env, log)
            if args.warm:
                result[name].update(cpu_s=float("nan"), peak_rss_mib=float("nan"))
    finally:
        if args.warm:
            _run([*KIWI, "worker", "stop"], env, log)
    status = _run([*KIWI, "dvc", "status"], env, log)
    result["dvc_status_s"] = status["wall_s"]
    result["dvc_status_cpu_s"] = status["cpu_s"]
    remote = Path(env.get("KIWI_DVC_REMOTE", home / "dvc-remote"))
    files, size = _tree(home, skip=remote)
    result["kiwi_home"] = {"files": files, "bytes": size}
    seen: set = set()  # where the bytes are: each inode counted in the first part holding it
    data = home / "data"
    parts = {"batches": data / "batches", "features": data / "training", "dvc cache": data / ".dvc" / "cache"}
    result["parts"] = {
        name: dict(zip(("files", "bytes"), _tree(where, seen=seen), strict=True)) for name, where in parts.items()
    }
    result["dvc_remote"] = dict(zip(("files", "bytes"), _tree(remote) if remote.is_dir() else (0, 0), strict=True))
    result["home"] = str(home)
    return result


def table(results: list[dict]) -> str:
    stages = [k for k in ("ingest", "edit_regions", "references", "quadruplets", "features") if k in results[0]]
    lines = [
        "| N | "
        + " | ".join(f"{s} s/pair (cpu) · peak MiB" for s in stages)
        + " | files / 50 pairs | bytes / raw | dvc status s |",
        "|---|" + "---|" * (len(stages) + 3),
    ]
    for r in results:
        n = r["n"]
        cells = [
            "failed"
            if r[s]["failed"]
            else f"{r[s]['wall_s'] / n:.3f} ({r[s]['cpu_s'] / n:.3f}) · {r[s]['peak_rss_mib']:.0f}"
            for s in stages
        ]
        files = r["kiwi_home"]["files"] / (n / 50)
        ratio = r["kiwi_home"]["bytes"] / max(r["raw_input"]["bytes"], 1)
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {files:.2f} | {ratio:.2f} | {r['dvc_status_s']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 10000], help="batch sizes to run")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--ray-address", default=None, help="run against this Ray cluster (KIWI_RAY_ADDRESS)")
    parser.add_argument("--clip-storage", choices=["jpeg", "video"], default="jpeg", help="normalized clip layout")
    parser.add_argument(
        "--copy-at-size", action="store_true", help="copy originals that need no resize too (no reference clips)"
    )
    parser.add_argument("--no-features", action="store_true", help="stop after quadruplets (no manifests, features)")
    parser.add_argument("--warm", action="store_true", help="run the commands through a warm worker (kiwi worker)")
    parser.add_argument(
        "--feature-precision", choices=["float32", "bfloat16"], default="float32", help="feature cache storage"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    args = parser.parse_args()
    results = [measure(n, args) for n in args.n]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "cores": os.cpu_count(),
                "ray_address": args.ray_address,
                "clip_storage": args.clip_storage,
                "reference_originals": not args.copy_at_size,
                "feature_precision": args.feature_precision,
                "warm": args.warm,
                "runs": results,
            },
            indent=2,
        )
    )
    print(f"{os.cpu_count()} cores; {args.frames}x{args.height}x{args.width}; ray: {args.ray_address or 'in-process'}")
    print(table(results))
    for r in results:
        raw = max(r["raw_input"]["bytes"], 1)
        where = ", ".join(
            f"{k} {v['bytes'] / 1e6:.1f} MB ({v['bytes'] / raw:.2f}x raw, {v['files']} files)"
            for k, v in r["parts"].items()
        )
        print(f"N={r['n']}: raw input {raw / 1e6:.1f} MB; {where}")
    if len(results) > 1:
        small, big = results[-2], results[-1]
        for s in ("ingest", "edit_regions", "references", "quadruplets", "features"):
            if s in big:
                ratio = (big[s]["wall_s"] / big["n"]) / (small[s]["wall_s"] / small["n"])
                print(f"{s}: cost per pair at N={big['n']} is {ratio:.2f}x that at N={small['n']} (target <= 1.1)")


if __name__ == "__main__":
    main()
