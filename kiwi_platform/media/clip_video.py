"""The video member of a "kiwi-clip/2" clip: frames as one near-lossless H.264 stream.

Why: a clip of quality-95 JPEG frames was ~4x larger than the H.264 input it came from (each
frame coded alone); coding the frames as video (motion prediction) at a low CRF keeps more
detail than JPEG q95 in 2-5x fewer bytes (measured: docs/clips.md,
benchmarks/measured/clip_storage_2026-12-02.md).

Choices, each for byte-identical files and exact reads:

- **Raw H.264 Annex B** (`video.h264`), no container: the `.kclip` ZIP already is the container
  and `meta.json` holds frame count, size and fps, so there is no muxer to pin (MKV writes a random
  segment UID and muxing-app strings, MP4 creation times and a seek-back `moov`). Any tool reads it
  (`ffprobe -f h264 video.h264`). H.264 decoding is bit-exact by the standard, so every reader on
  every machine gets the same pixels.
- **libx264, yuv444p, CRF 6, preset "faster", mbtree off, one thread**: 4:4:4 because 4:2:0 chroma
  caps detailed content at ~37 dB whatever the CRF (and needs even sizes); CRF 6 is where PSNR
  reaches JPEG q95's on smooth synthetic frames (and is 3-6 dB above it on real video); "faster"
  encodes ~1.6x quicker than "medium" for ~5 % more bytes. One thread because x264's output
  depends on its thread count (the default is "one per core"). mbtree off because with it this
  x264 build's lookahead reads uninitialised memory: the same frames gave different bytes
  depending on what the heap held before (shown with MALLOC_PERTURB_; off, or with no B-frames,
  the bytes are stable; B-frames are kept, they save more). `+bitexact`, a fixed time base, and
  x264's version SEI ("x264 - core 165 ... options: ...") is dropped so the library build string
  is not in the file. A different x264 build (another PyAV wheel) may code the same frames
  differently; `normalizer` in the header is the knob to rebuild.
- **Colour conversion in OpenCV, not swscale**: BGR -> YCrCb is JPEG's full-range BT.601 integer
  transform (the same one the old JPEG frames used), fed to x264 as planes and flagged in the VUI
  (full range, BT.601), and inverted the same way on read.

Reads decode from the start: the clips are short (17-81 frames), one keyframe and then P/B frames,
so a subset read decodes up to its highest index and keeps only the wanted frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction

import av
import cv2
import numpy as np

MEMBER = "video.h264"
CODEC = "libx264"
PIX_FMT = "yuv444p"
CRF = 6
PRESET = "faster"
X264_PARAMS = "mbtree=0"  # see above: mbtree made the bytes depend on uninitialised memory
SETTINGS = f"h264 {PIX_FMT} crf={CRF} preset={PRESET} {X264_PARAMS} full-range bt601"  # stored in the header
_TIME_BASE = Fraction(1, 25)  # pinned: fps lives in meta.json, not in the bitstream
_DECODED_FORMATS = {PIX_FMT, "yuvj444p"}  # FFmpeg names full-range 4:4:4 "yuvj444p"
_START = b"\x00\x00\x01"
_SEI, _USER_DATA_UNREGISTERED = 6, 5
_READ_CHUNK = 1 << 16


class CorruptVideo(ValueError):
    """The video member cannot be decoded into the frames its header promises."""


def to_planes(frame_bgr: np.ndarray) -> np.ndarray:
    """A BGR uint8 frame as (3, H, W) Y, Cb, Cr planes (full-range BT.601, JPEG's transform)."""
    if frame_bgr.dtype != np.uint8 or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise ValueError(f"frames must be uint8 HxWx3, got {frame_bgr.dtype} {frame_bgr.shape}")
    y, cr, cb = cv2.split(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YCrCb))
    return np.stack([y, cb, cr])


def _drop_version_sei(data: bytes) -> bytes:
    """Remove x264's user-data SEI (its build and option string) from an Annex B packet.

    A start code cannot occur inside a NAL unit (emulation prevention), so splitting on it is exact.
    """
    if _START not in data:
        return data
    parts = data.split(_START)
    kept = [parts[0]] + [
        p for p in parts[1:] if not (p[:1] and p[0] & 0x1F == _SEI and p[1:2] == bytes([_USER_DATA_UNREGISTERED]))
    ]
    return _START.join(kept)


class Encoder:
    """Frames (as `to_planes` gives them) in, Annex B bytes out; one per clip, pinned settings."""

    def __init__(self, width: int, height: int) -> None:
        self.size = (height, width)
        self.count = 0
        cc = av.CodecContext.create(CODEC, "w")
        cc.width, cc.height, cc.pix_fmt = width, height, PIX_FMT
        cc.time_base, cc.framerate = _TIME_BASE, 1 / _TIME_BASE
        cc.thread_count = 1
        cc.color_range = int(av.video.reformatter.ColorRange.JPEG)
        cc.colorspace = int(av.video.reformatter.Colorspace.ITU601)
        cc.options = {"crf": str(CRF), "preset": PRESET, "x264-params": X264_PARAMS, "flags": "+bitexact"}
        self._cc = cc

    def encode(self, planes: np.ndarray) -> bytes:
        """Encode one frame; returns whatever bytes the encoder has ready (often none yet)."""
        if planes.shape[1:] != self.size:
            raise ValueError(f"frame size changed inside a clip: {planes.shape[1:]} != {self.size}")
        frame = av.VideoFrame.from_ndarray(planes, format=PIX_FMT)
        frame.pts = self.count
        self.count += 1
        return b"".join(_drop_version_sei(bytes(p)) for p in self._cc.encode(frame))

    def finish(self) -> bytes:
        """Flush the encoder (delayed B-frames); the stream is complete after this."""
        return b"".join(_drop_version_sei(bytes(p)) for p in self._cc.encode(None))


def _frames(read, name: str) -> Iterator[av.VideoFrame]:
    """Decoded frames of an Annex B stream read in chunks from `read(n)`."""
    cc = av.CodecContext.create("h264", "r")
    cc.thread_count = 1  # clips are small; threads cost more than they save here
    cc.options = {"err_detect": "crccheck+bitstream+buffer+explode"}
    try:
        while chunk := read(_READ_CHUNK):
            for packet in cc.parse(chunk):
                yield from cc.decode(packet)
        for packet in cc.parse(None):
            yield from cc.decode(packet)
        yield from cc.decode(None)
    except av.error.FFmpegError as exc:
        raise CorruptVideo(f"{name}: the video member does not decode ({exc})") from None


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    y, cb, cr = frame.to_ndarray()
    return cv2.cvtColor(cv2.merge([y, cr, cb]), cv2.COLOR_YCrCb2RGB)


def decode(read, name: str, header: dict, indices: Sequence[int]) -> np.ndarray:
    """The frames at `indices` (any order, repeats allowed) as (N, H, W, 3) RGB uint8.

    Decodes from frame 0 up to the highest wanted index and stops; `name` goes in every error.
    """
    total, size = int(header["frames"]), (int(header["height"]), int(header["width"]))
    wanted: dict[int, np.ndarray | None] = {}
    for index in indices:
        if not 0 <= index < total:
            raise IndexError(f"frame {index} outside clip of {total} frames")
        wanted[index] = None
    if not wanted:
        raise ValueError(f"{name}: no frames asked for")
    last, seen = max(wanted), -1
    for seen, frame in enumerate(_frames(read, name)):
        if frame.format.name not in _DECODED_FORMATS or (frame.height, frame.width) != size:
            got = f"{frame.format.name} {frame.width}x{frame.height}"
            raise CorruptVideo(f"{name}: decoded {got}, the header says {size[1]}x{size[0]} {PIX_FMT}")
        if seen in wanted:
            wanted[seen] = _rgb(frame)
        if seen == last:
            break
    if seen < last:
        raise CorruptVideo(f"{name}: the video member ends after {seen + 1} of {total} frames")
    return np.stack([wanted[i] for i in indices])
