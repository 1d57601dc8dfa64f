"""Named colors as OpenCV hues, so prompts can say "red" and recolors are exact hue shifts."""

from __future__ import annotations

import cv2
import numpy as np

#: name -> OpenCV hue (0..179). Neighbours are >= 12 apart, so a named recolor is visible.
COLORS: dict[str, int] = {
    "red": 0,
    "orange": 12,
    "yellow": 27,
    "green": 60,
    "cyan": 90,
    "blue": 115,
    "purple": 138,
    "pink": 163,
}


def hue_distance(a: int, b: int) -> int:
    """Circular distance between two OpenCV hues."""
    d = abs(a - b) % 180
    return min(d, 180 - d)


def hsv_to_rgb(hue: int, saturation: float, value: float) -> np.ndarray:
    """One color as an RGB uint8 triple (hue in OpenCV units, saturation/value in 0..1)."""
    hsv = np.array([[[hue, round(saturation * 255), round(value * 255)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
