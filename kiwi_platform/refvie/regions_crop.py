"""The target's edited region as an image, for judging a reference against it."""

from __future__ import annotations

import numpy as np

from kiwi_platform.refvie.types import EditRegion


def target_region_crop(target: np.ndarray, region: EditRegion) -> np.ndarray:
    """Crop the frame where the edited region is largest to that frame's mask box.

    Background changes keep their (frame-sized) box: the judge then compares the new background
    with the reference background.
    """
    areas = region.masks.reshape(len(region.masks), -1).sum(axis=1)
    index = int(areas.argmax())
    mask = region.masks[index]
    if not mask.any():
        return target[index]
    ys, xs = np.nonzero(mask)
    return target[index, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
