"""Peak memory of ingesting a huge manifest: does it stay bounded as rows grow? (issue 13)

A manifest of N rows that repeat the demo pairs (a video pair and an image pair, each with a
reference): the first of each is accepted, every other row is quarantined as `duplicate_row`.
Each (format, N) runs `ingest_source` (the asset's code path, no Dagster) in a fresh child
process that reports its peak RSS; the parent builds the manifests, so building them is not
counted. Formats: the upstream CSV and released-layout parquet chunks with embedded JPEG bytes.

    .venv/bin/python benchmarks/ingest.py --memory [--rows 200000]

Writes benchmarks/results/ingest_memory.json (git-ignored).
"""

from __future__ import annotations

import csv
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ingest_memory.json"
DEMO_VIDEO = "video/source/7800630815900c243b81f8ed5acb6a9dd40b47fb18b48373bcf132039ffb0a8d.mp4"
DEMO_IMAGE = "image/source/omniedit_env_omniedit_env_task_env_lighting_133656.jpg"
DEMO_REF = "video/reference/reco_replace_088301.jpg"
CHUNK_ROWS = 10_000


def _pairs() -> list[tuple[str, str]]:
    return [(DEMO_VIDEO, DEMO_VIDEO), (DEMO_IMAGE, DEMO_IMAGE)]


def write_csv(path: Path, rows: int) -> str:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(("prompt", "src_video", "tgt_video", "ref_image"))
        for i in range(rows):
            src, tgt = _pairs()[i % 2]
            out.writerow(("replace the stones with a lamp, keep the rest", src, tgt, DEMO_REF))
    return str(path)


def write_parquet(folder: Path, rows: int, demo: Path) -> str:
    with Image.open(demo / DEMO_REF) as img:
        buf = io.BytesIO()
        img.convert("RGB").resize((64, 64)).save(buf, format="JPEG", quality=90)
    ref = buf.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    for n, start in enumerate(range(0, rows, CHUNK_ROWS)):
        count = min(CHUNK_ROWS, rows - start)
        src = [_pairs()[(start + i) % 2][0] for i in range(count)]
        table = pa.table(
            {
                "iid": [
                    f"rv-{start + i:08d}" if (start + i) < 2 else f"rv-{(start + i) % 2:08d}" for i in range(count)
                ],
                "prompt": ["replace the stones with a lamp, keep the rest"] * count,
                "src_video": src,
                "tgt_video": src,
                "ref_image_bytes": pa.array([ref] * count, pa.binary()),
            }
        )
        pq.write_table(table, folder / f"chunk_{n:05d}.parquet")
    return str(folder / "chunk_*.parquet")


def _hwm_kb() -> int:
    """Peak RSS of this process image (VmHWM; ru_maxrss would carry over the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(spec: str, demo: str, data: str) -> dict:
    """Runs in a fresh process: import, note RSS, ingest, report the peak."""
    sys.path.insert(0, str(ROOT))
    from kiwi_platform.ingestion.ingest_run import ingest_source
    from kiwi_platform.ingestion.sources import open_source
    from kiwi_platform.resources.store import MediaStore

    base_kb = _hwm_kb()
    started = time.perf_counter()
    out = ingest_source(open_source(spec, demo), MediaStore(root=data), "bench", min_frames=1)
    seconds = time.perf_counter() - started
    peak_kb = _hwm_kb()
    reasons: dict[str, int] = {}
    for q in out.quarantined:
        reasons[q.reason] = reasons.get(q.reason, 0) + 1
    return {
        "rows_in": out.rows_in,
        "accepted": len(out.table),
        "quarantined": len(out.quarantined),
        "reasons": reasons,
        "rss_after_imports_mb": round(base_kb / 1024, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "ingest_peak_over_imports_mb": round((peak_kb - base_kb) / 1024, 1),
        "seconds": round(seconds, 2),
        "rows_per_s": round(out.rows_in / seconds),
    }


def run(rows: int, demo: Path, out: Path = RESULTS) -> dict:
    sizes = sorted({max(2, rows // 100), rows})
    results = []
    with tempfile.TemporaryDirectory(prefix="kiwi-ingest-mem-") as tmp:
        for fmt in ("csv", "parquet"):
            for n in sizes:
                work = Path(tmp) / f"{fmt}-{n}"
                work.mkdir()
                spec = write_csv(work / "m.csv", n) if fmt == "csv" else write_parquet(work / "chunks", n, demo)
                code = "import json,sys; from benchmarks.ingest_memory import child; print(json.dumps(child(*sys.argv[1:])))"
                proc = subprocess.run(
                    [sys.executable, "-c", code, spec, str(demo), str(work / "data")],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                found = {"format": fmt, "rows": n, **json.loads(proc.stdout.splitlines()[-1])}
                assert found["rows_in"] == found["accepted"] + found["quarantined"] == n
                results.append(found)
                print(
                    f"{fmt:<8}{n:>9,} rows: peak RSS {found['peak_rss_mb']:>7.1f} MB "
                    f"(+{found['ingest_peak_over_imports_mb']:.1f} MB over imports), {found['accepted']} accepted, "
                    f"{found['quarantined']:,} quarantined, {found['rows_per_s']:,} rows/s"
                )
    for fmt in ("csv", "parquet"):
        small, large = [r for r in results if r["format"] == fmt][0], [r for r in results if r["format"] == fmt][-1]
        grown = large["ingest_peak_over_imports_mb"] - small["ingest_peak_over_imports_mb"]
        per_row = grown * 1024 * 1024 / max(1, large["rows"] - small["rows"])
        print(f"{fmt}: +{grown:.1f} MB from {small['rows']:,} to {large['rows']:,} rows = {per_row:.0f} bytes per row")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return {"results": results}
