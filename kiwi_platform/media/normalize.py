"""Turn a probed source/target file into a normalized clip (docs/contract.md §1.3).

The frames themselves come from `media/decode.py` (first N frames, area cap, sides in 32s, display
orientation). What this module decides is how they are kept:

- as a copy: JPEG frames ("kiwi-clip/1", the default) or near-lossless H.264 (`storage="video"`,
  "kiwi-clip/2", `media/clip_video.py`: 2-3x smaller, 7-15x the CPU per frame to encode and about
  3x to read; docs/clips.md);
- or, when the caller says where the original can be read later (`original=`), as a reference
  ("kiwi-clip/3", `media/clip_reference.py`): only the header is stored and readers decode the
  original (and resize it, for an original above the area cap). Ingestion is then a bare decode
  (no resize, no conversion, no encode) and the batch keeps no second copy of the pixels. An
  original that needs a resize gets a reference only with `reference_resized` (its readers pay the
  resize on every read; an original already at size costs them only the decode).

`NORMALIZER_VERSION` is stored in each clip header; clips made by an older normalizer (e.g.
sideways ones) are rebuilt instead of reused. Every header says whether its original was
`resized`, so a rerun knows which copies could have been references without decoding them.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from kiwi_platform.media.clip_reference import write_reference
from kiwi_platform.media.clips import write_clip, write_frames
from kiwi_platform.media.decode import Geometry, decoded_frames, open_image
from kiwi_platform.media.probe import media_kind

NORMALIZER_VERSION = 3  # 2: display rotation applied, byte-reproducible clips; 3: resize in YUV (AREA)
# "jpeg" (kiwi-clip/1, JPEG frames) or "video" (kiwi-clip/2, near-lossless H.264); the run config's
# `clip_storage` picks per run. JPEG stays the default: see docs/clips.md for the measured trade-off.
CLIP_STORAGE = "jpeg"


def normalize_media(
    src: Path,
    dst: Path,
    *,
    num_frames: int,
    max_area: int,
    fps: float,
    multiple: int = 32,
    meta: dict | None = None,
    storage: str | None = None,
    original: dict | None = None,
    reference_resized: bool = False,
) -> dict:
    """Write the normalized clip for one media file to `dst`; returns the clip header (+ its sha256).

    `storage` is "video" or "jpeg" (the layout of a copy, see `clips`); None means `CLIP_STORAGE`.
    `original` (`{"rel": NAME}` or `{"batch_file": PATH}`, see `clip_reference`) allows a reference
    clip when the file needs no resize, or in any case with `reference_resized`; `dst` must then lie
    in the batch folder that resolves it.
    """
    meta = {"normalizer": NORMALIZER_VERSION, **(meta or {})}
    if original is not None:  # what a reader needs to decode the original the same way
        meta.update(num_frames=num_frames, max_area=max_area, multiple=multiple)
    storage = storage or CLIP_STORAGE
    if media_kind(src) == "image":
        image, resized = open_image(src, max_area, multiple)
        meta.update(source_kind="image", resized=resized)
        if original is not None and (reference_resized or not resized):
            return _reference(dst, src, original, meta, frames=1, shape=image.shape, fps=0.0)
        return write_clip(dst, iter([image]), fps=0.0, meta=meta, storage=storage)
    stream = decoded_frames(src, num_frames)
    first = next(stream)
    geometry = Geometry.of(first, max_area, multiple)
    meta.update(source_kind="video", resized=geometry.resized)
    if original is not None and (reference_resized or not geometry.resized):
        count = 1 + sum(1 for _ in stream)  # decodes every frame: a broken or short video is rejected here
        crop_w, crop_h = geometry.sizes[2:]
        return _reference(dst, src, original, meta, frames=count, shape=(crop_h, crop_w), fps=fps)
    jobs = ((lambda f=f: geometry.convert(f)) for f in itertools.chain([first], stream))
    return write_frames(dst, jobs, fps=fps, meta=meta, storage=storage)


def _reference(dst: Path, src: Path, original: dict, meta: dict, *, frames: int, shape, fps: float) -> dict:
    where = {**original, "size": src.stat().st_size}
    header = {**meta, "frames": frames, "height": int(shape[0]), "width": int(shape[1]), "fps": float(fps)}
    return write_reference(dst, {**header, "original": where})
