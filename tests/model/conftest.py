"""Shared fixtures: one tiny random-weight checkpoint per test session, fresh pipelines per test."""

from __future__ import annotations

from pathlib import Path

import pytest

DEMO = Path("/work/shared/data/kiwi_demo")
if not DEMO.is_dir():  # the repo may carry its own copy
    DEMO = Path(__file__).resolve().parents[2] / "data" / "kiwi_demo"
DEMO_VIDEO = DEMO / "video" / "source" / "7800630815900c243b81f8ed5acb6a9dd40b47fb18b48373bcf132039ffb0a8d.mp4"
DEMO_REF = DEMO / "video" / "reference" / "reco_replace_088301.jpg"


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kiwi model init --config tiny` equivalent, built once."""
    from model.build import init_checkpoint

    return init_checkpoint("tiny", tmp_path_factory.mktemp("ckpt") / "tiny", seed=0)


@pytest.fixture()
def tiny_pipe(tiny_ckpt: Path):
    from model.pipeline import KiwiEditPipeline

    pipe = KiwiEditPipeline.from_pretrained(tiny_ckpt)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture()
def demo_video() -> Path:
    if not DEMO_VIDEO.is_file():
        pytest.skip("demo media not available")
    return DEMO_VIDEO


@pytest.fixture()
def demo_ref() -> Path:
    if not DEMO_REF.is_file():
        pytest.skip("demo media not available")
    return DEMO_REF
