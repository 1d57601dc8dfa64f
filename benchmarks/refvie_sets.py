"""The synthetic sets the RefVIE benchmarks score: `kiwi synth` pairs normalized as ingestion does.

Why a module of its own: `refvie_pipeline.py` (easy set, references, duplicates, judge) and
`refvie_hard.py` (difficulty factors, throughput) score the same kind of set, and both need the
ground-truth masks back on the normalized clips' pixel grid (same geometry, so they align).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiwi_platform.media.normalize import normalize_media  # noqa: E402
from kiwi_platform.synth import generate, load_ground_truth  # noqa: E402
from kiwi_platform.synth.difficulty import Difficulty  # noqa: E402


def prepare(
    out: Path, n: int, seed: int, frames: int, height: int, width: int, difficulty: Difficulty | None = None
) -> list[dict]:
    """Synth set + normalized clips (same geometry, so GT masks align); returns GT records with paths."""
    generate(out, n, seed, frames=frames, height=height, width=width, image_share=0.25, difficulty=difficulty)
    records = load_ground_truth(out)
    for r in records:
        for key in ("src", "tgt"):
            clip = out / "norm" / f"{r['pair']}_{key}.kclip"
            normalize_media(out / r[key], clip, num_frames=r["frames"], max_area=height * width, fps=16)
            r[f"{key}_clip"] = clip
    return records


def load_gt(out: Path, r: dict) -> tuple[np.ndarray, np.ndarray]:
    """(T,H,W) bool ground-truth masks and the (H,W,3) RGB true reference of record `r`."""
    masks = np.stack(
        [cv2.imread(str(out / r["mask_dir"] / f"{i:04d}.png"), cv2.IMREAD_GRAYSCALE) > 127 for i in range(r["frames"])]
    )
    ref = cv2.cvtColor(cv2.imread(str(out / r["reference"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return masks, ref
