"""The training feature cache: the loss it gives, its keys, its bytes and what happens when it is damaged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kiwi_platform.features.build import build_features, verify_cache
from kiwi_platform.features.keys import encoder_hashes, sample_key
from kiwi_platform.features.shards import FeatureCache
from kiwi_platform.training.data import SampleLoader, load_manifest
from kiwi_platform.training.feature_loader import FeatureLoader
from kiwi_platform.training.fixtures import TrainingFixture

SIZE = (64, 96)
FRAMES = 5


@pytest.fixture(scope="module")
def pipeline():
    from model import build_pipeline

    return build_pipeline("tiny", seed=0)


def _build(folder: Path, data: TrainingFixture, encoders, **kwargs):
    return build_features(folder, [data.manifest], data.data_root, encoders, [SIZE], FRAMES, **kwargs)


def _loaders(folder: Path, data: TrainingFixture, pipeline, ref_latents: bool = False):
    df = load_manifest(data.manifest)
    plain = SampleLoader(df, data.data_root)
    return df, plain, FeatureLoader(plain, FeatureCache(folder), encoder_hashes(pipeline), ref_latents)


def _loss(pipeline, batch, seed: int, recipe=None) -> torch.Tensor:
    from model import compute_loss

    with torch.no_grad():
        return compute_loss(pipeline, batch, generator=torch.Generator().manual_seed(seed), recipe=recipe)


@pytest.mark.parametrize("shrink", [True, False], ids=["ref-shrunk-per-step", "ref-padded-cached"])
def test_cached_features_give_the_on_the_fly_loss(shrink, training_data, pipeline, tmp_path):
    """For every task, a sample read from the cache gives the loss of encoding its clips on the fly with
    the same noise (fp32, within 1e-6), with the default random reference shrink and with cached
    reference latents (recipe without shrink); cached samples carry no pixels, so the encoders were skipped."""
    from model.training import TrainingRecipe

    recipe = TrainingRecipe() if shrink else TrainingRecipe(ref_scale_range=None)
    _build(tmp_path, training_data, pipeline, reference_latents=not shrink)
    df, plain, cached = _loaders(tmp_path, training_data, pipeline, ref_latents=not shrink)
    seen = set()
    for index, row in df.iterrows():
        if row["task"] in seen:
            continue
        seen.add(row["task"])
        fly = plain.load(index, *SIZE, FRAMES)
        hit = cached.load(index, *SIZE, FRAMES)
        assert "source" not in hit and "source_latents" in hit, row["task"]
        if row["task"].endswith("_ref"):
            assert ("ref_latents" in hit) is (not shrink)
        for seed in (0, 7):
            a, b = _loss(pipeline, fly, seed, recipe), _loss(pipeline, hit, seed, recipe)
            assert abs(float(a) - float(b)) <= 1e-6, (row["task"], float(a), float(b))
    assert seen == {"image", "video", "image_ref", "video_ref"}
    assert cached.misses == 0 and cached.hits == len(seen)


def test_key_changes_with_encoder_weights_resolution_and_frames(training_data, pipeline, tmp_path):
    """A cache built for one VAE, size or frame count is never read for another: the keys differ and a
    loader for changed VAE weights gets only misses (it encodes on the fly) instead of stale latents."""
    from model import build_pipeline

    df = load_manifest(training_data.manifest)
    row = df[df["task"] == "video"].iloc[0]
    hashes = encoder_hashes(pipeline)
    key = sample_key(row, hashes, *SIZE, FRAMES)
    other = build_pipeline("tiny", seed=0)
    with torch.no_grad():
        next(other.vae.parameters()).add_(1e-3)
    changed = encoder_hashes(other)
    assert changed["vae"] != hashes["vae"] and changed["mllm"] == hashes["mllm"]
    assert sample_key(row, changed, *SIZE, FRAMES) != key
    assert sample_key(row, hashes, 96, 96, FRAMES) != key
    assert sample_key(row, hashes, *SIZE, 9) != key
    assert sample_key(row.drop(labels=["src_clip_sha256"]), hashes, *SIZE, FRAMES) is None  # no hash: on the fly

    _build(tmp_path, training_data, pipeline)
    stale = FeatureLoader(SampleLoader(df, training_data.data_root), FeatureCache(tmp_path), changed, False)
    batch = stale.load(int(row.name), *SIZE, FRAMES)
    assert "source" in batch and stale.hits == 0 and stale.misses == 1


def test_same_inputs_give_byte_identical_shards_and_a_rerun_writes_nothing(training_data, pipeline, tmp_path):
    """Two builds from the same manifest and encoders write the same shard files and index bytes; building
    again into a filled cache encodes nothing and keeps the index; more shards come with a smaller shard size."""
    first = _build(tmp_path / "a", training_data, pipeline, per_shard=4)
    second = _build(tmp_path / "b", training_data, pipeline, per_shard=4)

    def files(folder: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    assert files(first.folder) == files(second.folder)
    assert first.shards == len(first.new_shards) > 1 and first.written == first.entries > 0
    again = _build(tmp_path / "a", training_data, pipeline, per_shard=4)
    assert again.written == 0 and again.reused == first.entries
    assert again.index_sha256 == first.index_sha256 and files(tmp_path / "a") == files(tmp_path / "b")


@pytest.mark.parametrize("damage", ["corrupted", "deleted"])
def test_a_damaged_shard_falls_back_to_on_the_fly_with_one_warning(damage, training_data, pipeline, tmp_path):
    """A corrupted or deleted shard is never read: its samples load from the clips (counted as misses),
    the loss is still the on-the-fly loss, one warning names the shard, and the asset check's verify
    reports it; samples in intact shards are still served from the cache."""
    built = _build(tmp_path, training_data, pipeline, per_shard=4)
    victim = tmp_path / built.new_shards[0]
    if damage == "corrupted":
        data = bytearray(victim.read_bytes())
        data[-1] ^= 0xFF
        victim.write_bytes(bytes(data))
    else:
        victim.unlink()
    df, plain, cached = _loaders(tmp_path, training_data, pipeline)
    for index in df.index:
        batch = cached.load(index, *SIZE, FRAMES)
        if "source" in batch:
            assert (
                abs(float(_loss(pipeline, batch, 3)) - float(_loss(pipeline, plain.load(index, *SIZE, FRAMES), 3))) == 0
            )
    in_victim = sum(r["shard"] == victim.name for r in cached.cache.rows())
    assert cached.misses == in_victim > 0 and cached.hits == len(df) - in_victim > 0
    warnings = cached.new_warnings()
    assert len(warnings) == 1 and victim.name in warnings[0] and "on the fly" in warnings[0]
    assert "\n" not in warnings[0]
    entries, problems = verify_cache(tmp_path)
    assert entries == built.entries and len(problems) == 1 and victim.name in problems[0]


def test_a_damaged_index_means_no_cache_not_a_crash(training_data, pipeline, tmp_path):
    """An unreadable index turns the cache off for the run (every sample encoded on the fly) with one
    warning naming the index, instead of failing the stage."""
    _build(tmp_path, training_data, pipeline)
    (tmp_path / "index.parquet").write_bytes(b"not parquet")
    df, _, cached = _loaders(tmp_path, training_data, pipeline)
    batch = cached.load(df.index[0], *SIZE, FRAMES)
    assert "source" in batch and cached.misses == 1 and cached.hits == 0
    [warning] = cached.new_warnings()
    assert "index.parquet" in warning and "on the fly" in warning


_BUILD_IN_A_PROCESS = """
import sys
from pathlib import Path
from kiwi_platform.features.build import build_features
from model import build_pipeline
folder, manifest, root, height, width = sys.argv[1:6]
build_features(Path(folder), [Path(manifest)], Path(root), build_pipeline("tiny", seed=0), [(int(height), int(width))], 5)
"""


@pytest.mark.slow
def test_concurrent_builds_of_one_cache_keep_each_others_entries(training_data, tmp_path):
    """Two `training_features` builds for different sizes started at once on one cache folder (two
    processes) both end up in the index, and every shard it names is there: a build never removes
    the other's shards or temp files, and neither index overwrites the other's entries."""
    import subprocess
    import sys

    folder = tmp_path / "features"
    sizes = [(64, 96), (32, 64)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILD_IN_A_PROCESS, str(folder), str(training_data.manifest)]
            + [str(training_data.data_root), str(h), str(w)],
            cwd=Path(__file__).resolve().parents[2],
        )
        for h, w in sizes
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    entries, problems = verify_cache(folder)
    index = FeatureCache(folder).rows()
    assert problems == [] and entries == len(index)
    assert {(int(r["height"]), int(r["width"])) for r in index} == set(sizes)
