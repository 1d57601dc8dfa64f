"""Ingestion CPU time vs a bare PyAV decode+convert of the same frames, measured in the same run.

Why a ratio: absolute clips/s depend on the machine; the ratio says how much our ingestion path
(probe + sha256 + normalize + sha256 of the clip) costs on top of the decode that any path must
pay. Normalizing is what ingestion does by default for a local original: a reference clip, whose
ingestion is a decode of every kept frame, nothing stored but the header (readers resize on
read). `--copy` measures the copy path instead (`reference_originals: false` or
`reference_resized: false`: decode, resize/crop, JPEG clip write). The headline is the CPU-time ratio (bare CPU / ingest CPU): the
ingest path converts frames in a thread pool and the baseline does not, so wall time flatters it.
Inputs are the demo clips upscaled to 1920x1088 (made here with PyAV, cached under
benchmarks/results/hd_inputs/), so the resize path runs. Target: CPU-time ratio >= 0.8.

    .venv/bin/python benchmarks/ingest.py [--repeat 3] [--max-area 921600] [--frames 81] [--hd-clips 3]
    .venv/bin/python benchmarks/ingest.py --native    # the demo clips as they are (no resize)
    .venv/bin/python benchmarks/ingest.py --copy      # JPEG copies instead of reference clips
    .venv/bin/python benchmarks/ingest.py --memory [--rows 200000]   # peak RSS of a huge manifest

Prints a table and writes benchmarks/results/ingest.json (git-ignored).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiwi_platform.lib.files import sha256_file, write_text_atomic  # noqa: E402
from kiwi_platform.media.normalize import normalize_media  # noqa: E402
from kiwi_platform.media.probe import probe_media  # noqa: E402
from kiwi_platform.settings import find_demo_dir  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ingest.json"
HD_INPUTS = Path(__file__).resolve().parent / "results" / "hd_inputs"
HD_SIZE = (1920, 1088)


def make_hd_input(src: Path, frames: int, out_dir: Path = HD_INPUTS) -> Path:
    """`src`'s first `frames` frames upscaled to 1920x1088 H.264 (yuv420p, crf 18, fps kept), made once."""
    dst = out_dir / f"{src.stem[:12]}_{HD_SIZE[0]}x{HD_SIZE[1]}_{frames}.mp4"
    if dst.exists():
        return dst
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        stream_in = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=stream_in.average_rate or 25)
        stream.width, stream.height, stream.pix_fmt = *HD_SIZE, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for i, frame in enumerate(inp.decode(stream_in)):
            if i >= frames:
                break
            big = frame.reformat(width=HD_SIZE[0], height=HD_SIZE[1], format="yuv420p", interpolation="BICUBIC")
            big.pts = None
            out.mux(stream.encode(big))
        out.mux(stream.encode(None))
    os.replace(tmp, dst)
    return dst


def bare_decode(path: Path, frames: int) -> int:
    """The floor any ingestion pays: decode the first `frames` frames and convert them to RGB numpy
    at their own size, with the same codec threading as ours."""
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            assert rgb.dtype == np.uint8
            count += 1
            if count >= frames:
                break
    return count


def ingest_once(path: Path, out_dir: Path, frames: int, max_area: int, copy: bool) -> dict[str, float]:
    """Our path for one source file (a JPEG copy with `copy`, else a reference clip); returns
    seconds per stage (and 'total')."""
    t0 = time.perf_counter()
    info = probe_media(path)
    t1 = time.perf_counter()
    sha256_file(path)
    t2 = time.perf_counter()
    clip = out_dir / f"{path.stem}.kclip"
    where = None if copy else {"rel": path.name}
    header = normalize_media(
        path, clip, num_frames=frames, max_area=max_area, fps=info.fps, original=where, reference_resized=True
    )
    t3 = time.perf_counter()
    sha256_file(clip)
    t4 = time.perf_counter()
    assert header["frames"] == min(frames, info.frames)
    return {
        "probe": t1 - t0,
        "sha256_input": t2 - t1,
        "normalize": t3 - t2,
        "sha256_clip": t4 - t3,
        "total": t4 - t0,
        "clip_bytes": clip.stat().st_size,
    }


def breakdown(path: Path, frames: int, max_area: int) -> dict[str, float]:
    """Where normalization's time goes, one step at a time on one thread (CPU seconds per clip).

    Steps mirror normalize.py/clips.py: decode, swscale to RGB (+resize), crop, RGB->BGR for
    OpenCV, JPEG encode at the clip quality, ZIP write (CRC32 + copy), sha256 of the clip.
    """
    import io
    import zipfile

    import cv2

    from kiwi_platform.media.clips import JPEG_QUALITY
    from kiwi_platform.media.decode import center_crop, output_size

    def cpu(fn):
        start = time.process_time()
        out = fn()
        return time.process_time() - start, out

    out: dict[str, float] = {}
    out["probe_demux"], _ = cpu(lambda: probe_media(path))

    def decode():
        kept = []
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                kept.append(frame)
                if len(kept) >= frames:
                    break
        return kept

    out["decode"], decoded = cpu(decode)
    rw, rh, cw, ch = output_size(decoded[0].width, decoded[0].height, max_area)
    same = (rw, rh) == (decoded[0].width, decoded[0].height)

    def to_rgb(frame: av.VideoFrame) -> np.ndarray:
        if same:
            return frame.to_ndarray(format="rgb24")
        return frame.reformat(width=rw, height=rh, interpolation="AREA").to_ndarray(format="rgb24")

    out["to_rgb_and_resize"], rgb = cpu(lambda: [to_rgb(f) for f in decoded])
    out["center_crop"], cropped = cpu(lambda: [center_crop(f, cw, ch) for f in rgb])
    out["rgb_to_bgr"], bgr = cpu(lambda: [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in cropped])
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    out["jpeg_encode"], encoded = cpu(lambda: [cv2.imencode(".jpg", f, params)[1].tobytes() for f in bgr])
    buf = io.BytesIO()

    def write_zip():
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            for i, data in enumerate(encoded):
                zf.writestr(f"frames/{i:05d}.jpg", data)

    out["zip_write"], _ = cpu(write_zip)
    out["sha256_clip"], _ = cpu(lambda: hashlib.sha256(buf.getvalue()).hexdigest())
    out["clip_mb"] = len(buf.getvalue()) / 1e6
    return out


def measure(videos: list[Path], repeat: int, frames: int, max_area: int, copy: bool = False) -> dict:
    """Alternate bare decode and ingestion per repeat so both see the same machine state."""
    per_clip = []
    with tempfile.TemporaryDirectory(prefix="kiwi-bench-") as tmp:
        for path in videos:
            frames_here = min(frames, probe_media(path).frames)
            bare_decode(path, frames_here)  # warm the page cache and codec init once
            bare, bare_cpu, ingest, ingest_cpu = [], [], [], []
            for _ in range(repeat):
                t, c = time.perf_counter(), time.process_time()
                bare_decode(path, frames_here)
                bare.append(time.perf_counter() - t)
                bare_cpu.append(time.process_time() - c)
                c = time.process_time()
                ingest.append(ingest_once(path, Path(tmp), frames_here, max_area, copy))
                ingest_cpu.append(time.process_time() - c)
            size = path.stat().st_size
            bare_s = statistics.median(bare)
            ingest_s = statistics.median(r["total"] for r in ingest)
            stages = {
                k: statistics.median(r[k] for r in ingest)
                for k in ("probe", "sha256_input", "normalize", "sha256_clip")
            }
            per_clip.append(
                {
                    "file": path.name,
                    "input_bytes": size,
                    "frames": frames_here,
                    "bare_decode_s": bare_s,
                    "ingest_s": ingest_s,
                    "bare_clips_per_s": 1 / bare_s,
                    "ingest_clips_per_s": 1 / ingest_s,
                    "bare_mb_per_s": size / bare_s / 1e6,
                    "ingest_mb_per_s": size / ingest_s / 1e6,
                    "ratio": bare_s / ingest_s,
                    "bare_cpu_s": statistics.median(bare_cpu),
                    "ingest_cpu_s": statistics.median(ingest_cpu),
                    "cpu_ratio": statistics.median(bare_cpu) / statistics.median(ingest_cpu),
                    "stages_s": stages,
                    "clip_bytes": ingest[0]["clip_bytes"],
                    "runs_bare_s": bare,
                    "runs_ingest_s": [r["total"] for r in ingest],
                }
            )
    bare_total = sum(c["bare_decode_s"] for c in per_clip)
    ingest_total = sum(c["ingest_s"] for c in per_clip)
    size_total = sum(c["input_bytes"] for c in per_clip)
    overall = {
        "clips": len(per_clip),
        "bare_clips_per_s": len(per_clip) / bare_total,
        "ingest_clips_per_s": len(per_clip) / ingest_total,
        "bare_mb_per_s": size_total / bare_total / 1e6,
        "ingest_mb_per_s": size_total / ingest_total / 1e6,
        "ratio": bare_total / ingest_total,
        "cpu_ratio": sum(c["bare_cpu_s"] for c in per_clip) / sum(c["ingest_cpu_s"] for c in per_clip),
        "load_average_1m": os.getloadavg()[0],
    }
    return {"per_clip": per_clip, "overall": overall}


def print_table(result: dict, target: float) -> None:
    head = f"{'clip':<14}{'frames':>7}{'bare clip/s':>13}{'ingest clip/s':>15}{'bare MB/s':>11}{'ingest MB/s':>13}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    rows = [(c["file"][:12], c["frames"], c) for c in result["per_clip"]] + [("overall", "", result["overall"])]
    for name, frames, r in rows:
        print(
            f"{name:<14}{frames!s:>7}{r['bare_clips_per_s']:>13.2f}{r['ingest_clips_per_s']:>15.2f}"
            f"{r['bare_mb_per_s']:>11.2f}{r['ingest_mb_per_s']:>13.2f}{r['ratio']:>8.2f}"
        )
    print()
    for c in result["per_clip"]:
        stages = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in c["stages_s"].items())
        print(
            f"{c['file'][:12]}: bare decode {c['bare_decode_s'] * 1000:.0f} ms (cpu {c['bare_cpu_s'] * 1000:.0f} ms); "
            f"ingest {c['ingest_s'] * 1000:.0f} ms (cpu {c['ingest_cpu_s'] * 1000:.0f} ms) = {stages}"
        )
    overall = result["overall"]
    verdict = "meets" if overall["cpu_ratio"] >= target else "BELOW"
    print(
        f"\nCPU-time ratio bare/ingest = {overall['cpu_ratio']:.2f} ({verdict} target {target}); "
        f"wall ratio {overall['ratio']:.2f}; load average {overall['load_average_1m']:.2f} "
        f"(wall-clock ratios are only meaningful on an otherwise idle machine)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per clip; the median is reported")
    parser.add_argument("--max-area", type=int, default=1280 * 720, help="area cap in pixels (docs/contract.md §1.3)")
    parser.add_argument("--frames", type=int, default=81, help="first N frames per clip")
    parser.add_argument("--demo-dir", type=Path, default=None, help="folder holding video/source/*.mp4")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--target", type=float, default=0.8, help="CPU-time ratio to meet")
    parser.add_argument("--hd-clips", type=int, default=3, help="demo clips to upscale to 1920x1088 and measure")
    parser.add_argument("--native", action="store_true", help="measure the demo clips as they are instead")
    parser.add_argument("--copy", action="store_true", help="measure JPEG copies instead of reference clips")
    parser.add_argument("--breakdown", action="store_true", help="also time each normalization step alone (CPU ms)")
    parser.add_argument("--memory", action="store_true", help="peak RSS of a huge duplicate-heavy manifest instead")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the --memory manifest")
    args = parser.parse_args(argv)
    demo = args.demo_dir or Path(os.environ.get("KIWI_DEMO_DIR", find_demo_dir()))
    if args.memory:
        from benchmarks.ingest_memory import run as memory_run

        memory_run(args.rows, Path(demo).resolve())
        return 0
    videos = sorted((demo / "video" / "source").glob("*.mp4"))
    if not videos:
        print(f"error: no demo videos under {demo / 'video' / 'source'}", file=sys.stderr)
        return 2
    if not args.native:
        videos = [make_hd_input(v, args.frames) for v in videos[: max(1, args.hd_clips)]]
    result = measure(videos, max(1, args.repeat), args.frames, args.max_area, args.copy)
    result["config"] = {
        "repeat": args.repeat,
        "max_area": args.max_area,
        "frames": args.frames,
        "target_cpu_ratio": args.target,
        "clips": "JPEG copies" if args.copy else "reference clips",
        "inputs": "demo clips as they are" if args.native else f"demo clips upscaled to {HD_SIZE[0]}x{HD_SIZE[1]}",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "pyav": av.__version__,
        "machine": platform.machine(),
    }
    print_table(result, args.target)
    if args.breakdown:
        result["breakdown_cpu_s"] = {}
        print("\nCPU ms per clip, step by step (single pass, for profiling):")
        for path in videos:
            steps = breakdown(path, args.frames, args.max_area)
            result["breakdown_cpu_s"][path.name] = steps
            parts = [f"{k} {v * 1000:.0f}" if k != "clip_mb" else f"clip {v:.1f} MB" for k, v in steps.items()]
            print(f"  {path.name[:12]}: " + ", ".join(parts))
    write_text_atomic(args.out, json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
