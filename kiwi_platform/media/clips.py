"""The normalized clip format: one uncompressed ZIP per clip holding the frames and a JSON header.

Three layouts, told apart by the header's `format`; every reader here takes all of them, so
batches made before keep working:

    kiwi-clip/1 (JPEG frames, the default)    kiwi-clip/2 (`clip_storage: video`)
    frames/00000.jpg ...  quality-95 JPEG     video.h264   one near-lossless H.264 stream
    meta.json    {"format": "kiwi-clip/N", "frames": T, "height": H, "width": W, "fps": f, ...}

    kiwi-clip/3 (an original that needed no resize, `clip_reference`)
    meta.json    the same header plus `original` (where it is, its size) and `source_sha256`

Why JPEG frames by default: every frame is readable alone and cheap to write (0.1-0.3 ms a frame at
128x224), so ingestion costs about a bare decode. Why the video layout as the other choice: JPEG
codes each frame alone, so a 17x128x224 clip is ~4x the size of the H.264 file it came from; coding the frames as video at a low CRF (`clip_video`) is 2-5x smaller
than the JPEG frames and keeps more detail (PSNR against the frames it was given: 41-45 dB against
36-45 dB for JPEG q95; docs/clips.md has the numbers). The price is CPU: encoding costs ~1.7 ms a
frame at 128x224 (JPEG 0.1 ms) and a read decodes from frame 0 up to the last frame wanted.
Which is cheaper overall depends on how long clips are kept (docs/clips.md weighs it).

Why a ZIP: its central directory gives random access by name, a clip is one file for DVC and shards
(a batch keeps its clips as members of shards, `kiwi_platform.lib.shards`, docs/shards.md; the
readers here take a clip file or a shard reference alike), and any tool opens it.

Frames are encoded as soon as they arrive (bounded memory: a few frames in flight) and the file is
hashed while it is written, so a clip is read from disk zero times during ingestion.

Byte-identical output: the same frames and header give the same file, on any day and in any
KIWI_HOME (the container's fixed fields are in `clip_zip`); members come in a fixed order (frames,
then `meta.json`) and the JPEG and x264 settings are pinned instead of left to library defaults.
"""

from __future__ import annotations

import collections
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from kiwi_platform.lib import shards
from kiwi_platform.lib.zip_member import member
from kiwi_platform.media import clip_reference, clip_video
from kiwi_platform.media.clip_zip import HEADER, clip_archive, header_json

FORMAT_JPEG = "kiwi-clip/1"
FORMAT_VIDEO = "kiwi-clip/2"
FORMAT_REFERENCE = clip_reference.FORMAT  # no frames: the original decoded in place
STORAGE_FORMATS = {"video": FORMAT_VIDEO, "jpeg": FORMAT_JPEG}
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


def _check_frame(frame: np.ndarray) -> None:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frames must be uint8 HxWx3, got {frame.dtype} {frame.shape}")


def encode_bgr(frame_bgr: np.ndarray) -> tuple[bytes, tuple[int, int]]:
    """JPEG-encode one BGR uint8 frame; returns (bytes, (height, width))."""
    _check_frame(frame_bgr)
    ok, buf = cv2.imencode(".jpg", frame_bgr, _JPEG_PARAMS)
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes(), frame_bgr.shape[:2]


class _JpegSink:
    """kiwi-clip/1 body: one stored JPEG member per frame."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf, self.count, self.shape = zf, 0, None

    @staticmethod
    def prepare(frame_bgr: np.ndarray) -> tuple[bytes, tuple[int, int]]:
        return encode_bgr(frame_bgr)

    def add(self, item: tuple[bytes, tuple[int, int]]) -> None:
        data, size = item
        if self.shape is not None and size != self.shape:
            raise ValueError(f"frame size changed inside a clip: {size} != {self.shape}")
        self.shape = size
        self.zf.writestr(member(f"frames/{self.count:05d}.jpg"), data)
        self.count += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _VideoSink:
    """kiwi-clip/2 body: one H.264 member, streamed into the ZIP packet by packet."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf, self.count, self.shape, self.encoder, self.out = zf, 0, None, None, None

    @staticmethod
    def prepare(frame_bgr: np.ndarray) -> np.ndarray:
        return clip_video.to_planes(frame_bgr)

    def add(self, planes: np.ndarray) -> None:
        if self.encoder is None:
            self.shape = planes.shape[1:]
            self.encoder = clip_video.Encoder(width=self.shape[1], height=self.shape[0])
            self.out = self.zf.open(member(clip_video.MEMBER), "w")
        self.out.write(self.encoder.encode(planes))
        self.count += 1

    def close(self) -> None:
        if self.encoder is not None:
            self.out.write(self.encoder.finish())
            self.out.close()

    def abort(self) -> None:
        """Close an open member so the ZIP can close; the temp file is then discarded."""
        if self.out is not None and not self.out.closed:
            self.out.close()


def write_frames(
    path: Path,
    jobs: Iterable[Callable[[], np.ndarray]],
    fps: float,
    meta: dict | None = None,
    workers: int = 2,
    storage: str = "video",
) -> dict:
    """Run frame jobs in a thread pool and stream their BGR uint8 frames, in order, into a clip.

    Each job returns one BGR frame (e.g. convert a decoded frame); jobs are submitted as the
    iterable yields them, so conversion (and JPEG encoding, or the colour transform for video)
    overlaps decoding, and at most 4 x `workers` frames are in flight. `storage` is "video"
    (kiwi-clip/2) or "jpeg" (kiwi-clip/1). The file is written atomically; the returned header
    includes the file's `sha256`.
    """
    if storage not in STORAGE_FORMATS:
        raise ValueError(f"storage must be one of {sorted(STORAGE_FORMATS)}, got {storage!r}")
    header: dict = {"format": STORAGE_FORMATS[storage], "fps": float(fps), **(meta or {})}
    if storage == "video":
        header["video"] = clip_video.SETTINGS
    sink_type = _VideoSink if storage == "video" else _JpegSink
    with ThreadPoolExecutor(max_workers=workers) as pool, clip_archive(path) as (zf, out):
        sink = sink_type(zf)
        pending: collections.deque[Future] = collections.deque()
        try:
            for job in jobs:
                pending.append(pool.submit(lambda job=job: sink.prepare(job())))
                while len(pending) > 4 * workers:
                    sink.add(pending.popleft().result())
            while pending:
                sink.add(pending.popleft().result())
        except BaseException:
            sink.abort()
            raise
        sink.close()
        if sink.shape is None:
            raise ValueError("a clip needs at least one frame")
        header.update(frames=sink.count, height=int(sink.shape[0]), width=int(sink.shape[1]))
        zf.writestr(member(HEADER), header_json(header))
    return {**header, "sha256": out.digest.hexdigest()}


def write_clip(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: float,
    meta: dict | None = None,
    workers: int = 2,
    storage: str = "jpeg",
) -> dict:
    """Encode RGB uint8 frames (H, W, 3) into a clip file atomically; returns the header (+ sha256).

    `storage` defaults to "jpeg" (kiwi-clip/1), the layout existing callers of this low-level writer
    expect; `normalize_media` writes "video" (kiwi-clip/2) unless told otherwise.
    """

    def job(frame: np.ndarray) -> np.ndarray:
        _check_frame(frame)
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)

    return write_frames(path, ((lambda f=f: job(f)) for f in frames), fps, meta, workers, storage)


def _header(zf: zipfile.ZipFile, path: Path | str) -> dict:
    try:
        return json.loads(zf.read("meta.json"))
    except KeyError:
        raise ValueError(f"{path}: not a clip (no meta.json)") from None


def clip_header(path: Path | str) -> dict:
    """The clip's header; `path` is a clip file or a shard reference (`shard.zip#name.kclip`)."""
    with shards.open_member(path) as fh, _open_zip(fh, path) as zf:
        return _header(zf, path)


def _open_zip(fh, path: Path | str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(fh)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: not a readable clip ({exc})") from None


def read_clip(path: Path | str, indices: Sequence[int] | None = None) -> np.ndarray:
    """Decode frames (all, or the given indices in the given order) into a (T, H, W, 3) uint8 RGB array.

    `path` is a clip file or a shard reference. A JPEG clip reads only the wanted frames; a video
    clip decodes from frame 0 up to the highest index wanted, and so does a reference clip, from
    its original (re-hashed first). A damaged clip raises ValueError
    naming it; an index outside the clip raises IndexError.
    """
    with shards.open_member(path) as fh, _open_zip(fh, path) as zf:
        header = _header(zf, path)
        wanted = range(header["frames"]) if indices is None else indices
        try:
            if header.get("format") == FORMAT_VIDEO:
                data = zf.read(clip_video.MEMBER)  # compressed and small; reading it whole checks its CRC
                return clip_video.decode(io.BytesIO(data).read, str(path), header, wanted)
            if header.get("format") == FORMAT_JPEG:
                return np.stack([_read_jpeg(zf, path, index, header) for index in wanted])
            if header.get("format") == FORMAT_REFERENCE:
                return clip_reference.read_frames(path, header, wanted)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(f"{path}: damaged clip ({exc})") from None
        raise ValueError(f"{path}: unknown clip format {header.get('format')!r}")


def _read_jpeg(zf: zipfile.ZipFile, path: Path | str, index: int, header: dict) -> np.ndarray:
    if not 0 <= index < header["frames"]:
        raise IndexError(f"frame {index} outside clip of {header['frames']} frames")
    image = cv2.imdecode(np.frombuffer(zf.read(f"frames/{index:05d}.jpg"), dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: frame {index} is not a readable JPEG")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
