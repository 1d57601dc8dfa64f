"""How the feature cache stores entries: bfloat16 storage, shards cut by bytes, and the encoders' device."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from kiwi_platform.features.build import EncodeRow, EncoderSpec, build_features
from kiwi_platform.features.shards import INDEX, FeatureCache, ShardWriter

SIZE = (64, 96)
FRAMES = 5


@pytest.fixture(scope="module")
def pipeline():
    from model import build_pipeline

    return build_pipeline("tiny", seed=0)


def _build(folder: Path, data, encoders, **kwargs):
    return build_features(folder, [data.manifest], data.data_root, encoders, [SIZE], FRAMES, **kwargs)


def _shard_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("shard-*.safetensors"))


def test_bfloat16_cache_halves_the_latents_and_reads_back_the_rounded_float32(training_data, pipeline, tmp_path):
    """`precision: bfloat16` stores the latents in bf16 (2 bytes a value where float32 takes 4; the processor
    pixels are uint8 in both), so its shards are smaller by half the latents' float32 bytes; every latent reads back as float32 equal to the
    float32 entry's rounded to bf16, the processor tensors read back identical to the float32 entry's
    (pixels exact, integer tensors unchanged), and the loss from it stays within 1 % of float32's."""
    from model import compute_loss

    full = _build(tmp_path / "f32", training_data, pipeline)
    half = _build(tmp_path / "bf16", training_data, pipeline, dtype="bfloat16")
    assert half.entries == full.entries > 0
    f32, bf16 = FeatureCache(tmp_path / "f32"), FeatureCache(tmp_path / "bf16")
    latent_bytes = sum(
        e["source_latents"].nbytes + e["target_latents"].nbytes for e in (f32.get(r["key"]) for r in f32.rows())
    )
    saved = _shard_bytes(tmp_path / "f32") - _shard_bytes(tmp_path / "bf16")
    slack = 1024  # safetensors headers ("BF16" vs "F32", padding) and the bf16 second_per_grid_ts
    assert abs(saved - latent_bytes / 2) <= slack, (saved, latent_bytes)
    assert set(pd.read_parquet(tmp_path / "bf16" / INDEX)["dtype"]) == {"bfloat16"}
    for row in f32.rows():
        a, b = f32.get(row["key"]), bf16.get(row["key"])
        tensors_a = {"source_latents": a["source_latents"], **a["mllm_inputs"]}
        tensors_b = {"source_latents": b["source_latents"], **b["mllm_inputs"]}
        for name, value in tensors_a.items():
            assert tensors_b[name].dtype == value.dtype, name
            rounded = name == "source_latents" or name == "second_per_grid_ts"  # floats not stored as uint8
            expected = value.to(torch.bfloat16).to(value.dtype) if rounded else value
            assert torch.equal(tensors_b[name], expected), name
        with torch.no_grad():
            loss_a = compute_loss(pipeline, a, generator=torch.Generator().manual_seed(0))
            loss_b = compute_loss(pipeline, b, generator=torch.Generator().manual_seed(0))
        assert abs(float(loss_a) - float(loss_b)) <= 0.01 * abs(float(loss_a)), (float(loss_a), float(loss_b))


def test_changing_the_precision_encodes_again_and_keeping_it_reuses(training_data, pipeline, tmp_path):
    """An entry stored in float32 is not served to a bfloat16 build (or back): switching re-encodes every
    entry into new shards and deletes the float32 shards, and a second build with the same precision
    writes nothing."""
    first = _build(tmp_path, training_data, pipeline)
    switched = _build(tmp_path, training_data, pipeline, dtype="bfloat16")
    assert switched.written == first.entries and switched.reused == 0
    assert switched.removed_shards == sorted(first.new_shards)
    assert sorted(p.name for p in tmp_path.glob("shard-*.safetensors")) == sorted(switched.new_shards)
    assert set(pd.read_parquet(tmp_path / INDEX)["dtype"]) == {"bfloat16"}
    again = _build(tmp_path, training_data, pipeline, dtype="bfloat16")
    assert again.written == 0 and again.reused == first.entries
    assert again.content_id == switched.content_id


def test_a_shard_closes_at_its_byte_limit_and_every_entry_stays_readable(tmp_path):
    """With entries of 40 KB and a 100 KB shard limit, the writer closes a shard every 3 entries (memory
    holds at most a shard's worth), well before the count limit, and every key reads back exactly."""
    writer = ShardWriter(tmp_path, per_shard=1000, max_bytes=100_000)
    written = {}
    for number in range(7):
        latents = torch.full((1, 4, 1, 50, 25), float(number))  # 5,000 floats = 20 KB, twice
        written[f"key{number}"] = latents
        writer.add(
            f"key{number}",
            {"size": (64, 96), "mllm_mode": "video", "mllm_queries": 1, "source_latents": latents,
             "target_latents": latents.clone(), "mllm_inputs": {}},
        )  # fmt: skip
    from kiwi_platform.features.shards import write_index

    write_index(tmp_path, writer.close())
    assert len(writer.shards) == 3  # 3 + 3 + 1
    cache = FeatureCache(tmp_path)
    for key, latents in written.items():
        assert torch.equal(cache.get(key)["target_latents"], latents), key


def test_in_process_encoding_moves_the_encoders_to_the_specs_device(tmp_path):
    """The driver loads the encoders on the CPU to hash them; when it also encodes (the in-process engine),
    `setup()` moves the VAE to the spec's device, as a Ray actor's own load does, so a GPU machine does
    not encode on its CPU. Shown with the meta device, the one non-CPU device every machine has."""
    from model.build import init_checkpoint

    spec = EncoderSpec(str(init_checkpoint("tiny", tmp_path / "tiny", seed=0)), device="meta")
    loaded = spec.load("cpu")
    assert next(loaded.vae.parameters()).device.type == "cpu"
    fn = EncodeRow([], str(tmp_path), FRAMES, False, spec, loaded)
    fn.setup()
    assert next(fn.encoders.vae.parameters()).device.type == "meta"
