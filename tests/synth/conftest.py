"""One small synthetic set shared by the tests (generation is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiwi_platform.synth import generate

SMALL = dict(frames=9, height=96, width=160, image_share=0.25)


@pytest.fixture(scope="session")
def synth_set(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Path:
    """8 pairs (2 images, 6 videos) with the reference column, seed 5."""
    out = tmp_path_factory.mktemp("synth") / "set"
    generate(out, 8, seed=5, with_ref=True, demo_dir=demo_dir, **SMALL)
    return out
