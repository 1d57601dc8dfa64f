"""Shared fixtures: one tiny random-weight checkpoint per test session, fresh pipelines per test.

The demo media (`demo_video`, `demo_ref`) come from tests/conftest.py: a missing demo folder
fails the test with a clear message, never skips it.
"""

from __future__ import annotations

from pathlib import Path

import pytest


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
