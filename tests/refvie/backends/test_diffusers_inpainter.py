"""The diffusers inpainter loads a local pipeline, fills the hole and keeps every pixel outside it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends.diffusers_inpainter import DiffusersInpainter, working_size
from kiwi_platform.refvie.types import Inpainter, SampleRejected
from tests.refvie.backends.tiny_checkpoints import SQUARE


def _hole(shape: tuple[int, int]) -> np.ndarray:
    x0, y0, x1, y1 = SQUARE
    hole = np.zeros(shape, dtype=bool)
    hole[y0:y1, x0:x1] = True
    return hole


def test_hole_is_filled_and_outside_is_preserved(sd_dir: Path, frame_pair) -> None:
    """Output has the input's shape and dtype, differs inside the hole, is bit-identical outside,
    and the fixed seed makes a second call give the same pixels (stable content hashes)."""
    image = frame_pair[1][0]
    hole = _hole(image.shape[:2])
    inpainter = DiffusersInpainter(sd_dir, steps=2, resolution=64)
    assert isinstance(inpainter, Inpainter)
    out = inpainter.inpaint(image, hole)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], image[~hole])
    assert not np.array_equal(out[hole], image[hole])
    assert np.array_equal(inpainter.inpaint(image, hole), out)


def test_empty_hole_and_bad_shapes(sd_dir: Path, frame_pair) -> None:
    """No hole returns an unchanged copy without running the model; mismatched shapes quarantine the sample."""
    image = frame_pair[1][0]
    inpainter = DiffusersInpainter(sd_dir, steps=1, resolution=64)
    same = inpainter.inpaint(image, np.zeros(image.shape[:2], dtype=bool))
    assert np.array_equal(same, image) and same is not image
    with pytest.raises(SampleRejected) as info:
        inpainter.inpaint(image, np.ones((10, 10), dtype=bool))
    assert info.value.reason == "qc_backend_error"


def test_working_size_keeps_aspect_on_the_latent_grid() -> None:
    """The pipeline runs at ~`resolution` on its longer side, both sides multiples of the latent grid."""
    assert working_size(64, 96, 64, 16) == (48, 64)
    assert working_size(480, 832, 512, 64) == (320, 512)
    assert working_size(64, 96, None, 16) == (64, 96)


def test_missing_component_is_a_one_line_error(sd_dir: Path, tmp_path: Path) -> None:
    """A pipeline folder missing a component listed in model_index.json is rejected before loading."""
    broken = tmp_path / "sd"
    shutil.copytree(sd_dir, broken)
    shutil.rmtree(broken / "unet")
    with pytest.raises(KiwiUserError, match=r"lacks the unet/ component") as info:
        DiffusersInpainter(broken)
    assert "\n" not in str(info.value)
    with pytest.raises(KiwiUserError, match="lacks model_index.json"):
        DiffusersInpainter(broken / "vae")
    assert json.loads((sd_dir / "model_index.json").read_text())["_class_name"] == "StableDiffusionInpaintPipeline"
