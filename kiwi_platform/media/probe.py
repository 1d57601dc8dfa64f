"""Probe media files with PyAV (videos) and Pillow (images) without decoding every frame.

Probing demuxes the video stream (cheap) so a truncated file shows up as fewer packets than
the container declares; full decoding happens once, in normalization.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, UnidentifiedImageError

from kiwi_platform.lib.quarantine import RowRejected

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
# First bytes of containers we accept: if a file starts like a video but won't open, it is truncated.
_VIDEO_SIGNATURES = (b"ftyp", b"\x1a\x45\xdf\xa3", b"RIFF")


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "video" | "image"
    codec: str
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    size_bytes: int

    def to_dict(self, prefix: str = "") -> dict:
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}


def media_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return "unknown"


def probe_media(path: Path) -> MediaInfo:
    """Return stream facts for a file, or raise RowRejected with the reason it is unusable."""
    size = path.stat().st_size
    if size == 0:
        raise RowRejected("empty_file", f"{path.name} is 0 bytes", str(path))
    kind = media_kind(path)
    if kind == "image":
        return _probe_image(path, size)
    return _probe_video(path, size)


def _probe_image(path: Path, size: int) -> MediaInfo:
    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:  # verify() leaves the file unusable; reopen for facts
            img.load()
            width, height, fmt = img.width, img.height, (img.format or "unknown").lower()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise RowRejected("unreadable_image", f"{path.name} is not a readable image ({exc})", str(path)) from None
    return MediaInfo("image", fmt, width, height, 0.0, 1, 0.0, size)


def _looks_like_video(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(16)
    return any(sig in head for sig in _VIDEO_SIGNATURES)


def _probe_video(path: Path, size: int) -> MediaInfo:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        if _looks_like_video(path):
            raise RowRejected(
                "truncated_video", f"{path.name} starts like a video but cannot be opened ({exc})", str(path)
            ) from None
        raise RowRejected("not_media", f"{path.name} is not a video file ({exc})", str(path)) from None
    with container:
        if not container.streams.video:
            raise RowRejected("not_media", f"{path.name} has no video stream", str(path))
        stream = container.streams.video[0]
        declared = int(stream.frames or 0)
        packets = 0
        try:
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
        except (av.error.FFmpegError, OSError) as exc:
            raise RowRejected(
                "truncated_video", f"{path.name} breaks off after {packets} frames ({exc})", str(path)
            ) from None
        if packets == 0:
            raise RowRejected("truncated_video", f"{path.name} holds no video frames", str(path))
        if declared and packets < declared:
            raise RowRejected(
                "truncated_video", f"{path.name} declares {declared} frames but only {packets} are present", str(path)
            )
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        else:
            duration = packets / float(rate) if rate else 0.0
        ctx = stream.codec_context
        return MediaInfo("video", ctx.name, int(ctx.width), int(ctx.height), float(rate), packets, duration, size)
