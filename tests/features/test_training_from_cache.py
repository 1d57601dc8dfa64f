"""Training from the feature cache follows the on-the-fly run, in the one-process loop and in FSDP2."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiwi_platform.features.build import build_features
from kiwi_platform.training import train
from kiwi_platform.training.fixtures import TrainingFixture

from .conftest import fast_config

STEPS = 4


class Steps:
    """Records every step's metrics and any warning, as the stage's MLflow logger would."""

    def __init__(self) -> None:
        self.metrics: list[dict] = []
        self.warnings: list[str] = []

    def on_step(self, step: int, metrics: dict) -> None:
        self.metrics.append(metrics)

    def on_warning(self, message: str) -> None:
        self.warnings.append(message)


def _cache(folder: Path, data: TrainingFixture, cfg) -> Path:
    from model import build_pipeline

    res = cfg.resolution_at(1)
    encoders = build_pipeline(cfg.model, seed=cfg.seed)  # the loop's own start point for a named model
    build_features(folder, [data.manifest], data.data_root, encoders, [(res.height, res.width)], cfg.frames)
    return folder


def test_one_process_training_from_the_cache_matches_on_the_fly(training_data, tmp_path):
    """Stage 3 (image, video and reference samples) for 4 steps from the cache gives the on-the-fly losses
    within 1e-6 (fp32, same noise), every consumed sample is a hit, and a run without a cache reports no
    cache metrics at all (small runs stay on the fly)."""
    cfg = fast_config(max_steps=STEPS, eval_every=0, checkpoint_every=STEPS)
    features = _cache(tmp_path / "features", training_data, cfg)
    plain, cached = Steps(), Steps()
    a = train(cfg, training_data.manifest, training_data.data_root, tmp_path / "a", callbacks=plain, save=False)
    b = train(
        cfg,
        training_data.manifest,
        training_data.data_root,
        tmp_path / "b",
        callbacks=cached,
        save=False,
        features=features,
    )
    assert len(a.losses) == len(b.losses) == STEPS
    assert max(abs(x - y) for x, y in zip(a.losses, b.losses)) <= 1e-6, (a.losses, b.losses)
    assert not any("feature_cache_hits" in m for m in plain.metrics)
    cycle = len(cfg.mix_cycle)
    assert [m["feature_cache_hits"] for m in cached.metrics] == [cycle * s for s in range(1, STEPS + 1)]
    assert all(m["feature_cache_misses"] == 0 for m in cached.metrics) and not cached.warnings


@pytest.mark.slow
def test_sharded_trainer_reads_the_cache_through_its_prefetcher(training_data, tmp_path):
    """FSDP2 in one process (gloo) from the cache gives the losses of FSDP2 on the fly within 1e-6,
    with every sample a hit, and the samples of a cache built at another size count as misses."""
    from kiwi_platform.training.sharded import train_sharded

    cfg = fast_config(max_steps=STEPS, eval_every=0, checkpoint_every=STEPS, distributed="fsdp", stage=2)
    features = _cache(tmp_path / "features", training_data, cfg)
    plain, cached = Steps(), Steps()
    data = (training_data.manifest, training_data.data_root)
    a = train_sharded(cfg, *data, tmp_path / "a", callbacks=plain, save=False, global_batch=1)
    b = train_sharded(cfg, *data, tmp_path / "b", callbacks=cached, save=False, global_batch=1, features=features)
    assert max(abs(x - y) for x, y in zip(a.losses, b.losses)) <= 1e-6, (a.losses, b.losses)
    cycle = len(cfg.mix_cycle)
    assert cached.metrics[-1]["feature_cache_hits"] == cycle * STEPS
    assert cached.metrics[-1]["feature_cache_misses"] == 0

    other = fast_config(
        max_steps=1, eval_every=0, distributed="fsdp", stage=2, resolutions=[{"height": 32, "width": 32}]
    )
    missed = Steps()
    train_sharded(other, *data, tmp_path / "c", callbacks=missed, save=False, global_batch=1, features=features)
    assert missed.metrics[-1]["feature_cache_hits"] == 0 and missed.metrics[-1]["feature_cache_misses"] == cycle
