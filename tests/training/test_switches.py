"""Config switches that must not change the maths: gradient checkpointing, bf16 on CPU, strategy plugins;
and the library boundary (no Dagster or MLflow inside kiwi_platform.training)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiwi_platform.training import TrainConfig, train
from kiwi_platform.training.distributed import build_plugins
from kiwi_platform.training.fixtures import TrainingFixture

from .conftest import fast_config


def test_gradient_checkpointing_gives_the_same_losses(training_data: TrainingFixture, tmp_path: Path) -> None:
    """Recomputing activations saves memory only: the loss curve matches the run without it."""
    plain = train(fast_config(stage=2, max_steps=2), training_data.manifest, training_data.data_root, tmp_path / "a")
    ckpt = train(
        fast_config(stage=2, max_steps=2, gradient_checkpointing=True),
        training_data.manifest,
        training_data.data_root,
        tmp_path / "b",
    )
    assert ckpt.losses == pytest.approx(plain.losses, rel=1e-5)


def test_bf16_mixed_precision_runs_on_cpu(training_data: TrainingFixture, tmp_path: Path) -> None:
    """mixed_precision=bf16 trains (autocast) and stays close to fp32 on the first step."""
    fp32 = train(fast_config(stage=2, max_steps=1), training_data.manifest, training_data.data_root, tmp_path / "a")
    bf16 = train(
        fast_config(stage=2, max_steps=1, mixed_precision="bf16"),
        training_data.manifest,
        training_data.data_root,
        tmp_path / "b",
    )
    assert bf16.losses[0] == pytest.approx(fp32.losses[0], rel=0.1)
    assert bf16.losses[0] != fp32.losses[0]  # autocast really ran


def test_strategy_plugins_are_built_from_config() -> None:
    """ddp asks accelerate to tolerate unused params (fsdp/zero-2 refusals: test_sharded_checkpoint)."""
    ddp = build_plugins(TrainConfig(distributed="ddp"))
    assert ddp["kwargs_handlers"][0].find_unused_parameters


def test_training_library_imports_no_dagster_or_mlflow() -> None:
    """The assets log through callbacks; importing and configuring training pulls in neither system."""
    code = (
        "import sys, kiwi_platform.training as t, kiwi_platform.training.fixtures; t.TrainConfig(stage=3); "
        "print(sorted(m for m in ('dagster', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
