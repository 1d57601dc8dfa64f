"""Probe media files with PyAV (videos) and Pillow (images) without decoding every frame.

Probing demuxes the video stream (cheap) so a truncated file shows up as fewer packets than
the container declares; full decoding happens once, in normalization. Only the first frame is
decoded here, for its display matrix: sizes are reported as displayed (a portrait phone clip
stored as 1920x1080 with a -90 degree matrix is 1080x1920), since that is the size pairs are
compared and normalized at.

The file name says what a file should be, the bytes say what it is: a PNG renamed `.mp4` (or an
MP4 renamed `.png`) is a `kind_mismatch`, not a one-frame video that is `too_few_frames`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, UnidentifiedImageError

from kiwi_platform.lib.quarantine import RowRejected
from kiwi_platform.media.orientation import Orientation, exif_swaps_axes

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
# First bytes of containers we accept: if a file starts like a video but won't open, it is truncated.
_VIDEO_SIGNATURES = (b"ftyp", b"\x1a\x45\xdf\xa3", b"RIFF")
# ...except these, which share a container with video but are still images (WebP, HEIF, AVIF).
_IMAGE_SIGNATURES = (b"WEBP", b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif")
# FFmpeg opens single images too; these demuxers mean "this file is a still image".
_IMAGE_DEMUXERS = {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "jpegls_pipe"}
# Packets decoded at most while looking for the first frame (its display matrix).
_FIRST_FRAME_PACKETS = 64


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
    rotation: int = 0  # display rotation applied to width/height, degrees counterclockwise (ffprobe's sign)

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
            exif_orientation = img.getexif().get(0x0112)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        if _looks_like_video(path):
            raise RowRejected(
                "kind_mismatch", f"{path.name} is named like an image but holds a video", str(path)
            ) from None
        raise RowRejected("unreadable_image", f"{path.name} is not a readable image ({exc})", str(path)) from None
    if exif_swaps_axes(exif_orientation):  # normalization applies EXIF orientation (exif_transpose)
        width, height = height, width
    return MediaInfo("image", fmt, width, height, 0.0, 1, 0.0, size)


def _looks_like_video(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return any(sig in head for sig in _VIDEO_SIGNATURES) and not any(sig in head for sig in _IMAGE_SIGNATURES)


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
        demuxer = container.format.name
        if demuxer in _IMAGE_DEMUXERS:
            what = (
                demuxer.removesuffix("_pipe") if demuxer != "image2" else container.streams.video[0].codec_context.name
            )
            raise RowRejected(
                "kind_mismatch", f"{path.name} is named like a video but holds a {what.upper()} image", str(path)
            )
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # one frame is decoded: no thread pool to start
        declared = int(stream.frames or 0)
        packets, orientation = 0, None
        try:
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
                if orientation is None:
                    orientation = _first_frame_orientation(stream, packet, packets)
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
        orientation = orientation or Orientation()
        width, height = orientation.display_size(int(ctx.width), int(ctx.height))
        return MediaInfo(
            "video", ctx.name, width, height, float(rate), packets, duration, size, rotation=orientation.rotation
        )


def _first_frame_orientation(stream, packet, packets: int) -> Orientation | None:
    """Decode until the first frame appears and return its orientation; None while still waiting.

    A decoder that fails or stays silent for many packets gives up (identity): normalization
    decodes everything and reports real decoding errors there.
    """
    try:
        frames = stream.decode(packet)
    except av.error.FFmpegError:
        return Orientation()
    if frames:
        return Orientation.of_frame(frames[0])
    return Orientation() if packets >= _FIRST_FRAME_PACKETS else None


IMAGE_FORMAT_SUFFIX = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp", "tiff": ".tif"}


def probe_image_bytes(data: bytes | None, what: str = "the embedded reference") -> tuple[str, int, int]:
    """(file suffix, displayed width, height) of an image held in memory (an embedded reference).

    A null, empty or undecodable image, or one in a format we do not store, is `unreadable_image`.
    """
    import io

    if not data:
        raise RowRejected("unreadable_image", f"{what} image is {'null' if data is None else 'empty (0 bytes)'}")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            width, height, fmt = img.width, img.height, (img.format or "").lower()
            exif_orientation = img.getexif().get(0x0112)
    except UnidentifiedImageError:
        raise RowRejected("unreadable_image", f"{what} image is not in a format Pillow can read") from None
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RowRejected("unreadable_image", f"{what} image cannot be decoded ({detail})") from None
    if fmt not in IMAGE_FORMAT_SUFFIX:
        raise RowRejected("unreadable_image", f"{what} image is {fmt or 'of an unknown format'}, not JPEG/PNG/WebP")
    if exif_swaps_axes(exif_orientation):
        width, height = height, width
    return IMAGE_FORMAT_SUFFIX[fmt], width, height
