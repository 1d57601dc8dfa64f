"""Per-stage training manifests built from quadruplets (docs/contract.md §3.3).

A stage reads task groups; the training loop cycles through them in the configured ratio (one
cycle = one optimizer step, i.e. gradient accumulation = one mix cycle, see
`kiwi_platform.training.config.DEFAULT_MIX`):

    stage 1  image                          (image edits; their references unused)
    stage 2  image : video = 1 : 1          (references unused)
    stage 3  image : video : reference = 1 : 1 : 1, or reference only
             (reference = every sample with a reference: tasks image_ref and video_ref)

A sample with a reference also serves the instruction-only groups, with its reference removed.
The train/validation split is the loop's, by a hash of the pair id (never by row), so a pair
never lands on both sides, whichever stage or batch it appears in.
"""

from __future__ import annotations

import pandas as pd

STAGE_GROUPS = {1: ("image",), 2: ("image", "video"), 3: ("image", "video", "reference")}
MANIFEST_COLUMNS = [
    "pair_id",
    "batch",
    "task",
    "prompt",
    "edit_type",
    "src_clip",
    "tgt_clip",
    "ref_image",
    "frames",
    "height",
    "width",
    "src_clip_sha256",
    "tgt_clip_sha256",
    "ref_sha256",
]


def group_rows(quads: pd.DataFrame, group: str) -> pd.DataFrame:
    """The quadruplets that feed one task group, shaped as manifest rows."""
    if group in ("image", "video"):
        rows = quads[quads["media"] == group].assign(task=group, ref_image="", ref_sha256="")
    elif group == "reference":
        rows = quads[quads["ref_image"].astype(bool)]
    else:
        raise ValueError(f"unknown task group {group!r}")
    return rows[MANIFEST_COLUMNS]


def build_stage_manifest(quads: pd.DataFrame, stage: int, groups: tuple[str, ...] | None = None) -> pd.DataFrame:
    """All samples a stage may draw from (the loop splits train/validation by pair id)."""
    parts = [group_rows(quads, g) for g in (groups or STAGE_GROUPS[stage])]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=MANIFEST_COLUMNS)
    mix = pd.concat(parts, ignore_index=True)
    return mix.sort_values(["task", "batch", "pair_id"], kind="stable").reset_index(drop=True)
