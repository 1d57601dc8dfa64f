"""Faults end with one clear error and leave no corrupt state: NaN loss, OOM, missing stage checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kiwi_platform.training import (
    DataHashMismatch,
    MissingCheckpointError,
    TrainingDiverged,
    TrainingOOM,
    train,
)
from kiwi_platform.training.checkpoint import verify
from kiwi_platform.training.fixtures import TrainingFixture
from kiwi_platform.training.modules import PipelineLoss

from .conftest import fast_config


def _fail_after(monkeypatch: pytest.MonkeyPatch, calls: int, make) -> None:
    """Let `calls` micro-batches run normally, then replace the loss with make(loss)."""
    original = PipelineLoss.forward
    seen = {"n": 0}

    def forward(self, batch, seed):
        seen["n"] += 1
        loss = original(self, batch, seed)
        return loss if seen["n"] <= calls else make(loss)

    monkeypatch.setattr(PipelineLoss, "forward", forward)


def test_nan_loss_stops_with_the_step_and_keeps_the_good_checkpoint(
    training_data: TrainingFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NaN at step 3 raises TrainingDiverged naming step 3; step-2 stays valid and nothing else is written."""
    _fail_after(monkeypatch, 2 * 3, lambda loss: loss * float("nan"))  # stage 3: 3 micro-batches per step
    with pytest.raises(TrainingDiverged, match="diverged at step 3") as info:
        train(fast_config(max_steps=4), training_data.manifest, training_data.data_root, tmp_path)
    assert info.value.last_checkpoint.endswith("step-2")
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["latest", "step-2"]
    assert verify(ckpts / "step-2") is None
    assert (ckpts / "latest").read_text().strip() == "step-2"
    assert not (tmp_path / "final").exists()


def test_inf_loss_before_any_checkpoint_says_so(
    training_data: TrainingFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inf on the first step is reported as divergence with 'no checkpoint was written yet'."""
    _fail_after(monkeypatch, 0, lambda loss: loss + float("inf"))
    with pytest.raises(TrainingDiverged, match="step 1.*no checkpoint was written yet"):
        train(fast_config(max_steps=2), training_data.manifest, training_data.data_root, tmp_path)


def test_out_of_memory_names_the_knobs(
    training_data: TrainingFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CUDA OOM becomes one line naming resolution, frames, checkpointing, offload and precision."""

    def oom(loss):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    _fail_after(monkeypatch, 0, oom)
    with pytest.raises(TrainingOOM) as info:
        train(fast_config(max_steps=2), training_data.manifest, training_data.data_root, tmp_path)
    message = str(info.value)
    for knob in ("resolution", "frames", "gradient_checkpointing", "offload", "bf16", "64x96"):
        assert knob in message
    assert "\n" not in message


def test_missing_previous_stage_checkpoint_is_a_clear_error(training_data: TrainingFixture, tmp_path: Path) -> None:
    """Stage 2 pointed at a stage-1 folder that is absent or incomplete fails before training, naming it."""
    absent = tmp_path / "stage1" / "final"
    with pytest.raises(MissingCheckpointError, match="stage 1 checkpoint.*does not exist"):
        train(
            fast_config(stage=2, init_checkpoint=str(absent)),
            training_data.manifest,
            training_data.data_root,
            tmp_path / "out",
        )
    absent.mkdir(parents=True)
    (absent / "transformer").mkdir()
    with pytest.raises(MissingCheckpointError, match="incomplete.*vae"):
        train(
            fast_config(stage=2, init_checkpoint=str(absent)),
            training_data.manifest,
            training_data.data_root,
            tmp_path / "out",
        )
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_hash_mismatch_stops_training_naming_the_file(data_copy: TrainingFixture, tmp_path: Path) -> None:
    """Training on a manifest whose clip changed on disk stops with the file's name, before any checkpoint."""
    for clip in sorted((data_copy.data_root / "clips").glob("*.kclip")):
        clip.write_bytes(clip.read_bytes() + b"x")
    with pytest.raises(DataHashMismatch, match=r"\.kclip"):
        train(fast_config(max_steps=2), data_copy.manifest, data_copy.data_root, tmp_path)
    assert not (tmp_path / "checkpoints").exists()
