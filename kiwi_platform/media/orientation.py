"""Display orientation: turn decoded pixels the way a player shows them.

Phones store portrait video as landscape frames plus a display matrix (MP4 `tkhd`, FFmpeg's
DISPLAYMATRIX side data) saying "rotate by -90 degrees"; JPEGs do the same with the EXIF
orientation tag. Every player applies it, so a pair looks aligned to a person only after it is
applied: normalization must output the displayed picture, and the probe must report the displayed
size, or a rotated source is compared (and trained) sideways against an upright target.

`Orientation.from_matrix` follows ffmpeg/ffplay's autorotate rules exactly (quarter turns, plus
the mirrored variants a matrix can hold), so a clip comes out as `ffplay` shows it. Angles that
are not quarter turns (rare, hand-written matrices) are rounded to the nearest quarter turn.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

# EXIF orientation values whose displayed image has width and height swapped.
EXIF_SWAPS_AXES = {5, 6, 7, 8}


@dataclass(frozen=True)
class Orientation:
    """Steps from stored pixels to displayed pixels, applied in order to an (H, W, C) array.

    `transpose`: swap rows and columns first; then `turns` counterclockwise quarter turns (0-3);
    then an optional horizontal (`hflip`) and vertical (`vflip`) mirror.
    """

    transpose: bool = False
    turns: int = 0
    hflip: bool = False
    vflip: bool = False
    rotation: int = 0  # the matrix's counterclockwise angle in degrees, as ffprobe reports it

    @property
    def swaps_axes(self) -> bool:
        """True when the displayed picture is H x W for a stored W x H frame."""
        return self.transpose != (self.turns % 2 == 1)

    @property
    def is_identity(self) -> bool:
        return not (self.transpose or self.turns % 4 or self.hflip or self.vflip)

    def display_size(self, width: int, height: int) -> tuple[int, int]:
        return (height, width) if self.swaps_axes else (width, height)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The displayed view of a stored frame (a view; copy it before handing it to C code)."""
        out = frame.swapaxes(0, 1) if self.transpose else frame
        out = np.rot90(out, self.turns) if self.turns % 4 else out
        out = out[:, ::-1] if self.hflip else out
        return out[::-1] if self.vflip else out

    @classmethod
    def from_matrix(cls, matrix: tuple[int, ...] | None) -> Orientation:
        """FFmpeg's 3x3 display matrix (9 int32, 16.16 fixed point) -> the steps ffplay applies."""
        if not matrix or len(matrix) != 9:
            return cls()
        angle = _rotation_get(matrix)
        if angle is None:
            return cls()
        theta = -round(angle)  # ffmpeg's get_rotation(): the clockwise angle, in [0, 360)
        theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
        quarter = round(theta / 90) % 4  # 1: 90 clockwise, 2: 180, 3: 270 clockwise
        rotation = int(round(angle))
        if quarter == 1:  # transpose=clock, or cclock_flip (a plain transpose) when mirrored
            return cls(transpose=True, rotation=rotation) if matrix[3] > 0 else cls(turns=3, rotation=rotation)
        if quarter == 2:
            return cls(hflip=matrix[0] < 0, vflip=matrix[4] < 0, rotation=rotation)
        if quarter == 3:  # transpose=cclock, or clock_flip (clockwise, then upside down) when mirrored
            return cls(turns=3, vflip=True, rotation=rotation) if matrix[3] < 0 else cls(turns=1, rotation=rotation)
        return cls(vflip=matrix[4] < 0, rotation=rotation)

    @classmethod
    def of_frame(cls, frame) -> Orientation:
        """The orientation a decoded PyAV frame carries (decoders copy the stream's matrix onto frames)."""
        data = frame.side_data.get("DISPLAYMATRIX")
        if data is None:
            return cls()
        raw = bytes(data)
        return cls.from_matrix(struct.unpack("=9i", raw[:36])) if len(raw) >= 36 else cls()


def _rotation_get(matrix: tuple[int, ...]) -> float | None:
    """av_display_rotation_get(): the counterclockwise angle in degrees, None for a degenerate matrix."""
    a, b, c, d = (v / 65536.0 for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    scale0, scale1 = math.hypot(a, c), math.hypot(b, d)
    if scale0 == 0 or scale1 == 0:
        return None
    return -math.degrees(math.atan2(b / scale1, a / scale0))


def exif_swaps_axes(orientation: int | None) -> bool:
    """True when an image's EXIF orientation makes the displayed image H x W (Pillow's exif_transpose does)."""
    return orientation in EXIF_SWAPS_AXES
