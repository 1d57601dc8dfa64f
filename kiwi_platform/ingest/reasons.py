"""Why a manifest row was quarantined: one machine-readable code per cause, with the text people read.

Codes are stable (dashboards and `kiwi quarantine --json` consumers filter on them); add new
ones, never rename.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

REASONS: dict[str, str] = {
    "missing_column": "a required manifest column is absent or empty",
    "empty_prompt": "the instruction prompt is empty or whitespace",
    "duplicate_row": "the row repeats an earlier row (same paths or same content)",
    "path_escape": "a path points outside the manifest's folder",
    "missing_file": "a referenced file does not exist",
    "empty_file": "a referenced file has zero bytes",
    "not_media": "a referenced file is not a decodable video or image",
    "truncated_video": "a video is cut short or its frames cannot be decoded",
    "too_few_frames": "a video has fewer frames than the configured minimum",
    "unreadable_image": "an image file cannot be decoded",
    "size_mismatch": "source and target have different frame sizes",
    "frame_count_mismatch": "source and target have different frame counts",
    "kind_mismatch": "source and target are not both images or both videos",
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
