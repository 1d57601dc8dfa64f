"""Reference clips (kiwi-clip/3): no frames stored, the original decoded in place on every read.

A normalized copy of an original is a second copy of its pixels, re-encoded: 2-5x the bytes of
the H.264 file it came from for an original already at the target size (the copy holds the same
pixels), and a JPEG copy of one scaled down to the area cap can outweigh the larger original
(docs/clips.md). At millions of pairs that is most of the data plane's storage. A reference clip
is a clip file holding only `meta.json`: the usual header (frames, size, fps, the normalizer's settings) plus where the
original is and its sha256. Every reader (`clips.read_clip`) decodes the original through the
normalizer's own functions (`media/decode.py`: the first N frames, the area-cap resize for an
original above it, the crop), so it gets exactly the frames a copy would have held before its
JPEG or H.264 coding. The price is paid on reads: a decode per read, plus the resize for an
original above the cap.

Where the original is, relative to the batch folder that holds the clip, never as an absolute path
(the clip is versioned data; the same batch in another KIWI_HOME or on another machine must have the
same bytes):

- `{"rel": NAME}`: read in place, NAME as the manifest wrote it, under the base folder the batch's
  origin file names (`lib/batch_origin.py`);
- `{"batch_file": PATH}`: the copy ingestion stored in the batch (`copy_raw`), PATH under the batch.

Each read re-hashes the original (sha256, a few ms against the decode's hundreds for a 720p clip), so
an original edited, replaced or deleted since ingestion fails the read with one line naming it
instead of feeding other pixels to training under the old hash.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kiwi_platform.lib import shards
from kiwi_platform.lib.batch_origin import batch_dir_of, local_original, read_origin
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.lib.quarantine import RowRejected
from kiwi_platform.lib.zip_member import member
from kiwi_platform.media.clip_zip import HEADER, clip_archive, header_json
from kiwi_platform.media.decode import Geometry, decoded_frames, open_image

FORMAT = "kiwi-clip/3"


def write_reference(path: Path, header: dict) -> dict:
    """Write a reference clip (only `meta.json`) atomically; returns the header (+ the file's sha256)."""
    header = {**header, "format": FORMAT}
    with clip_archive(path) as (zf, out):
        zf.writestr(member(HEADER), header_json(header))
    return {**header, "sha256": out.digest.hexdigest()}


def locate(clip: str | os.PathLike, header: dict) -> Path:
    """The local path of the original a reference clip reads; ValueError when it cannot be found."""
    original = header.get("original") or {}
    batch = batch_dir_of(shards.holder(clip))
    if batch is None:
        raise ValueError(f"{clip}: a reference clip outside a batch folder (no origin file above it)")
    if original.get("batch_file"):
        return batch / original["batch_file"]
    where = local_original((read_origin(batch) or {}).get("base_path"), original.get("rel") or "")
    if not where:
        raise ValueError(f"{clip}: where its original {original.get('rel')!r} lives is unknown; re-ingest the batch")
    return Path(where)


def read_frames(clip: str | os.PathLike, header: dict, wanted: Sequence[int]) -> np.ndarray:
    """The wanted frames (in the order asked, repeats allowed) as (T, H, W, 3) uint8 RGB."""
    total = int(header["frames"])
    for index in wanted:
        if not 0 <= index < total:
            raise IndexError(f"frame {index} outside clip of {total} frames")
    path = locate(clip, header)
    _check_original(clip, path, header)
    settings = (int(header["max_area"]), int(header["multiple"]))
    try:
        if header.get("source_kind") == "image":
            image, _ = open_image(path, *settings)
            frames = {0: image}
        else:
            frames = _decode(path, total, set(wanted), settings)
    except RowRejected as rej:
        raise ValueError(f"{clip}: its original cannot be read: {rej.message}") from None
    out = np.stack([frames[i] for i in wanted]) if len(wanted) else np.zeros((0, 0, 0, 3), np.uint8)
    if out.shape[1:3] != (header["height"], header["width"]) and len(wanted):
        raise ValueError(f"{clip}: its original {path} now decodes to {out.shape[2]}x{out.shape[1]} frames")
    return out


def _decode(path: Path, total: int, wanted: set[int], settings: tuple[int, int]) -> dict[int, np.ndarray]:
    """Decode from frame 0 up to the last wanted frame; convert only the wanted ones (RGB)."""
    frames: dict[int, np.ndarray] = {}
    last, geometry = max(wanted, default=-1), None
    stream = decoded_frames(path, total)
    try:
        for index, frame in enumerate(stream):
            if index > last:
                break
            geometry = geometry or Geometry.of(frame, *settings)
            if index in wanted:
                frames[index] = np.ascontiguousarray(geometry.convert(frame)[..., ::-1])
    finally:
        stream.close()
    return frames


def _check_original(clip: str | os.PathLike, path: Path, header: dict) -> None:
    """Same size and sha256 as when the clip was made, or a one-line ValueError."""
    expected = header.get("original", {}).get("size")
    try:
        size = path.stat().st_size
    except OSError:
        raise ValueError(f"{clip}: its original {path} vanished since ingestion") from None
    if expected is not None and size != expected:
        raise ValueError(f"{clip}: its original {path} changed since ingestion ({size} bytes, ingested {expected})")
    digest = sha256_file(path)
    if digest != header.get("source_sha256"):
        raise ValueError(
            f"{clip}: its original {path} changed since ingestion (sha256 {digest[:16]}, "
            f"ingested {str(header.get('source_sha256'))[:16]})"
        )
