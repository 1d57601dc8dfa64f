"""The normalized clip format: one uncompressed ZIP per clip holding JPEG frames and a JSON header.

Why this format: frames are stored as quality-95 JPEG (about 7x smaller than raw RGB, encoded by
libjpeg-turbo faster than H.264 decodes), every frame is independently readable (training samples
frame subsets without decoding a GOP), ZIP's central directory gives random access, and any
tool can open it (`unzip -l clip.kclip`). Layout:

    frames/00000.jpg ...
    meta.json            {"format": "kiwi-clip/1", "frames": T, "height": H, "width": W, "fps": f, ...}

A batch keeps its clips as members of shards (`kiwi_platform.lib.shards`, docs/shards.md); the
readers here take a clip file or a shard reference alike.

Frames are written as soon as they are encoded (bounded memory) and the file is hashed while it
is written, so a clip is read from disk zero times during ingestion.

Byte-identical output: the same frames and header give the same file, on any day and in any
KIWI_HOME, so a table hash or DVC md5 only changes when the data does. Every ZIP member gets a
fixed date (1980-01-01, the earliest ZIP can store), fixed Unix permissions (0644) and creator
system, in a fixed order (frames in index order, then `meta.json`); the header JSON has sorted keys
and fixed separators; the JPEG encoder settings are pinned instead of left to OpenCV's defaults.
"""

from __future__ import annotations

import collections
import hashlib
import json
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from kiwi_platform.lib import shards
from kiwi_platform.lib.files import atomic_path

FORMAT = "kiwi-clip/1"
SUFFIX = ".kclip"
JPEG_QUALITY = 95
# Pinned (these are OpenCV's current defaults): baseline, standard Huffman tables, 4:2:0, no restarts.
_JPEG_PARAMS = [
    cv2.IMWRITE_JPEG_QUALITY,
    JPEG_QUALITY,
    cv2.IMWRITE_JPEG_PROGRESSIVE,
    0,
    cv2.IMWRITE_JPEG_OPTIMIZE,
    0,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    cv2.IMWRITE_JPEG_RST_INTERVAL,
    0,
]
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # a timestamp would make every write a new version
_ZIP_MODE = 0o100644 << 16  # regular file, rw-r--r--, whatever the umask or platform


def encode_bgr(frame_bgr: np.ndarray) -> tuple[bytes, tuple[int, int]]:
    """JPEG-encode one BGR uint8 frame; returns (bytes, (height, width))."""
    if frame_bgr.dtype != np.uint8 or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise ValueError(f"frames must be uint8 HxWx3, got {frame_bgr.dtype} {frame_bgr.shape}")
    ok, buf = cv2.imencode(".jpg", frame_bgr, _JPEG_PARAMS)
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes(), frame_bgr.shape[:2]


def _member(name: str) -> zipfile.ZipInfo:
    """A ZIP entry whose every field is fixed, so only the data decides the archive's bytes."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # Unix; ZipInfo picks 0 on Windows
    info.external_attr = _ZIP_MODE
    return info


def header_json(header: dict) -> bytes:
    """The header as stored: sorted keys, fixed separators, ASCII only."""
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class _HashingFile:
    """What zipfile needs of a file (write/tell/flush), hashing every byte on the way."""

    def __init__(self, fh) -> None:
        self.fh, self.digest, self.pos = fh, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.digest.update(data)
        self.pos += len(data)
        return self.fh.write(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        self.fh.flush()


def write_encoded(
    path: Path,
    jobs: Iterable[Callable[[], tuple[bytes, tuple[int, int]]]],
    fps: float,
    meta: dict | None = None,
    workers: int = 2,
) -> dict:
    """Run frame-encoding jobs in a thread pool and stream them, in order, into a clip at `path`.

    Each job returns (jpeg bytes, (h, w)); jobs are submitted as the iterable yields them (e.g.
    while a decoder produces frames), so conversion and encoding overlap decoding. The file is
    written atomically; the returned header includes the file's `sha256`.
    """
    header: dict = {"format": FORMAT, "fps": float(fps), **(meta or {})}
    with atomic_path(path) as tmp, ThreadPoolExecutor(max_workers=workers) as pool, open(tmp, "wb") as raw:
        out = _HashingFile(raw)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
            pending: collections.deque[Future] = collections.deque()
            written, shape = 0, None

            def drain(limit: int) -> None:
                nonlocal written, shape
                while len(pending) > limit:
                    data, size = pending.popleft().result()
                    if shape is not None and size != shape:
                        raise ValueError(f"frame size changed inside a clip: {size} != {shape}")
                    shape = size
                    zf.writestr(_member(f"frames/{written:05d}.jpg"), data)
                    written += 1

            for job in jobs:
                pending.append(pool.submit(job))
                drain(4 * workers)
            drain(0)
            if shape is None:
                raise ValueError("a clip needs at least one frame")
            header.update(frames=written, height=int(shape[0]), width=int(shape[1]))
            zf.writestr(_member("meta.json"), header_json(header))
    return {**header, "sha256": out.digest.hexdigest()}


def write_clip(
    path: Path, frames: Iterable[np.ndarray], fps: float, meta: dict | None = None, workers: int = 2
) -> dict:
    """Encode RGB uint8 frames (H, W, 3) into a clip file atomically; returns the header (+ sha256)."""
    jobs = (lambda f=frame: encode_bgr(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR)) for frame in frames)
    return write_encoded(path, jobs, fps, meta, workers)


def clip_header(path: Path | str) -> dict:
    """The clip's header; `path` is a clip file or a shard reference (`shard.zip#name.kclip`)."""
    with shards.open_member(path) as fh, zipfile.ZipFile(fh) as zf:
        return json.loads(zf.read("meta.json"))


def read_clip(path: Path | str, indices: Sequence[int] | None = None) -> np.ndarray:
    """Decode frames (all, or the given indices) into a (T, H, W, 3) uint8 RGB array.

    `path` is a clip file or a shard reference; only the wanted frames are read either way.
    """
    with shards.open_member(path) as fh, zipfile.ZipFile(fh) as zf:
        header = json.loads(zf.read("meta.json"))
        wanted = range(header["frames"]) if indices is None else indices
        out = []
        for index in wanted:
            if not 0 <= index < header["frames"]:
                raise IndexError(f"frame {index} outside clip of {header['frames']} frames")
            data = np.frombuffer(zf.read(f"frames/{index:05d}.jpg"), dtype=np.uint8)
            out.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return np.stack(out)
