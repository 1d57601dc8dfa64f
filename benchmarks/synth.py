"""Synthetic-set generation speed (`kiwi synth`) at the default sizes.

What it measures: wall-clock and CPU seconds for `generate(out, n)` at the CLI defaults (24 pairs,
81 frames, 256x448, a quarter of them 1-frame images), pairs per second, seconds per video pair
and per image pair (from the progress callback), and the machine's load average, so a slow
figure on a busy machine can be told apart from a regression. The median of --repeat runs is
reported; every run writes into a fresh temp folder.

Reference figure (formerly a test, tests/synth/test_speed.py): 24 default pairs in well under a
minute, about 15 s measured on 1-2 cores. The --budget is printed as a verdict, never enforced.

    .venv/bin/python benchmarks/synth.py [--n 24] [--frames 81] [--height 256] [--width 448] [--repeat 1]

Prints a table and writes benchmarks/results/synth.json (git-ignored).
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

from kiwi_platform.lib.files import write_text_atomic  # noqa: E402
from kiwi_platform.synth import generate, load_ground_truth  # noqa: E402
from kiwi_platform.synth.clips import default_demo_dir  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"


def run_once(args: argparse.Namespace, demo: Path) -> dict:
    """One cold generation into a fresh folder: totals plus seconds spent on each pair."""
    with tempfile.TemporaryDirectory(prefix="kiwi-bench-synth-") as tmp:
        out = Path(tmp) / "set"
        marks: list[float] = []
        cpu0, t0 = time.process_time(), time.perf_counter()
        summary = generate(
            out,
            args.n,
            args.seed,
            frames=args.frames,
            height=args.height,
            width=args.width,
            image_share=args.image_share,
            demo_dir=demo,
            progress=lambda done, total: marks.append(time.perf_counter()),
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        media = [r["media"] for r in load_ground_truth(out)]
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    per_pair = [b - a for a, b in zip([t0, *marks[:-1]], marks)]
    by_media = {kind: [s for s, m in zip(per_pair, media) if m == kind] for kind in ("video", "image")}
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "pairs_per_s": round(summary.n_pairs / wall, 3),
        "video_pair_s": round(statistics.median(by_media["video"]), 4) if by_media["video"] else None,
        "image_pair_s": round(statistics.median(by_media["image"]), 4) if by_media["image"] else None,
        "media_counts": summary.media_counts,
        "edit_counts": summary.edit_counts,
        "output_mb": round(size_mb, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="pairs per run (kiwi synth default)")
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=448)
    parser.add_argument("--image-share", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="runs; the median run is reported")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds the run should stay well under (reported)")
    parser.add_argument(
        "--demo-dir", type=Path, default=None, help="demo media folder (default: KIWI_DEMO_DIR or the shipped demo)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    demo = args.demo_dir or default_demo_dir()
    if not (demo / "video" / "source").is_dir():
        print(
            f"error: no demo videos under {demo / 'video' / 'source'} (set --demo-dir or KIWI_DEMO_DIR)",
            file=sys.stderr,
        )
        return 2

    runs = []
    for i in range(max(1, args.repeat)):
        runs.append(run_once(args, demo))
        print(f"run {i + 1}: {runs[-1]['wall_s']:.2f} s wall, {runs[-1]['cpu_s']:.2f} s CPU", flush=True)
    median = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    result = {
        "config": {
            "n": args.n,
            "frames": args.frames,
            "height": args.height,
            "width": args.width,
            "image_share": args.image_share,
            "seed": args.seed,
            "repeat": len(runs),
            "budget_s": args.budget,
        },
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1m": round(load, 2),
        },
        "median": median,
        "runs": runs,
    }
    rows = [
        (
            "pairs (video / image)",
            f"{args.n} ({median['media_counts'].get('video', 0)} / {median['media_counts'].get('image', 0)})",
        ),
        ("size", f"{args.frames} frames, {args.height}x{args.width}"),
        ("wall s (median of runs)", f"{median['wall_s']:.2f}"),
        ("CPU s", f"{median['cpu_s']:.2f}"),
        ("pairs/s", f"{median['pairs_per_s']:.2f}"),
        ("s per video pair / image pair", f"{median['video_pair_s']} / {median['image_pair_s']}"),
        ("output MB", f"{median['output_mb']:.1f}"),
        ("load average (1 min)", f"{load:.2f} on {os.cpu_count()} CPUs"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    verdict = "within" if median["wall_s"] < args.budget else "OVER"
    print(
        f"\n{verdict} the {args.budget:.0f} s budget (wall-clock figures are only meaningful on an otherwise idle machine)"
    )
    write_text_atomic(args.out, json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
