"""Clip storage: JPEG frames (kiwi-clip/1), near-lossless H.264 (kiwi-clip/2) and reference clips
(kiwi-clip/3: no frames, the original decoded, and resized if it is above the area cap, on read), per clip.

For each source video it takes the normalized frames once (`decode.iter_video_jobs`: the exact
frames ingestion would store), writes them in both layouts and reports bytes per clip, PSNR of the
stored clip against those frames, encode CPU ms per frame (the writer's thread pool included),
and read CPU ms per frame for all frames and for 5 random indices; then a CRF sweep of the
video layout on the synthetic set. Sets: the demo clips at the tiny
model's size, at a larger one and at the default area cap (1280x720: no resize, so references
apply), and `kiwi synth` pairs (`synth.writer.generate`, the scale
benchmark's source) at 128x224x17. `--hd` measures instead the 1920x1088 inputs of
`benchmarks/ingest.py` at 81 frames and the default area cap (every frame resized to 1275x722,
cropped to 1248x704): what storing vs referencing costs for originals above the cap.

    .venv/bin/python benchmarks/clip_storage.py --synth-pairs 20 --out benchmarks/measured/clip_storage_2026-12-02.md
    .venv/bin/python benchmarks/clip_storage.py --hd
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest import make_hd_input  # noqa: E402
from kiwi_platform.lib.batch_origin import ORIGIN_FILE  # noqa: E402
from kiwi_platform.lib.files import sha256_file  # noqa: E402
from kiwi_platform.media import clip_video  # noqa: E402
from kiwi_platform.media.clips import read_clip, write_frames  # noqa: E402
from kiwi_platform.media.decode import iter_video_jobs  # noqa: E402
from kiwi_platform.media.normalize import normalize_media  # noqa: E402
from kiwi_platform.synth.clips import default_demo_dir  # noqa: E402
from kiwi_platform.synth.writer import generate  # noqa: E402

STORAGES = ("jpeg", "video", "reference")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def source_frames(path: Path, frames: int, max_area: int) -> list[np.ndarray]:
    """The BGR frames ingestion would store for `path` (decoded, resized, cropped)."""
    return [np.ascontiguousarray(job()) for job in iter_video_jobs(path, frames, max_area)]


def _write(storage: str, path: Path, src: Path, frames: list[np.ndarray], area: int) -> None:
    """Write one clip (a reference for any original, resized or not, as ingestion does by default)."""
    if storage != "reference":
        write_frames(path, ((lambda f=f: f) for f in frames), fps=16.0, storage=storage)
        return
    meta = {"source_sha256": sha256_file(src)}  # the hash ingestion has already taken
    header = normalize_media(
        src,
        path,
        num_frames=len(frames),
        max_area=area,
        fps=16.0,
        meta=meta,
        original={"rel": str(src)},
        reference_resized=True,
    )
    assert header["format"] == "kiwi-clip/3"


def measure(clips: list[tuple[Path, list[np.ndarray]]], work: Path, area: int, seed: int = 0) -> dict[str, dict]:
    """Per storage: totals over `clips` (source path, BGR frames) for the table."""
    rng = np.random.default_rng(seed)
    out = {}
    batch = work / "batch"  # a reference clip finds its original through the batch's origin file
    batch.mkdir(exist_ok=True)
    (batch / ORIGIN_FILE).write_text('{"base_path": "/"}')
    for storage in STORAGES:
        acc = {"bytes": 0, "frames": 0, "enc": 0.0, "dec_all": 0.0, "dec_sub": 0.0, "sub_frames": 0, "sq": 0.0, "px": 0}
        for i, (src, frames) in enumerate(clips):
            path = batch / f"{storage}-{i}.kclip"
            cpu = time.process_time()
            _write(storage, path, src, frames, area)
            acc["enc"] += time.process_time() - cpu
            acc["bytes"] += path.stat().st_size
            acc["frames"] += len(frames)
            start = time.process_time()
            got = read_clip(path)
            acc["dec_all"] += time.process_time() - start
            given = np.stack([f[..., ::-1] for f in frames])  # BGR -> RGB, as read_clip returns
            acc["sq"] += float(np.sum((got.astype(np.float64) - given) ** 2))
            acc["px"] += given.size
            wanted = sorted(rng.choice(len(frames), size=min(5, len(frames)), replace=False).tolist())
            rng.shuffle(wanted)
            start = time.process_time()
            read_clip(path, wanted)
            acc["dec_sub"] += time.process_time() - start
            acc["sub_frames"] += len(wanted)
        out[storage] = acc
    return out


def row(name: str, n: int, shape: str, raw_bytes: float, res: dict[str, dict]) -> list[str]:
    lines = []
    for storage in STORAGES:
        a = res[storage]
        db = 10 * math.log10(255.0**2 / (a["sq"] / a["px"])) if a["sq"] else float("inf")
        lines.append(
            f"| {name} | {n} | {shape} | {storage} | {a['bytes'] / n / 1024:,.1f} | {raw_bytes / 1024:,.1f} "
            f"| {db:.2f} | {1000 * a['enc'] / a['frames']:.2f} | {1000 * a['dec_all'] / a['frames']:.2f} "
            f"| {1000 * a['dec_sub'] / a['sub_frames']:.2f} |"
        )
    ratio = res["jpeg"]["bytes"] / res["video"]["bytes"]
    lines.append(f"| {name} | | | jpeg / video bytes | {ratio:.2f}x | | | | | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth-pairs", type=int, default=20, help="synthetic pairs (2 clips each)")
    parser.add_argument("--out", type=Path, help="write the markdown table here too")
    parser.add_argument("--hd", action="store_true", help="only the 1920x1088 inputs of benchmarks/ingest.py")
    args = parser.parse_args()
    demo = sorted((default_demo_dir() / "video" / "source").glob("*.mp4"))
    sets = [("demo", demo, 17, 128 * 224), ("demo", demo, 33, 480 * 832), ("demo", demo, 33, 1280 * 720)]
    if args.hd:
        sets = [("demo at 1920x1088", [make_hd_input(p, 81) for p in demo], 81, 1280 * 720)]
    lines = [
        "| set | clips | frames x size | storage | KiB / clip | raw input KiB / clip | PSNR dB | encode ms / frame (CPU) "
        "| read all ms / frame (CPU) | read 5 random ms / frame (CPU) |",  # reference: "encode" = ingestion's decode
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        synth_dir = work / "synth"
        if not args.hd:
            generate(synth_dir, args.synth_pairs, frames=17, height=128, width=224, image_share=0.0)
            synth = sorted(p for p in synth_dir.rglob("*.mp4") if "gt" not in p.parts)
            sets.append(("kiwi synth", synth, 17, 128 * 224))
        for name, paths, frames, area in sets:
            clips = [(p, source_frames(p, frames, area)) for p in paths]
            h, w = clips[0][1][0].shape[:2]
            shape = f"{frames}x{h}x{w}" if len({c[1][0].shape for c in clips}) == 1 else f"{frames}x<= {area} px"
            raw = sum(p.stat().st_size for p in paths) / len(paths)
            lines += row(name, len(clips), shape, raw, measure(clips, work, area))
        if args.hd:
            return _report(lines, args.out)
        lines += ["", "CRF sweep, video layout, kiwi synth 17x128x224 (clip_video.CRF; the default is marked):", ""]
        lines += ["| CRF | KiB / clip | PSNR dB | encode ms / frame (CPU) |", "|---|---|---|---|"]
        default = clip_video.CRF
        for crf in (4, 6, 8, 10, 14, 18):
            clip_video.CRF = crf
            a = measure(clips, work, 128 * 224)["video"]
            db = 10 * math.log10(255.0**2 / (a["sq"] / a["px"]))
            mark = " (default)" if crf == default else ""
            lines.append(
                f"| {crf}{mark} | {a['bytes'] / len(clips) / 1024:,.1f} | {db:.2f} | {1000 * a['enc'] / a['frames']:.2f} |"
            )
        clip_video.CRF = default
    _report(lines, args.out)


def _report(lines: list[str], out: Path | None) -> None:
    header = [
        f"Video settings: {clip_video.SETTINGS}; JPEG: quality 95, 4:2:0 (OpenCV/libjpeg-turbo).",
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        "one process; encode CPU includes the writer's 2 pool threads; reads are CPU time too (the machine was shared).",
        "",
    ]
    text = "\n".join(header + lines) + "\n"
    print(text)
    if out:
        out.write_text(text)


if __name__ == "__main__":
    main()
