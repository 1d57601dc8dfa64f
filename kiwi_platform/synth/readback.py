"""Read a synthetic set's ground truth back (for reference-synthesis and fidelity measurements)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from kiwi_platform.errors import KiwiUserError


def load_ground_truth(out_dir: Path) -> list[dict]:
    """All ground-truth records, in manifest row order (record["row"] is the 1-based data row)."""
    path = Path(out_dir) / "ground_truth.jsonl"
    if not path.is_file():
        raise KiwiUserError(
            f"no ground_truth.jsonl in {out_dir} (run `kiwi synth --out {out_dir}` first)", code="missing_file"
        )
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_mask(out_dir: Path, row: int, frame: int) -> np.ndarray:
    """The edited-region mask of data row `row` (1-based) at `frame` (0-based) as a bool (H,W) array."""
    records = load_ground_truth(out_dir)
    if not 1 <= row <= len(records):
        raise KiwiUserError(f"row {row} out of range 1..{len(records)}", code="bad_argument")
    record = records[row - 1]
    if not 0 <= frame < record["frames"]:
        raise KiwiUserError(f"frame {frame} out of range 0..{record['frames'] - 1}", code="bad_argument")
    mask = cv2.imread(str(Path(out_dir) / record["mask_dir"] / f"{frame:04d}.png"), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise KiwiUserError(f"mask file missing for row {row} frame {frame}", code="missing_file")
    return mask > 127
