"""Global style filters (OpenCV, fast per frame) and the instruction that names each one."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)


def sepia(frame: np.ndarray) -> np.ndarray:
    """Classic sepia matrix."""
    return np.clip(frame.astype(np.float32) @ _SEPIA.T, 0, 255).astype(np.uint8)


def posterize(frame: np.ndarray) -> np.ndarray:
    """Four flat levels per channel."""
    return (frame // 64 * 85).astype(np.uint8)


def cartoon(frame: np.ndarray) -> np.ndarray:
    """Smoothed, quantized colors with bold dark outlines."""
    smooth = cv2.medianBlur(frame, 5)
    flat = (smooth // 48 * 48 + 24).astype(np.uint8)
    gray = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY)
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 4)
    return cv2.bitwise_and(flat, flat, mask=edges)


def noir(frame: np.ndarray) -> np.ndarray:
    """High-contrast black and white."""
    gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    return np.repeat(gray[..., None], 3, axis=-1)


def thermal(frame: np.ndarray) -> np.ndarray:
    """False-color heat map of luminance."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


#: name -> (filter, instruction template; {media} is "video" or "image").
STYLES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "sepia": (sepia, "Make the {media} look like an old sepia-toned photograph."),
    "posterize": (posterize, "Posterize the {media} into a few flat color bands."),
    "cartoon": (cartoon, "Turn the {media} into a flat cartoon with bold black outlines."),
    "noir": (noir, "Convert the {media} to high-contrast black and white."),
    "thermal": (thermal, "Render the {media} as a false-color thermal camera image."),
}
