"""Per-stage training mixes built from quadruplets (SPEC section 3).

Each stage reads named task streams; the training loop cycles through them in the configured
ratio (one cycle = one optimizer step, i.e. gradient accumulation = one mix cycle):

    stage 1  image                      (image edits only; references unused)
    stage 2  image : video = 1 : 1      (references unused)
    stage 3  image : video : video_ref = 1 : 1 : 1, or video_ref only
             (video_ref = every sample with a reference, image or video)

Train and validation are split by pair id (a hash of it), never by row, so one pair never lands
on both sides, whichever stage or batch it appears in.
"""

from __future__ import annotations

import hashlib

import pandas as pd

STREAMS = {
    1: ("image",),
    2: ("image", "video"),
    3: ("image", "video", "video_ref"),
}
DEFAULT_RATIOS = {1: {"image": 1}, 2: {"image": 1, "video": 1}, 3: {"image": 1, "video": 1, "video_ref": 1}}
MANIFEST_COLUMNS = [
    "pair_id", "batch", "task", "prompt", "src_clip", "tgt_clip", "ref_image", "frames", "height", "width",
    "src_clip_sha256", "tgt_clip_sha256", "ref_sha256", "edit_type",
]  # fmt: skip


def is_validation(pair_id: str, fraction: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def stream_rows(quads: pd.DataFrame, stream: str) -> pd.DataFrame:
    """The quadruplets that feed one task stream, shaped as manifest rows."""
    if stream == "image":
        rows = quads[quads["media"] == "image"].assign(ref_image="", ref_sha256="")
    elif stream == "video":
        rows = quads[quads["media"] == "video"].assign(ref_image="", ref_sha256="")
    elif stream == "video_ref":
        rows = quads[quads["ref_image"].astype(bool)]
    else:
        raise ValueError(f"unknown task stream {stream!r}")
    return rows.assign(task=stream)[MANIFEST_COLUMNS]


def build_stage_mix(
    quads: pd.DataFrame, stage: int, ratios: dict[str, int], val_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) manifests for one stage; streams with ratio 0 are left out."""
    parts = [stream_rows(quads, s) for s in STREAMS[stage] if ratios.get(s, 0) > 0]
    mix = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MANIFEST_COLUMNS)
    mix = mix.sort_values(["task", "pair_id"], kind="stable").reset_index(drop=True)
    val_mask = mix["pair_id"].map(lambda p: is_validation(p, val_fraction, seed)).astype(bool)
    if len(mix) > 1 and not val_mask.any():  # tiny sets: hold out at least one pair
        first = sorted(mix["pair_id"].unique(), key=lambda p: hashlib.sha256(f"{seed}:{p}".encode()).hexdigest())[0]
        val_mask = mix["pair_id"] == first
    return mix[~val_mask].reset_index(drop=True), mix[val_mask].reset_index(drop=True)
