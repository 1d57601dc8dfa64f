"""TrainConfig: docs/contract.md §3 defaults per stage, derived accumulation, schedule and hash."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kiwi_platform.training import TrainConfig


def test_stage_defaults_follow_the_spec() -> None:
    """Each stage gets its LR and task mix, and accumulation equals one mix cycle."""
    s1, s2, s3 = (TrainConfig(stage=s, model="kiwi-5b") for s in (1, 2, 3))
    assert (s1.learning_rate, s2.learning_rate, s3.learning_rate) == (1e-5, 1e-5, 5e-6)
    assert s1.mix_cycle == ["image"] and s1.grad_accumulation == 1
    assert s2.mix_cycle == ["image", "video"] and s2.grad_accumulation == 2
    assert s3.mix_cycle == ["image", "video", "reference"] and s3.grad_accumulation == 3
    assert s1.weight_decay == 0.01


def test_custom_mix_ratios_interleave() -> None:
    """A 2:1 mix alternates tasks inside the cycle instead of blocking them."""
    cfg = TrainConfig(stage=3, mix={"image": 2, "video_ref": 1})
    assert cfg.mix_cycle == ["image", "video_ref", "image"]
    assert cfg.grad_accumulation == 3


def test_resolution_schedule_switches_after_until_step() -> None:
    """Stage 2's schedule: one size up to until_step, the next size after it."""
    cfg = TrainConfig(
        stage=2, resolutions=[{"until_step": 10, "height": 576, "width": 576}, {"height": 704, "width": 1280}]
    )
    assert (cfg.resolution_at(10).height, cfg.resolution_at(11).width) == (576, 1280)


@pytest.mark.parametrize(
    "bad",
    [
        {"frames": 8},
        {"mix": {"audio": 1}},
        {"mix": {"image": 0}},
        {"resolutions": [{"until_step": 5, "height": 64, "width": 64}]},
        {"resolutions": [{"height": 60, "width": 64}]},
        {"distributed": "horovod"},
    ],
)
def test_bad_settings_are_rejected(bad: dict) -> None:
    """Invalid frames (not 4k+1), unknown tasks, empty mixes, open schedules and odd sizes fail early."""
    with pytest.raises(ValidationError):
        TrainConfig(**bad)


def test_config_hash_tracks_weight_shaping_settings_only() -> None:
    """lr changes the hash (no silent resume into another run); max_steps does not (runs can be extended)."""
    base = TrainConfig(stage=2)
    assert base.config_hash() == TrainConfig(stage=2).config_hash()
    assert base.config_hash() != TrainConfig(stage=2, lr=2e-5).config_hash()
    assert base.config_hash() == TrainConfig(stage=2, max_steps=5000, checkpoint_every=7).config_hash()


def test_tiny_model_default_lr_is_the_learning_signal_rate() -> None:
    """lr unset on the tiny demo model means 3e-3 in every stage (it would not move at the released rates),
    an explicit lr still wins, and the tiny default never shares a resume folder with an explicit 1e-5 run."""
    assert {TrainConfig(stage=s).learning_rate for s in (1, 2, 3)} == {3e-3}
    assert TrainConfig(stage=1, lr=1e-5).learning_rate == 1e-5
    assert TrainConfig(stage=1).config_hash() != TrainConfig(stage=1, lr=1e-5).config_hash()
    assert TrainConfig(stage=1).config_hash() == TrainConfig(stage=1, lr=3e-3).config_hash()
    assert TrainConfig(stage=1, model="kiwi-5b").config_hash() != TrainConfig(stage=1).config_hash()
