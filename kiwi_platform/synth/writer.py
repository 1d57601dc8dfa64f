"""Write N synthetic edit pairs with ground truth: upstream manifest + ground_truth.jsonl + masks.

Layout under out_dir (paths in manifest and sidecar are relative to out_dir):
    manifest.csv              prompt,src_video,tgt_video[,ref_image]
    ground_truth.jsonl        one object per manifest data row (same order)
    src/<pair>.mp4|png        source clip (H.264 yuv420p) or 1-frame PNG
    tgt/<pair>.mp4|png        target, same size and frame count
    gt/<pair>/masks/NNNN.png  binary 0/255 mask of the edited region, one per frame
    gt/<pair>/reference.png   the true reference image
    sources.json              sha256 of every demo file the generator could read (lineage)
The manifest and sidecar are written last, so an interrupted run never lists unfinished pairs.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.synth.clips import DemoLibrary, default_demo_dir
from kiwi_platform.synth.difficulty import REGEN_CRF, Difficulty
from kiwi_platform.synth.edits import BUILDERS, EDIT_TYPES, Edit
from kiwi_platform.synth.hard_edits import build as build_hard
from kiwi_platform.synth.media import DEFAULT_CRF, write_mask, write_mp4, write_png, write_text

#: Written beside the manifest: the sha256 of the demo files the set was made from.
SOURCES_NAME = "sources.json"
MASK_MEANING = {
    "local_add": "pixels of the added object",
    "local_replace": "union of the old and the new object's pixels",
    "local_remove": "pixels of the removed object",
    "recolor": "pixels of the recolored object",
    "background_change": "background: everything except the kept foreground object",
    "global_style": "whole frame",
    "no_edit": "empty: only a photometric regeneration differs (bad input, expect qc_no_edit)",
}


@dataclass
class SynthSummary:
    """What a run wrote: counts per edit type and media, the files to open next, and the time it took."""

    out_dir: Path
    manifest: Path
    ground_truth: Path
    n_pairs: int
    edit_counts: dict[str, int] = field(default_factory=dict)
    media_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _sources_json(library: DemoLibrary) -> str:
    """sha256 and size of every demo file the generator could read, by path inside the demo folder
    (relative, so the same demo gives the same bytes on every machine): lineage's link to the clips."""
    files = {
        path.relative_to(library.demo_dir).as_posix(): {"sha256": sha256_file(path), "size": path.stat().st_size}
        for path in sorted([*library.videos, *library.stills])
    }
    return json.dumps({"demo_dir_files": files}, indent=1, sort_keys=True) + "\n"


def _validate(n: int, frames: int, height: int, width: int, image_share: float) -> None:
    if n < 1:
        raise KiwiUserError(f"--n must be at least 1, got {n}", code="bad_argument")
    if frames < 1:
        raise KiwiUserError(f"--frames must be at least 1, got {frames}", code="bad_argument")
    for name, value in (("height", height), ("width", width)):
        if value < 32 or value % 16:
            raise KiwiUserError(f"--{name} must be a multiple of 16 and at least 32, got {value}", code="bad_argument")
    if not 0.0 <= image_share <= 1.0:
        raise KiwiUserError(f"--image-share must be between 0 and 1, got {image_share}", code="bad_argument")


def _bbox(mask: np.ndarray) -> list[int] | None:
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max() + 1), int(ys.max() + 1)]


def _write_pair(out_dir: Path, pair: str, media: str, edit: Edit, tgt_crf: int = DEFAULT_CRF) -> tuple[str, str]:
    ext = "png" if media == "image" else "mp4"
    src, tgt = f"src/{pair}.{ext}", f"tgt/{pair}.{ext}"
    mask_dir = out_dir / "gt" / pair / "masks"
    wanted = {f"{t:04d}.png" for t in range(len(edit.mask))}
    for stale in mask_dir.glob("*.png") if mask_dir.is_dir() else []:
        if stale.name not in wanted:  # left over from a run with more frames
            stale.unlink()
    for t, mask in enumerate(edit.mask):
        write_mask(mask_dir / f"{t:04d}.png", mask)
    write_png(out_dir / "gt" / pair / "reference.png", edit.reference)
    if media == "image":
        write_png(out_dir / src, edit.src[0])
        write_png(out_dir / tgt, edit.tgt[0])
    else:
        write_mp4(out_dir / src, edit.src, edit.fps)
        if tgt_crf == DEFAULT_CRF:
            write_mp4(out_dir / tgt, edit.tgt, edit.fps)
        else:  # a regenerated target: lossy on purpose
            write_mp4(out_dir / tgt, edit.tgt, edit.fps, crf=tgt_crf)
    return src, tgt


def generate(
    out_dir: Path,
    n: int,
    seed: int = 0,
    *,
    frames: int = 81,
    height: int = 256,
    width: int = 448,
    image_share: float = 0.25,
    with_ref: bool = False,
    demo_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    difficulty: Difficulty | None = None,
) -> SynthSummary:
    """Generate `n` edit pairs (edit types round-robin) deterministically from `seed`.

    Exactly round(n * image_share) pairs are 1-frame PNG image pairs, the rest `frames`-frame
    mp4 videos; all media are height x width. `progress(done, total)` is called after each pair.
    `difficulty` switches on hard-set factors (`synth.difficulty`); without any, the output is
    the easy set, byte for byte. With factors, each record also lists them (`factors`), and a
    `photometric_only` pair is recorded as edit type `no_edit` with `expected_qc`.
    """
    hard = difficulty if difficulty is not None and difficulty.any else None
    _validate(n, frames, height, width, image_share)
    started = time.perf_counter()
    out_dir = Path(out_dir)
    library = DemoLibrary(Path(demo_dir) if demo_dir else default_demo_dir(), height, width)
    n_images = int(round(n * image_share))
    image_rows = set(np.random.default_rng([seed, 1]).permutation(n)[:n_images].tolist())
    width_id = max(4, len(str(n - 1)))
    rows, records = [], []
    for i in range(n):
        pair, edit_type = f"{i:0{width_id}d}", EDIT_TYPES[i % len(EDIT_TYPES)]
        media = "image" if i in image_rows else "video"
        rng = np.random.default_rng([seed, 2, i])
        if hard is None:
            edit = BUILDERS[edit_type](rng, library, 1 if media == "image" else frames, media)
            src, tgt = _write_pair(out_dir, pair, media, edit)
        else:
            hrng = np.random.default_rng([seed, 3, i])
            edit, edit_type = build_hard(edit_type, rng, hrng, library, 1 if media == "image" else frames, media, hard)
            regen = hard.regenerate or hard.photometric_only
            src, tgt = _write_pair(out_dir, pair, media, edit, REGEN_CRF if regen else DEFAULT_CRF)
            if edit_type == "no_edit":
                edit.details["expected_qc"] = "qc_no_edit"
        reference = f"gt/{pair}/reference.png"
        rows.append([edit.prompt, src, tgt] + ([reference] if with_ref else []))
        records.append(
            {
                "row": i + 1,
                "pair": pair,
                "edit_type": edit_type,
                "media": media,
                "prompt": edit.prompt,
                "src": src,
                "tgt": tgt,
                "mask_dir": f"gt/{pair}/masks",
                "mask_meaning": MASK_MEANING[edit_type],
                "reference": reference,
                "reference_kind": edit.reference_kind,
                "box": _bbox(edit.mask[0]),
                "object_boxes": edit.object_boxes,
                "frames": int(edit.src.shape[0]),
                "height": height,
                "width": width,
                "fps": edit.fps,
                "seed": seed,
                **edit.details,
            }
        )
        if progress:
            progress(i + 1, n)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["prompt", "src_video", "tgt_video"] + (["ref_image"] if with_ref else []))
    writer.writerows(rows)
    write_text(out_dir / SOURCES_NAME, _sources_json(library))
    write_text(out_dir / "ground_truth.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    write_text(out_dir / "manifest.csv", buf.getvalue())
    return SynthSummary(
        out_dir,
        out_dir / "manifest.csv",
        out_dir / "ground_truth.jsonl",
        n,
        dict(Counter(r["edit_type"] for r in records)),
        dict(Counter(r["media"] for r in records)),
        time.perf_counter() - started,
    )
