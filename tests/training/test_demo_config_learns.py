"""The quick start's training config makes the tiny model learn: the demo's curves fall.

`kiwi demo` trains with the stage assets' default run config (StageConfig), so these tests build
the TrainConfig exactly as the stage assets do from those defaults and train the tiny model on
synthetic edits. Validation uses fixed noise and timesteps, so its fall is the learning signal;
the per-step training loss swings with each step's random timestep, so it is compared as means
over the first and last quarter of the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.training import StageConfig
from kiwi_platform.training import train
from kiwi_platform.training.stage_run import build_train_config

from .conftest import make_training_manifest


def _quarters(losses: list[float]) -> tuple[float, float]:
    q = max(1, len(losses) // 4)
    return sum(losses[:q]) / q, sum(losses[-q:]) / q


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """12 synthetic pairs (image, video and reference rows) and the tiny random-init start point."""
    from model.build import init_checkpoint

    root = tmp_path_factory.mktemp("demo-config")
    data = make_training_manifest(root / "data", 12, seed=3)
    base = root / "base"
    init_checkpoint("tiny", base, seed=0, overwrite=True)
    return {"data": data, "base": base, "root": root}


def _train_stage(demo_like: dict, stage: int, start: Path):
    config = build_train_config(stage, StageConfig(), start)
    data = demo_like["data"]
    return train(config, data.manifest, data.data_root, demo_like["root"] / f"stage{stage}", resume=False)


def test_demo_config_stage1_loss_falls(demo_like: dict) -> None:
    """Stage 1 at the demo defaults (100 steps, tiny-model LR): validation loss at least 10 % lower at the end,
    and the last quarter's mean training loss below the first quarter's."""
    result = _train_stage(demo_like, 1, demo_like["base"])
    demo_like["stage1"] = result.final_dir
    assert result.steps == StageConfig().max_steps
    (_, first), (_, last) = result.val_losses[0], result.val_losses[-1]
    assert last < 0.9 * first, result.val_losses
    start, end = _quarters(result.losses)
    assert end < start, (start, end)


@pytest.mark.slow
def test_demo_config_later_stages_keep_lowering_validation_loss(demo_like: dict) -> None:
    """Stages 2 and 3 continue from the previous stage and still lower their validation loss (stage 2 by
    at least 10 %); stage 2's training loss falls by quarter means too."""
    start = demo_like.get("stage1") or _train_stage(demo_like, 1, demo_like["base"]).final_dir
    s2 = _train_stage(demo_like, 2, Path(start))
    assert s2.val_losses[-1][1] < 0.9 * s2.val_losses[0][1], s2.val_losses
    first, last = _quarters(s2.losses)
    assert last < first, (first, last)
    s3 = _train_stage(demo_like, 3, Path(s2.final_dir))
    assert s3.val_losses[-1][1] < s3.val_losses[0][1], s3.val_losses
