"""Compact entries: processor pixels stored as uint8 and integers narrowed, read back as the processor gave them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors import safe_open

from kiwi_platform.features.build import build_features
from kiwi_platform.features.codec import PixelCodec, pixel_codecs
from kiwi_platform.features.keys import encoder_hashes, sample_key
from kiwi_platform.features.shards import INDEX, FeatureCache, ShardWriter, write_index
from kiwi_platform.training.data import SampleLoader, load_manifest

SIZE = (64, 96)
FRAMES = 5
PIXELS = ("pixel_values", "pixel_values_videos")


@pytest.fixture(scope="module")
def pipeline():
    from model import build_pipeline

    return build_pipeline("tiny", seed=0)


def _build(folder: Path, data, encoders, **kwargs):
    return build_features(folder, [data.manifest], data.data_root, encoders, [SIZE], FRAMES, **kwargs)


def _one_per_task(data, pipeline):
    """(row, key, on-the-fly features) for the first row of each task."""
    from model.training import precompute_features

    df = load_manifest(data.manifest)
    loader, hashes, seen = SampleLoader(df, data.data_root), encoder_hashes(pipeline), {}
    for index, row in df.iterrows():
        if row["task"] not in seen:
            fresh = precompute_features(pipeline, loader.load(index, *SIZE, FRAMES))
            seen[row["task"]] = (row, sample_key(row, hashes, *SIZE, FRAMES), fresh)
    return seen


def _stored(folder: Path, cache: FeatureCache, key: str) -> dict[str, torch.Tensor]:
    row = cache.row(key)
    with safe_open(str(folder / row["shard"]), framework="pt") as f:
        return {name: f.get_tensor(f"{key}/{name}") for name in row["tensors"].split(",")}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_uint8_entries_read_back_exactly_what_the_processor_gave(dtype, training_data, pipeline, tmp_path):
    """In both precisions, every processor pixel tensor (image, video and reference modes) is stored as uint8
    (images once, not once per temporal slice) and every token tensor narrower, yet the reader returns the
    processor's tensors bit for bit in their own dtypes (float32 pixels, int64 ids/masks/grids)."""
    _build(tmp_path, training_data, pipeline, dtype=dtype)
    cache = FeatureCache(tmp_path)
    tasks = _one_per_task(training_data, pipeline)
    assert {f["mllm_mode"] for _, _, f in tasks.values()} == {"image", "video", "reference"}
    for task, (_, key, fresh) in tasks.items():
        got = cache.get(key)["mllm_inputs"]
        stored = _stored(tmp_path, cache, key)
        assert set(got) == set(fresh["mllm_inputs"]), task
        for name, value in fresh["mllm_inputs"].items():
            assert got[name].dtype == value.dtype and torch.equal(got[name], value), (task, name)
            raw = stored[f"mllm.{name}"]
            if name in PIXELS:
                assert raw.dtype == torch.uint8 and raw.shape[0] == value.shape[0] and raw.ndim == 2, (task, name)
            elif not value.is_floating_point():
                assert raw.element_size() < value.element_size(), (task, name)
        if "pixel_values" in fresh["mllm_inputs"]:  # a still image repeats over the temporal patch: half kept
            assert stored["mllm.pixel_values"].numel() * 2 == fresh["mllm_inputs"]["pixel_values"].numel()


def test_loss_from_a_uint8_entry_equals_the_float32_entrys(training_data, pipeline, tmp_path):
    """For every task, the loss computed from a uint8-stored entry equals the loss from the same entry stored
    all in float32 (the layout before, written without pixel codecs) within 1e-6, for two noise seeds."""
    from model import compute_loss

    tasks = _one_per_task(training_data, pipeline)
    compact = ShardWriter(tmp_path / "u8", per_shard=100, codecs=pixel_codecs(pipeline.processor))
    plain = ShardWriter(tmp_path / "f32", per_shard=100)
    for _, key, fresh in tasks.values():
        compact.add(key, fresh)
        plain.add(key, fresh)
    write_index(tmp_path / "u8", compact.close())
    write_index(tmp_path / "f32", plain.close())
    u8, f32 = FeatureCache(tmp_path / "u8"), FeatureCache(tmp_path / "f32")
    for key in (k for _, k, _ in tasks.values()):
        pixels_f32, pixels_u8 = _stored(tmp_path / "f32", f32, key), _stored(tmp_path / "u8", u8, key)
        for name in (f"mllm.{n}" for n in PIXELS if f"mllm.{n}" in pixels_f32):
            assert pixels_f32[name].dtype == torch.float32 and pixels_u8[name].dtype == torch.uint8, name
    for task, (row, key, _) in tasks.items():
        a, b = u8.get(key), f32.get(key)
        for batch in (a, b):
            batch.update(prompt=str(row["prompt"]), ref_image=None)
        for seed in (0, 7):
            with torch.no_grad():
                loss_a = compute_loss(pipeline, a, generator=torch.Generator().manual_seed(seed))
                loss_b = compute_loss(pipeline, b, generator=torch.Generator().manual_seed(seed))
            assert abs(float(loss_a) - float(loss_b)) <= 1e-6, (task, float(loss_a), float(loss_b))


def test_pixels_that_are_not_an_affine_image_of_uint8_are_stored_as_floats(training_data, pipeline, tmp_path):
    """A pixel tensor the processor's constants do not reproduce (one value nudged between two uint8 steps,
    or beyond 255) is not forced into uint8: it is stored as float (per `precision`) and read back exactly,
    while the untouched tensors of the same entry still use uint8."""
    codecs = pixel_codecs(pipeline.processor)
    tasks = _one_per_task(training_data, pipeline)
    _, key, fresh = tasks["video_ref"]
    video = fresh["mllm_inputs"]["pixel_values_videos"]
    assert codecs["mllm.pixel_values_videos"].encode(video) is not None
    nudged, beyond = video.clone(), video.clone()
    nudged[3, 5] += 0.003  # a fifth of a uint8 step
    beyond[0, 0] = (256 - codecs["mllm.pixel_values_videos"].offset[0]) / codecs["mllm.pixel_values_videos"].scale[0]
    for variant in (nudged, beyond):
        assert codecs["mllm.pixel_values_videos"].encode(variant) is None

    writer = ShardWriter(tmp_path, per_shard=100, codecs=codecs)
    writer.add(key, {**fresh, "mllm_inputs": {**fresh["mllm_inputs"], "pixel_values_videos": nudged}})
    write_index(tmp_path, writer.close())
    cache = FeatureCache(tmp_path)
    stored = _stored(tmp_path, cache, key)
    assert stored["mllm.pixel_values_videos"].dtype == torch.float32
    assert stored["mllm.pixel_values"].dtype == torch.uint8
    got = cache.get(key)["mllm_inputs"]
    assert torch.equal(got["pixel_values_videos"], nudged) and torch.equal(
        got["pixel_values"], fresh["mllm_inputs"]["pixel_values"]
    )


def test_a_codec_with_other_constants_refuses_instead_of_shifting_the_pixels(training_data, pipeline):
    """Pixels normalised with one processor's mean/std are never stored with another's constants (which would
    decode to shifted colours): the check on write rejects them, so they stay floats."""
    [video] = [
        f["mllm_inputs"]["pixel_values_videos"]
        for t, (_, _, f) in _one_per_task(training_data, pipeline).items()
        if t == "video"
    ]
    right = pixel_codecs(pipeline.processor)["mllm.pixel_values_videos"]
    wrong = PixelCodec(offset=(127.5,) * 3, scale=(127.5,) * 3, temporal=right.temporal)
    assert right.encode(video) is not None and wrong.encode(video) is None


def test_a_cache_of_the_previous_layout_is_replaced_not_kept_beside(training_data, pipeline, tmp_path):
    """Entries written before this layout (float32 pixels, no version/codec in the index, other keys) are
    never read by the new code; the next build encodes every sample again and deletes the old rows and
    shards, so an upgraded cache takes the new size instead of old + new."""
    old = ShardWriter(tmp_path, per_shard=100)  # the layout before: no pixel codecs
    for _, key, fresh in _one_per_task(training_data, pipeline).values():
        old.add("0ld" + key[3:], fresh)  # version-1 keys: not what the loader asks for
    write_index(tmp_path, old.close())
    index = pd.read_parquet(tmp_path / INDEX).drop(columns=["version", "codec"])
    index.to_parquet(tmp_path / INDEX, index=False)
    old_bytes = sum(p.stat().st_size for p in tmp_path.glob("shard-*.safetensors"))
    assert all(r["version"] == "" for r in FeatureCache(tmp_path).rows())

    upgraded = _build(tmp_path, training_data, pipeline)
    assert upgraded.written == upgraded.entries > len(index) and upgraded.reused == 0
    assert upgraded.removed_shards == old.shards
    assert sorted(p.name for p in tmp_path.glob("shard-*.safetensors")) == sorted(upgraded.new_shards)
    assert not any(k.startswith("0ld") for k in pd.read_parquet(tmp_path / INDEX)["key"])
    new_bytes = sum(p.stat().st_size for p in tmp_path.glob("shard-*.safetensors"))
    assert new_bytes < old_bytes * upgraded.entries / len(index) / 2  # per entry: under half the old layout's
