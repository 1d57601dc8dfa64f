"""Build a small, real training manifest from `kiwi synth` data (tests and the learning-signal benchmark).

Real files end to end: synthetic mp4/png pairs are normalized into .kclip clips exactly as the
ingestion assets do, hashed, and listed in a parquet manifest with the training columns.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kiwi_platform.lib.files import atomic_path, sha256_file


@dataclass(frozen=True)
class TrainingFixture:
    manifest: Path  # parquet
    data_root: Path  # paths in the manifest are relative to this folder
    synth_dir: Path  # the raw synthetic set (ground_truth.jsonl, masks, true references)
    rows: int


def make_training_manifest(
    out_dir: str | Path,
    n: int = 6,
    *,
    seed: int = 0,
    frames: int = 9,
    height: int = 64,
    width: int = 96,
    image_share: float = 0.5,
    with_ref: bool = True,
    demo_dir: Path | None = None,
) -> TrainingFixture:
    """`n` synthetic pairs -> clips + manifest.parquet under `out_dir`.

    Each pair gives one row of task image/video and, with `with_ref`, a second row of task
    image_ref/video_ref (same pair id, so both land in the same split) using the true reference.
    """
    from kiwi_platform.media.normalize import normalize_media
    from kiwi_platform.synth import generate, load_ground_truth

    out = Path(out_dir)
    synth = out / "synth"
    data_root = out / "data"
    generate(
        synth,
        n,
        seed,
        frames=frames,
        height=height,
        width=width,
        image_share=image_share,
        with_ref=with_ref,
        demo_dir=demo_dir,
    )
    rows = []
    for rec in load_ground_truth(synth):
        pair = f"synth-{seed}-{rec['pair']}"
        clips = {}
        for side in ("src", "tgt"):
            rel = f"clips/{pair}_{side}.kclip"
            normalize_media(synth / rec[side], data_root / rel, num_frames=frames, max_area=height * width, fps=16)
            clips[side] = rel
        ref_rel = f"refs/{pair}.png"
        (data_root / "refs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(synth / rec["reference"], data_root / ref_rel)
        media = "image" if rec["media"] == "image" else "video"
        base = {
            "pair_id": pair,
            "batch": f"synth-{seed}",
            "prompt": rec["prompt"],
            "src_clip": clips["src"],
            "tgt_clip": clips["tgt"],
            "frames": 1 if media == "image" else frames,
            "height": height,
            "width": width,
            "src_clip_sha256": sha256_file(data_root / clips["src"]),
            "tgt_clip_sha256": sha256_file(data_root / clips["tgt"]),
        }
        rows.append({**base, "task": media, "ref_image": "", "ref_sha256": ""})
        if with_ref:
            rows.append(
                {**base, "task": f"{media}_ref", "ref_image": ref_rel, "ref_sha256": sha256_file(data_root / ref_rel)}
            )
    manifest = out / "manifest.parquet"
    with atomic_path(manifest) as tmp:
        pd.DataFrame(rows).to_parquet(tmp, index=False)
    return TrainingFixture(manifest, data_root, synth, len(rows))
