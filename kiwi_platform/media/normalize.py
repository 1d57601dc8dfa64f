"""Turn a probed source/target file into a normalized clip: first N frames, area cap, sides in 32s.

docs/contract.md §1.3: take the first `num_frames` frames from frame 0 (1 for images), resize so the
area is at most `max_area` keeping the aspect ratio, floor each side to a multiple of `multiple`,
and center-crop to that size. Resizing happens in PyAV's swscale on the decoded YUV planes (chroma
at its own quarter size), then one unscaled YUV->BGR conversion: measured on 1920x1088 -> 1275x722,
2.8 ms/frame against 10.2 ms for the same AREA resize fused into the conversion to packed BGR
(swscale's slow generic path), so the resize costs little on top of decoding.

Frames come out as a player displays them: a video's display matrix (phones store portrait video
as rotated landscape frames) and an image's EXIF orientation are applied before the size math,
so a rotated source and its upright target normalize to the same shape and the same picture.
`NORMALIZER_VERSION` is stored in each clip header; clips made by an older normalizer (e.g.
sideways ones) are rebuilt instead of reused.

Clips are stored as JPEG frames ("kiwi-clip/1") or, with `storage="video"`, as near-lossless H.264
("kiwi-clip/2", `media/clip_video.py`): 2-3x smaller and closer to the decoded source, for 7-15x
the CPU per frame to encode and about 3x to read (docs/clips.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

from kiwi_platform.lib.quarantine import RowRejected
from kiwi_platform.media.clips import write_clip, write_frames
from kiwi_platform.media.orientation import Orientation
from kiwi_platform.media.probe import media_kind

NORMALIZER_VERSION = 3  # 2: display rotation applied, byte-reproducible clips; 3: resize in YUV (AREA)
# "jpeg" (kiwi-clip/1, JPEG frames) or "video" (kiwi-clip/2, near-lossless H.264); the run config's
# `clip_storage` picks per run. JPEG stays the default: see docs/clips.md for the measured trade-off.
CLIP_STORAGE = "jpeg"


def output_size(width: int, height: int, max_area: int, multiple: int = 32) -> tuple[int, int, int, int]:
    """Return (resized_w, resized_h, crop_w, crop_h) for a frame of width x height."""
    scale = min(1.0, math.sqrt(max_area / float(width * height)))
    resized_w = max(multiple, math.floor(width * scale + 1e-6))  # floor: the area stays <= max_area
    resized_h = max(multiple, math.floor(height * scale + 1e-6))  # (+eps: 1920*(2/3) is 1279.999...)
    crop_w = (resized_w // multiple) * multiple
    crop_h = (resized_h // multiple) * multiple
    return resized_w, resized_h, crop_w, crop_h


def _center_crop(frame: np.ndarray, crop_w: int, crop_h: int) -> np.ndarray:
    h, w = frame.shape[:2]
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    return np.ascontiguousarray(frame[top : top + crop_h, left : left + crop_w])


def iter_video_jobs(path: Path, num_frames: int, max_area: int, multiple: int = 32) -> Iterator[Callable]:
    """Decode the first `num_frames` frames; yield one job per frame that converts (swscale resize
    to BGR, which releases the GIL) and crops it in the writer's thread pool.

    Raises RowRejected if decoding breaks or the video is too short.
    """
    count = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            sizes, orientation = None, Orientation()
            for frame in container.decode(stream):
                if sizes is None:  # the first frame decides orientation and size for the whole clip
                    orientation = Orientation.of_frame(frame)
                    sizes = output_size(*orientation.display_size(frame.width, frame.height), max_area, multiple)
                yield lambda frame=frame, sizes=sizes, o=orientation: _convert(frame, sizes, o)
                count += 1
                if count >= num_frames:
                    return
    except (av.error.FFmpegError, OSError) as exc:
        raise RowRejected(
            "truncated_video", f"{path.name}: decoding failed at frame {count} ({exc})", str(path)
        ) from None
    if count < num_frames:
        raise RowRejected("too_few_frames", f"{path.name}: decoded {count} frames, {num_frames} needed", str(path))


def _convert(frame: av.VideoFrame, sizes: tuple[int, int, int, int], orientation: Orientation) -> np.ndarray:
    """Resize in stored orientation (swscale, area filter, in the decoder's pixel format), convert to
    BGR, then turn to the displayed orientation, then crop.

    Every frame is scaled to the first frame's size, so a mid-stream resolution change cannot
    produce a clip of mixed sizes.
    """
    rw, rh, cw, ch = sizes
    stored_w, stored_h = orientation.display_size(rw, rh)  # the same swap maps display -> stored
    if (stored_w, stored_h) != (frame.width, frame.height):
        frame = frame.reformat(width=stored_w, height=stored_h, interpolation="AREA")
    shown = orientation.apply(frame.to_ndarray(format="bgr24"))
    if shown.strides[0] > 0 and shown.strides[1:] == (3, 1):  # upright: rows of packed pixels
        h, w = shown.shape[:2]
        top, left = (h - ch) // 2, (w - cw) // 2
        return shown[top : top + ch, left : left + cw]  # a view: OpenCV reads row-strided arrays, no copy
    return _center_crop(shown, cw, ch)


def load_image(path: Path, max_area: int, multiple: int = 32) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            rw, rh, cw, ch = output_size(img.width, img.height, max_area, multiple)
            if (rw, rh) != img.size:
                img = img.resize((rw, rh), Image.Resampling.BOX)
            return _center_crop(np.asarray(img), cw, ch)
    except OSError as exc:
        raise RowRejected("unreadable_image", f"{path.name}: {exc}", str(path)) from None


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
) -> dict:
    """Write the normalized clip for one media file to `dst`; returns the clip header (+ its sha256).

    `storage` is "video" or "jpeg" (clip layout, see `clips`); None means `CLIP_STORAGE`.
    """
    meta = {"normalizer": NORMALIZER_VERSION, **(meta or {})}
    storage = storage or CLIP_STORAGE
    if media_kind(src) == "image":
        frames = iter([load_image(src, max_area, multiple)])
        return write_clip(dst, frames, fps=0.0, meta={"source_kind": "image", **meta}, storage=storage)
    jobs = iter_video_jobs(src, num_frames, max_area, multiple)
    return write_frames(dst, jobs, fps=fps, meta={"source_kind": "video", **meta}, storage=storage)
