"""The training tests' synthetic data set (real demo clips, 6 pairs, every task), reused here."""

from __future__ import annotations

from tests.training.conftest import fast_config, make_training_manifest, stage_platform, training_data

__all__ = ["fast_config", "make_training_manifest", "stage_platform", "training_data"]
