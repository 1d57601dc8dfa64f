"""The contracts between the RefVIE stages and their pluggable backends.

Frames are numpy arrays: clips (T, H, W, 3) uint8 RGB at the normalized resolution, masks
(T, H, W) bool with True = edited region (same meaning as the `kiwi synth` ground truth), boxes
(x0, y0, x1, y1) in pixels with x1/y1 exclusive. Backends are chosen by config and must never
crash on odd input: they raise `SampleRejected(reason, message, score)` and the asset
quarantines the pair with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

EDIT_TYPES = ("local_add", "local_replace", "local_remove", "recolor", "background_change", "global_style")
LOCAL_TYPES = ("local_add", "local_replace", "local_remove", "recolor")

Box = tuple[int, int, int, int]

# Quarantine reasons of the RefVIE stages (all prefixed qc_ so they never clash with ingestion's)
QC_REASONS = {
    "qc_no_edit": "source and target are identical: there is no edit to learn from",
    "qc_local_edit_covers_frame": "the instruction asks for a local edit but the whole frame changed",
    "qc_empty_mask": "no edited region could be found",
    "qc_full_mask": "the edited region covers (almost) the whole frame where it should not",
    "qc_blank_reference": "the synthesized reference image is blank or nearly uniform",
    "qc_reference_too_small": "the reference is degenerate or too small to be useful",
    "qc_judge_rejected": "the judge found the reference does not match the edit",
    "qc_near_duplicate": "a near-duplicate of an earlier sample (image embedding similarity)",
    "qc_backend_error": "a model backend failed on this sample",
}


class SampleRejected(Exception):
    """A pair that cannot become a quadruplet; `reason` is a key of QC_REASONS."""

    def __init__(self, reason: str, message: str, score: float | None = None) -> None:
        if reason not in QC_REASONS:
            raise ValueError(f"unknown QC reason {reason!r}")
        super().__init__(message)
        self.reason, self.message, self.score = reason, message, score


@dataclass
class Grounding:
    """Where the edit is, before pixel-accurate segmentation."""

    box: Box | None  # on the reference frame (`frame_index`) of the target
    frame_boxes: list[Box | None]  # one per frame (None where nothing is visible)
    frame_index: int = 0
    coarse_masks: np.ndarray | None = None  # (T,H,W) bool, if the grounder has them (difference analysis)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class EditRegion:
    """The result of `edit_regions` for one pair."""

    masks: np.ndarray  # (T,H,W) bool
    box: Box  # union box over frames
    frame_boxes: list[Box | None]
    edit_type: str  # one of EDIT_TYPES
    type_confidence: float
    scores: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Grounder(Protocol):
    name: str

    def ground(self, source: np.ndarray, target: np.ndarray, prompt: str) -> Grounding: ...


@runtime_checkable
class Segmenter(Protocol):
    name: str

    def segment(self, source: np.ndarray, target: np.ndarray, grounding: Grounding, prompt: str) -> np.ndarray: ...


@runtime_checkable
class Inpainter(Protocol):
    name: str

    def inpaint(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """Fill `hole` ((H,W) bool) of `image` ((H,W,3) uint8); returns a new image."""
        ...


@runtime_checkable
class ImageEmbedder(Protocol):
    """Embeddings for near-duplicate detection and similarity judging; vectors are L2-normalised."""

    name: str

    def embed(self, images: list[np.ndarray]) -> np.ndarray: ...


@runtime_checkable
class ReferenceJudge(Protocol):
    """Does the reference match the edit? Returns a score in [0, 1] (higher = better match)."""

    name: str

    def score(self, reference: np.ndarray, target_region: np.ndarray, prompt: str, edit_type: str) -> float: ...
