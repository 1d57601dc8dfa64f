"""Peak RSS of one RefVIE stage's driver over N rows, each N in a fresh process (issue 17's memory target).

Why apart from `scale.py`: that one runs whole `kiwi` commands (80 min at 10,000 pairs); this runs
only a stage function (`synthesize_batch`, `assemble_quadruplets`, `ground_batch`) in process over
a table of N rows tiled from a few real synthetic pairs (96x160x9), reading its input parquet and
writing its output parquet as the asset does, and reports the process's peak RSS and what Arrow's
pool held. The growth from 1,000 to 4,000 rows, per row, is what a 10,000-pair batch adds.

    .venv/bin/python benchmarks/stage_memory.py --stage references --n 1000 4000
    ARROW_DEFAULT_MEMORY_POOL=mimalloc .venv/bin/python benchmarks/stage_memory.py ...  # Arrow's own pool

Near-duplicates: tiled rows repeat 6 pairs, so QC quarantines nearly all of them as near-duplicates
(that pass and its records are measured, the kept table is tiny).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
INPUTS = {"grounding": "clips", "references": "regions", "quality": "references"}


def prepare(folder: Path, demo_dir: Path) -> None:
    """Six synthetic pairs through normalize, grounding and references: the tables each stage reads."""
    import pandas as pd

    from kiwi_platform.engine import EngineSettings
    from kiwi_platform.refvie.reference_table import synthesize_batch
    from kiwi_platform.refvie.region_table import ground_batch
    from kiwi_platform.refvie.stage_support import backend_spec
    from kiwi_platform.synth import generate
    from kiwi_platform.synth.clip_rows import normalized_rows

    generate(folder / "synth", 6, seed=5, frames=9, height=96, width=160, image_share=0.0, demo_dir=demo_dir)
    clips = pd.DataFrame([row for _, row in normalized_rows(folder / "synth", folder, height=96, width=160)])
    local = EngineSettings(engine="local")
    regions, _ = ground_batch(
        clips, folder, folder / "regions", grounder=backend_spec("grounder", "diff"),
        segmenter=backend_spec("segmenter", "diff"), engine=local,
    )  # fmt: skip
    refs, _, _ = synthesize_batch(regions, folder, folder / "refs", inpainter=backend_spec("inpainter", "opencv"))
    for name, table in (("clips", clips), ("regions", regions), ("references", refs)):
        table.to_parquet(folder / f"{name}.parquet", index=False)


def tile(folder: Path, stage: str, n: int) -> Path:
    """The stage's input with `n` rows cycling over the pairs, each with its own pair id and row."""
    import numpy as np
    import pandas as pd

    table = pd.read_parquet(folder / f"{INPUTS[stage]}.parquet")
    out = table.iloc[np.arange(n) % len(table)].reset_index(drop=True).copy()
    out["pair_id"] = [f"{p}-{i:05d}" for i, p in enumerate(out["pair_id"])]
    out["row"] = np.arange(1, n + 1)
    path = folder / f"in-{stage}-{n}.parquet"
    out.to_parquet(path, index=False)
    return path


def run(folder: Path, stage: str, n: int) -> dict:
    """In this (fresh) process: read the input, run the stage, write its table; peak RSS and timing."""
    import kiwi_platform  # noqa: F401 - first: the platform's Arrow pool default, as every kiwi command has it

    # isort: split
    import pandas as pd
    import pyarrow as pa

    from kiwi_platform.engine import EngineSettings
    from kiwi_platform.refvie.stage_support import backend_spec

    local, began = EngineSettings(engine="local"), time.perf_counter()
    table = pd.read_parquet(folder / f"in-{stage}-{n}.parquet")
    if stage == "references":
        from kiwi_platform.refvie.reference_table import synthesize_batch

        inpainter = backend_spec("inpainter", "opencv")
        out = synthesize_batch(table, folder, folder / f"out-{n}", inpainter=inpainter, engine=local)[0]
    elif stage == "grounding":
        from kiwi_platform.refvie.region_table import ground_batch

        grounder, segmenter = backend_spec("grounder", "diff"), backend_spec("segmenter", "diff")
        out = ground_batch(table, folder, folder / f"out-{n}", grounder=grounder, segmenter=segmenter, engine=local)[0]
    else:
        from kiwi_platform.refvie.assembly import QualitySettings, assemble_quadruplets
        from kiwi_platform.refvie.pipeline import DEFAULT_DUPLICATE_THRESHOLD, DEFAULT_JUDGE_THRESHOLD

        settings = QualitySettings(16, 8.0, DEFAULT_JUDGE_THRESHOLD, DEFAULT_DUPLICATE_THRESHOLD)
        judge, embedder = backend_spec("judge", "embedding"), backend_spec("embedder", "phash")
        out = assemble_quadruplets(table, folder, judge=judge, embedder=embedder, settings=settings, engine=local).table
    out.to_parquet(folder / f"out-{n}.parquet", index=False)
    pool = pa.default_memory_pool()
    return {
        "stage": stage,
        "n": n,
        "seconds": round(time.perf_counter() - began, 1),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "arrow_pool": pool.backend_name,
        "arrow_max_mib": round(pool.max_memory() / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=sorted(INPUTS), default="references")
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument(
        "--demo-dir", type=Path, default=Path(os.environ.get("KIWI_DEMO_DIR", ROOT.parent / "shared/data/kiwi_demo"))
    )
    parser.add_argument("--run", nargs=3, metavar=("FOLDER", "STAGE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run(Path(args.run[0]), args.run[1], int(args.run[2]))))
        return
    with tempfile.TemporaryDirectory(prefix="kiwi-stage-memory-") as tmp:
        folder = Path(tmp)
        prepare(folder, args.demo_dir)
        results = []
        for n in args.n:
            tile(folder, args.stage, n)
            cmd = [sys.executable, __file__, "--run", str(folder), args.stage, str(n)]
            results.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
            print(json.dumps(results[-1]), flush=True)
    small, large = results[0], results[-1]
    if large["n"] > small["n"]:
        per_row = (large["peak_rss_mib"] - small["peak_rss_mib"]) * 2**20 / (large["n"] - small["n"])
        at_10k = (small["peak_rss_mib"] + per_row * 9 * small["n"] / 2**20) / small["peak_rss_mib"]
        print(f"{args.stage}: {per_row / 1024:.1f} KB of peak RSS per extra row; 10x the rows would peak {at_10k:.2f}x")


if __name__ == "__main__":
    main()
