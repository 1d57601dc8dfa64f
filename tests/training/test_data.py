"""Training data: pair-id split, mix sampler with a resumable position, sample loading, bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from kiwi_platform.training import DataHashMismatch, EmptyManifestError, TrainConfig
from kiwi_platform.training.data import MixSampler, SampleLoader, load_manifest, split_by_pair
from kiwi_platform.training.fixtures import TrainingFixture


def test_split_holds_pairs_apart_and_ignores_row_order(training_data: TrainingFixture) -> None:
    """All rows of a pair land on one side, and shuffling the manifest rows does not move any pair."""
    df = load_manifest(training_data.manifest)
    train, val = split_by_pair(df, 0.3)
    assert len(val) > 0 and len(train) > 0
    assert not set(train["pair_id"]) & set(val["pair_id"])
    shuffled = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    _, val2 = split_by_pair(shuffled, 0.3)
    assert set(val2["pair_id"]) == set(val["pair_id"])


def test_sampler_follows_the_mix_and_resumes_from_its_cursors(training_data: TrainingFixture) -> None:
    """Draws come in mix-cycle order, and a sampler restored from a saved position continues identically."""
    df = load_manifest(training_data.manifest)
    train, _ = split_by_pair(df, 0.2)
    cfg = TrainConfig(stage=3)
    sampler = MixSampler.build(train, cfg)
    groups = {"image": {"image"}, "video": {"video"}, "reference": {"image_ref", "video_ref"}}
    for _ in range(3):
        for group in cfg.mix_cycle:
            assert df.loc[sampler.draw(group), "task"] in groups[group]
    saved = sampler.state_dict()
    ahead = [sampler.draw(g) for g in cfg.mix_cycle * 4]
    restored = MixSampler.build(train, cfg)
    restored.load_state_dict(saved)
    assert [restored.draw(g) for g in cfg.mix_cycle * 4] == ahead
    # an epoch visits every row of a stream once
    fresh = MixSampler.build(train, cfg)
    n_video = len(fresh.rows["video"])
    assert sorted(fresh.draw("video") for _ in range(n_video)) == sorted(fresh.rows["video"])


def test_ranks_draw_different_rows_from_one_position(training_data: TrainingFixture) -> None:
    """Under 2 processes, rank 0 and rank 1 take different samples of the same stream position."""
    train, _ = split_by_pair(load_manifest(training_data.manifest), 0.0)
    a, b = MixSampler.build(train, TrainConfig(stage=1)), MixSampler.build(train, TrainConfig(stage=1))
    assert a.draw("image", rank=0, world=2) != b.draw("image", rank=1, world=2)
    assert a.state_dict() == b.state_dict() == {"image": 2}


def test_loader_builds_training_batches_at_the_requested_size(training_data: TrainingFixture) -> None:
    """Video rows give (3, frames, H, W) in [-1, 1], image rows one frame, *_ref rows a reference image."""
    df = load_manifest(training_data.manifest)
    loader = SampleLoader(df, training_data.data_root)
    for task, frames in (("video", 5), ("image", 1), ("video_ref", 5)):
        row = df.index[df["task"] == task][0]
        batch = loader.load(row, 32, 64, 5)
        assert tuple(batch["source"].shape) == (3, frames, 32, 64) == tuple(batch["target"].shape)
        assert batch["source"].min() >= -1 and batch["source"].max() <= 1
        assert (batch["ref_image"] is not None) == task.endswith("_ref")
        assert batch["prompt"]


def test_empty_manifest_is_a_clear_error(data_copy: TrainingFixture) -> None:
    """A manifest with no rows stops before any model is built, naming the file."""
    df = pd.read_parquet(data_copy.manifest)
    df.iloc[0:0].to_parquet(data_copy.manifest, index=False)
    with pytest.raises(EmptyManifestError, match="has no rows"):
        load_manifest(data_copy.manifest)


def test_mix_without_samples_is_a_clear_error(training_data: TrainingFixture, tmp_path) -> None:
    """Stage 2 on an image-only manifest says which task is missing and which tasks exist."""
    df = pd.read_parquet(training_data.manifest)
    path = tmp_path / "images.parquet"
    df[df["task"] == "image"].to_parquet(path, index=False)
    train, _ = split_by_pair(load_manifest(path), 0.0)
    with pytest.raises(EmptyManifestError, match="'video'.*tasks present: image"):
        MixSampler.build(train, TrainConfig(stage=2), path)


def test_changed_file_is_reported_by_name(data_copy: TrainingFixture) -> None:
    """A clip rewritten after the manifest was made fails with a hash-mismatch error naming the file."""
    df = load_manifest(data_copy.manifest)
    row = df.index[df["task"] == "video"][0]
    victim = data_copy.data_root / df.loc[row, "tgt_clip"]
    victim.write_bytes(victim.read_bytes() + b"changed")
    loader = SampleLoader(df, data_copy.data_root)
    with pytest.raises(DataHashMismatch, match=victim.name):
        loader.load(row, 64, 96, 5)
