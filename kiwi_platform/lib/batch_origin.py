"""The file beside a batch that says where its originals live on this machine (docs/raw-media.md).

`batches/<batch>/raw_edit_pairs.origin.json` holds the base folder (or URL prefix) the batch's
manifest names its media against. It is not versioned: the versioned tables name media relative to
that base, so the same data read from a moved copy keeps its table bytes (issue 16.9). Ingestion
writes it (`kiwi_platform.ingestion.origins`); a reference clip (`media/clip_reference.py`) reads
it to find the original it decodes, from the clip's own location in the batch folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ORIGIN_FILE = "raw_edit_pairs.origin.json"
_MAX_DEPTH = 6  # a clip sits at most this deep under its batch folder (normalized_clips/clips/.staging/...)


def read_origin(batch_dir: Path) -> dict | None:
    """The batch's origin record, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(batch_dir) / ORIGIN_FILE).read_text())
    except (OSError, ValueError):
        return None


def batch_dir_of(path: str | os.PathLike) -> Path | None:
    """The batch folder holding `path`: the nearest folder above it with an origin file."""
    here = Path(path).absolute().parent
    for _ in range(_MAX_DEPTH):
        if (here / ORIGIN_FILE).is_file():
            return here
        if here.parent == here:
            break
        here = here.parent
    return None


def local_original(base: str | None, rel: str) -> str:
    """The absolute local path of a file the manifest named `rel` under `base` ("" if unknown)."""
    if not rel:
        return ""
    if os.path.isabs(rel):
        return rel
    return os.path.normpath(os.path.join(base, rel)) if base else ""
