"""A small synthetic set, normalized exactly as ingestion does, analysed once for all RefVIE tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiwi_platform.media.clips import read_clip
from kiwi_platform.media.normalize import normalize_media
from kiwi_platform.synth import generate, load_ground_truth

#: 12 pairs = two of each edit type; 96x160 keeps objects >= 20 px so references pass the size filter.
N, FRAMES, HEIGHT, WIDTH = 12, 9, 96, 160


@dataclass
class Pair:
    """One normalized pair with its ground truth."""

    record: dict
    source: np.ndarray
    target: np.ndarray
    gt_masks: np.ndarray
    gt_reference: np.ndarray

    @property
    def edit_type(self) -> str:
        return self.record["edit_type"]

    @property
    def prompt(self) -> str:
        return self.record["prompt"]


@pytest.fixture(scope="session")
def pairs(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> list[Pair]:
    out = tmp_path_factory.mktemp("refvie") / "synth"
    generate(out, N, seed=11, frames=FRAMES, height=HEIGHT, width=WIDTH, image_share=0.25, demo_dir=demo_dir)
    result = []
    for r in load_ground_truth(out):
        clips = []
        for key in ("src", "tgt"):
            dst = out / "norm" / f"{r['pair']}_{key}.kclip"
            normalize_media(out / r[key], dst, num_frames=r["frames"], max_area=HEIGHT * WIDTH, fps=16)
            clips.append(read_clip(dst))
        masks = np.stack(
            [
                cv2.imread(str(out / r["mask_dir"] / f"{i:04d}.png"), cv2.IMREAD_GRAYSCALE) > 127
                for i in range(r["frames"])
            ]
        )
        ref = cv2.cvtColor(cv2.imread(str(Path(out) / r["reference"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        result.append(Pair(r, clips[0], clips[1], masks, ref))
    return result


@pytest.fixture(scope="session")
def analysed(pairs: list[Pair]) -> list[tuple[Pair, object]]:
    """Every pair through the default stage-2 backends (the EditRegion, or the SampleRejected)."""
    from kiwi_platform.refvie import pipeline
    from kiwi_platform.refvie.types import SampleRejected

    out = []
    for p in pairs:
        try:
            out.append((p, pipeline.analyse_pair(p.source, p.target, p.prompt)))
        except SampleRejected as exc:
            out.append((p, exc))
    return out
