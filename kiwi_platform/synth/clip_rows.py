"""Synthetic pairs shaped as `normalized_clips` rows, without running ingestion.

Grounding, reference synthesis and QC read a normalized-clips table. Their tests and benchmarks need
one for synthetic pairs with known ground truth, quickly and without a Dagster instance or DVC repo:
this normalizes each generated pair straight into `.kclip` files under `root/norm/` and returns the
ground-truth record beside the row the RefVIE stages read, so a caller can filter or edit rows.
"""

from __future__ import annotations

from pathlib import Path

from kiwi_platform.media.normalize import normalize_media
from kiwi_platform.synth.readback import load_ground_truth


def normalized_rows(out: Path, root: Path, *, height: int, width: int, fps: int = 16) -> list[tuple[dict, dict]]:
    """(ground truth, normalized_clips row) per pair generated in `out`; clip paths relative to `root`."""
    pairs = []
    for truth in load_ground_truth(out):
        clips = {}
        for key in ("src", "tgt"):
            dst = root / "norm" / f"{truth['pair']}_{key}.kclip"
            normalize_media(out / truth[key], dst, num_frames=truth["frames"], max_area=height * width, fps=fps)
            clips[key] = dst.relative_to(root).as_posix()
        row = {
            "batch": "b",
            "pair_id": truth["pair"],
            "row": truth["row"],
            "prompt": truth["prompt"],
            "media": "video",
            "src_clip": clips["src"],
            "tgt_clip": clips["tgt"],
            "ref_file": "",
            "ref_sha256": "",
            "frames": truth["frames"],
            "height": height,
            "width": width,
            "fps": fps,
        }
        pairs.append((truth, row))
    return pairs
