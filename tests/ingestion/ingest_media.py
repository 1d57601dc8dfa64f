"""Media makers shared by the ingestion tests and fixtures: small real H.264 clips and JPEGs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

MIN_FRAMES = 16  # the minimum the validation tests ask for; `short.mp4` is below it
HEADER = ("prompt", "src_video", "tgt_video", "ref_image")


def pattern(index: int, width: int, height: int, seed: int) -> np.ndarray:
    """A moving, textured RGB frame: smooth enough for H.264, different per frame and per seed."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = index * 0.35 + seed * 1.7
    r = 127 + 100 * np.sin(xx / 9.0 + phase)
    g = 127 + 100 * np.cos(yy / 7.0 - phase * 0.7)
    b = 127 + 100 * np.sin((xx + yy) / 13.0 + seed)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def make_video(
    path: Path,
    frames: int,
    width: int = 96,
    height: int = 64,
    fps: int = 16,
    seed: int = 0,
    faststart: bool = False,
    rotation: tuple[int, bool, bool] | None = None,
) -> Path:
    """Encode `frames` frames of `pattern` as H.264 in MP4 (moov at the end unless `faststart`).

    `rotation` = (degrees counterclockwise, hflip, vflip) writes a real display matrix into the MP4
    (`tkhd`), the way phones mark portrait clips; the stored frames stay `width` x `height`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation is not None:
            degrees, hflip, vflip = rotation
            stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(i, width, height, seed), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def make_image(path: Path, width: int = 96, height: int = 64, seed: int = 0, exif_orientation: int = 0) -> Path:
    """A JPEG/PNG of `pattern`; `exif_orientation` (1-8) tags it the way cameras tag turned shots."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        extra["exif"] = exif
    Image.fromarray(pattern(0, width, height, seed)).save(path, quality=92, **extra)
    return path


def displayed(stored: np.ndarray, degrees: int, hflip: bool = False, vflip: bool = False) -> np.ndarray:
    """What a player shows for a stored frame, as PyAV documents its display rotation: turn
    `degrees` counterclockwise, then mirror. Independent of the code under test."""
    out = np.rot90(stored, (degrees // 90) % 4)
    out = out[:, ::-1] if hflip else out
    return np.ascontiguousarray(out[::-1] if vflip else out)


def remux_faststart(src: Path, dst: Path) -> Path:
    """Copy a real MP4's packets into a new MP4 whose index (moov) comes before the data."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = inp.streams.video[0]
        target = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = target
            out.mux(packet)
    return dst


def cut_in_half(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@dataclass(frozen=True)
class Kit:
    """The shared media folder; file names used by the tests are relative to `root`."""

    root: Path
    outside: Path  # a valid clip outside `root`, the target of `link_out.mp4`
