"""Sharded (DCP) checkpoints in one process: consolidated export, and refusals that are one line."""

from pathlib import Path

import pytest

from kiwi_platform.training import ResumeMismatch, TrainConfig, TrainingError
from kiwi_platform.training.distributed import build_plugins
from kiwi_platform.training.fixtures import TrainingFixture
from kiwi_platform.training.sharded import export_checkpoint, train_sharded


def _config(**overrides) -> TrainConfig:
    base = dict(
        stage=2, model="tiny", frames=5, lr=1e-3, max_steps=2, checkpoint_every=1, val_fraction=0.2,
        resolutions=[{"height": 32, "width": 32}], distributed="fsdp",
    )  # fmt: skip
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def sharded_run(training_data: TrainingFixture, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sharded")
    return out, train_sharded(_config(), training_data.manifest, training_data.data_root, out)


@pytest.mark.slow
def test_sharded_checkpoint_exports_to_the_released_layout(sharded_run, tmp_path: Path) -> None:
    """What MLflow registers: a DCP checkpoint consolidates into a released folder holding exactly the
    trained weights (same digest as the run's own final/), written in one process without torchrun."""
    from model import KiwiEditPipeline

    out, result = sharded_run
    digest = export_checkpoint(out / "checkpoints" / "step-2", tmp_path / "exported")
    assert digest == result.trainable_sha256
    assert KiwiEditPipeline.from_pretrained(tmp_path / "exported").transformer.config.num_layers == 2
    assert (out / "final" / "model_index.json").is_file()


@pytest.mark.slow
def test_checkpoint_of_another_stage_is_refused(sharded_run, training_data: TrainingFixture) -> None:
    """Resuming a stage-2 sharded checkpoint as stage 3 stops with one line naming the stage it holds."""
    out, _ = sharded_run
    with pytest.raises(ResumeMismatch) as info:
        train_sharded(_config(stage=3, max_steps=4), training_data.manifest, training_data.data_root, out)
    message = str(info.value)
    assert "\n" not in message and "stage 2" in message


def test_removed_and_misrouted_strategies_are_one_line_errors() -> None:
    """deepspeed_zero2 is gone (never passed parity/resume); fsdp is refused by the accelerate loop with
    a pointer to the sharded trainer instead of half-working there."""
    for name, words in (("deepspeed_zero2", "removed"), ("fsdp", "train_sharded")):
        config = TrainConfig.model_construct(**{**TrainConfig().model_dump(), "distributed": name})
        with pytest.raises(TrainingError) as info:
            build_plugins(config)
        assert words in str(info.value) and "\n" not in str(info.value)
