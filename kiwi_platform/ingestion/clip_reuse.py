"""Which clip a pair's original gets, and whether one an earlier run left can serve again.

Two decisions `normalized_clips` makes per clip before decoding anything:

- `References.original`: may this original have a reference clip (no copy of its pixels,
  `media/clip_reference.py`), and where would that clip find it, relative to the batch? The
  normalizer then writes a reference if the original needs no resize, or in any case when
  `References.resized` says originals above the area cap are referenced too.
- `reusable_header`: an existing clip is reused only if it was made from the same bytes, with the
  same settings and normalizer, in the layout this run would choose (every header says whether
  its original was `resized`, so a copy that could now be a reference, or a resized reference
  this run would copy, is told apart without decoding).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kiwi_platform.ingestion.remote import is_url
from kiwi_platform.media.clips import FORMAT_REFERENCE, STORAGE_FORMATS, clip_header
from kiwi_platform.media.normalize import CLIP_STORAGE, NORMALIZER_VERSION


@dataclass(frozen=True)
class References:
    """Where reference clips of one batch find their originals."""

    root: str  # the store's root: stored copies (`<role>_file`) are relative to it
    batch_dir: str  # "" when references are off (or the clips do not live in the batch folder)
    resized: bool = False  # originals that need a resize are referenced too (read and resized every time)

    def original(self, rec: dict, role: str) -> dict | None:
        """`{"batch_file": ...}` for a copy in the batch, `{"rel": ...}` for a local original read in
        place, None when it cannot have a reference (references off, a remote original, a copy
        outside the batch)."""
        if not self.batch_dir:
            return None
        if rec.get(f"{role}_file"):
            inside = os.path.relpath(os.path.join(self.root, rec[f"{role}_file"]), self.batch_dir)
            return None if inside.startswith("..") else {"batch_file": Path(inside).as_posix()}
        where = rec.get(f"{role}_path") or ""
        return {"rel": rec[f"{role}_rel"]} if where and not is_url(where) and rec.get(f"{role}_rel") else None


def reusable_header(
    path: Path | str, source_sha: str, settings: dict, original: dict | None, resized_too: bool = False
) -> dict | None:
    """The header of the clip at `path` if this run may reuse it, else None: same source bytes,
    settings and normalizer, and the layout this run would choose (a reference to the same place
    when `original` allows one and the original needs no resize or `resized_too`; a copy in the
    asked storage otherwise)."""
    try:
        header = clip_header(path)
    except Exception:  # a corrupt clip is simply rebuilt
        return None
    if header.get("normalizer") != NORMALIZER_VERSION:
        return None
    if header.get("format") == FORMAT_REFERENCE:
        kept = {k: v for k, v in (header.get("original") or {}).items() if k != "size"}
        if original is None or kept != original:
            return None  # references are off now, or the original is read from elsewhere: rebuild
        if header.get("resized") and not resized_too:
            return None  # resized originals are copied now: rebuild as a copy
    elif header.get("format") != STORAGE_FORMATS[settings.get("storage") or CLIP_STORAGE]:
        return None  # the run asks for the other clip storage (JPEG frames vs video): rebuild
    elif original is not None and (resized_too or header.get("resized") is not True):
        return None  # a copy that could be a reference (or made before headers said): rebuild
    same = header.get("source_sha256") == source_sha
    return header if same and all(header.get(k) == v for k, v in clip_sizes(settings).items()) else None


def clip_sizes(settings: dict) -> dict:
    """The size settings a clip header records (the storage choice shows as the header's `format`)."""
    return {k: v for k, v in settings.items() if k != "storage"}
