"""Session fixtures: tiny checkpoints (built once, saved like released folders) and a synthetic frame pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiwi_platform.refvie.backends._loading import clear_model_cache
from tests.refvie.backends import tiny_checkpoints as tiny
from tests.refvie.backends.tiny_checkpoints import SQUARE


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-checkpoints")


@pytest.fixture(scope="session")
def qwen_dir(checkpoints: Path) -> Path:
    return tiny.build_tiny_qwen(checkpoints / "qwen")


@pytest.fixture(scope="session")
def sam_dir(checkpoints: Path) -> Path:
    return tiny.build_tiny_sam(checkpoints / "sam")


@pytest.fixture(scope="session")
def clip_dir(checkpoints: Path) -> Path:
    return tiny.build_tiny_clip(checkpoints / "clip")


@pytest.fixture(scope="session")
def sd_dir(checkpoints: Path) -> Path:
    return tiny.build_tiny_sd_inpaint(checkpoints / "sd-inpaint")


@pytest.fixture(scope="session")
def frame_pair() -> tuple[np.ndarray, np.ndarray]:
    """(source, target): 3 frames of 64x96 gradient; the target has a red square added at SQUARE."""
    h, w = 64, 96
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.stack([xx * 255 // w, yy * 255 // h, np.full((h, w), 128)], axis=-1).astype(np.uint8)
    source = np.repeat(frame[None], 3, axis=0)
    target = source.copy()
    x0, y0, x1, y1 = SQUARE
    target[:, y0:y1, x0:x1] = (220, 30, 30)
    return source, target


@pytest.fixture(autouse=True, scope="module")
def _free_models():
    """Drop loaded models after each module, so memory stays small across the folder."""
    yield
    clear_model_cache()
