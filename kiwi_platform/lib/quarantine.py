"""The quarantine table: every row a stage could not use, with a reason code and a message.

Codes are stable (dashboards and `kiwi quarantine --json` consumers filter on them); add new
ones, never rename.

Each stage writes its own `quarantine.parquet` inside its asset folder (so it is versioned with
the outputs it explains); readers combine them per batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

REASONS: dict[str, str] = {
    "missing_column": "a required manifest column is absent or empty",
    "empty_prompt": "the instruction prompt is empty or whitespace",
    "duplicate_row": "the row repeats an earlier row (same paths or same content)",
    "path_escape": "a relative path points outside the batch's base folder",
    "missing_file": "a referenced file does not exist",
    "empty_file": "a referenced file has zero bytes",
    "not_media": "a referenced file is not a decodable video or image",
    "truncated_video": "a video is cut short or its frames cannot be decoded",
    "too_few_frames": "a video has fewer frames than the configured minimum",
    "unreadable_image": "an image file cannot be decoded",
    "size_mismatch": "source and target have different frame sizes",
    "frame_count_mismatch": "source and target have different frame counts",
    "kind_mismatch": "source and target are not both images or both videos, or a file's bytes are not the kind its name says",
    "unreadable_file": "a referenced file exists but cannot be read (permission denied, I/O error)",
    "changed_file": "a raw file kept by reference changed after ingestion hashed it",
    "bad_prompt": "the prompt holds a NUL byte or another control character",
    "prompt_too_long": "the prompt is longer than the limit (usually an unclosed quote that swallowed the lines after it)",
}


@dataclass(frozen=True)
class QuarantineRecord:
    """One row that cannot be used, and why. `row` is the 1-based data row of the manifest."""

    row: int
    reason: str
    message: str
    path: str = ""
    stage: str = "raw_edit_pairs"
    score: float | None = None
    pair_id: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REASONS and not self.reason.startswith("qc_"):
            raise ValueError(f"unknown quarantine reason {self.reason!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class RowRejected(Exception):
    """Raised while checking one row; turned into a QuarantineRecord by the caller."""

    def __init__(self, reason: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.path = path


COLUMNS = ["row", "stage", "reason", "message", "path", "pair_id", "score"]


def to_frame(records: Iterable[QuarantineRecord]) -> pd.DataFrame:
    df = pd.DataFrame([r.to_dict() for r in records], columns=COLUMNS)
    return (
        df.astype({"row": "int64", "score": "float64"})
        .sort_values(["row", "stage"], kind="stable")
        .reset_index(drop=True)
    )


def read_batch(batch_dir: Path) -> pd.DataFrame:
    """All quarantine records of a batch, ordered by manifest row, then stage."""
    frames = [pd.read_parquet(p) for p in sorted(batch_dir.glob("*/quarantine.parquet"))]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True).sort_values(["row", "stage"], kind="stable").reset_index(drop=True)


def reason_counts(records: Iterable[QuarantineRecord]) -> dict[str, int]:
    return dict(sorted(Counter(r.reason for r in records).items()))
