"""normalize, QC and feature encoding on the real two-node Ray cluster (tests/engine/conftest.py).

Each stage, moved to the cluster, writes what the in-process loop writes: the same table, the same
shard bytes, the same quarantine records; a row refused on a worker is a quarantine record, never
a lost row; a worker killed mid-batch is retried by Ray and the batch converges to the same shards.

Slow: the cluster (shared with test_ray_cluster.py) takes ~15 s to start on 2 cores.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from kiwi_platform.engine import ActorPool, EngineSettings
from kiwi_platform.features.build import EncoderSpec, build_features
from kiwi_platform.ingestion import clip_table
from kiwi_platform.ingestion.clip_table import normalize_batch
from kiwi_platform.ingestion.ingest_run import ingest_source
from kiwi_platform.ingestion.sources import open_source
from kiwi_platform.refvie.assembly import QualitySettings, assemble_quadruplets
from kiwi_platform.refvie.reference_table import synthesize_batch
from kiwi_platform.refvie.region_table import BackendSpec, ground_batch
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.synth import generate
from tests.engine.rowfns import kill_first_victim
from tests.engine.stagefns import VICTIM_MARKER, VictimNormalizeClip
from tests.training.conftest import training_data

pytestmark = pytest.mark.slow
__all__ = ["training_data"]  # the training tests' session fixture, reused for the feature cache

SETTINGS = {"num_frames": 9, "max_area": 96 * 160, "multiple": 32}
LOCAL = EngineSettings(engine="local")


def _on(address: str) -> EngineSettings:
    return EngineSettings(engine="auto", ray_address=address)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def raw_batch(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> tuple[pd.DataFrame, MediaStore]:
    """A `raw_edit_pairs` table of 7 rows kept by reference: 6 synthetic video pairs, a 7th row reusing
    pair 0's source and pair 1's target (its clips are built once, for both rows), and pair 5's target
    deleted after ingestion (its row must be quarantined as missing_file, from the worker)."""
    root = tmp_path_factory.mktemp("stages")
    out = root / "synth"
    generate(out, 6, seed=11, frames=9, height=96, width=160, image_share=0.0, demo_dir=demo_dir)
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    rows.append(["Swap the object for the other one.", rows[1][1], rows[2][2]])
    with open(out / "manifest.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    store = MediaStore(root=str(root / "data"))
    ingested = ingest_source(open_source(out / "manifest.csv"), store, "b", min_frames=9, copy_raw=False)
    assert ingested.quarantined == [] and len(ingested.table) == 7
    store.write_table("b", "raw_edit_pairs", ingested.table)
    (out / rows[6][2]).unlink()  # pair 5's target vanishes after ingestion
    return store.read_table("b", "raw_edit_pairs"), store


def _normalize(raw: pd.DataFrame, store: MediaStore, engine: EngineSettings) -> tuple:
    clip_dir = store.root_path / "clips"
    shutil.rmtree(clip_dir, ignore_errors=True)
    out = normalize_batch(raw, store, "b", clip_dir, SETTINGS, engine=engine)
    return out, _files(clip_dir)


def test_normalize_on_the_cluster_writes_the_in_process_shards_and_quarantine(ray_cluster, raw_batch):
    """normalized_clips moved to a cluster: the same table and byte-identical clip shards as the in-process
    loop, a shared clip built once, and a vanished original (re-hashed on the worker) quarantined: rows in
    = accepted + quarantined."""
    raw, store = raw_batch
    local, local_shards = _normalize(raw, store, LOCAL)
    remote, remote_shards = _normalize(raw, store, _on(ray_cluster))
    pd.testing.assert_frame_equal(local.table, remote.table)
    assert remote_shards == local_shards and list(remote_shards) == ["shard-00000.zip"]
    assert remote.rejected == local.rejected and [r.reason for r in remote.rejected] == ["missing_file"]
    assert len(remote.table) + len(remote.rejected) == len(raw)
    assert remote.table["pair_id"].is_unique
    # every clip slot was built once, reused (the 7th row's two clips) or failed (pair 5's target)
    assert (remote.decoded, remote.reused) == (local.decoded, local.reused)
    assert remote.decoded + remote.reused == 2 * len(raw) - 1 and remote.reused >= 2


def test_killed_worker_mid_normalize_converges_to_the_same_shards(ray_cluster, raw_batch, tmp_path, monkeypatch):
    """kill -9 of the Ray worker building a clip: Ray reruns its task, and the batch still gives the
    uninterrupted run's table and shard bytes, every pair once, rows in = accepted + quarantined."""
    raw, store = raw_batch
    expected, expected_shards = _normalize(raw, store, LOCAL)
    marker = tmp_path / "victim.pid"
    monkeypatch.setenv(VICTIM_MARKER, str(marker))
    monkeypatch.setattr(clip_table, "NormalizeClip", VictimNormalizeClip)
    killed: list[int] = []
    killer = kill_first_victim(marker, killed)
    out, shards_after = _normalize(raw, store, _on(ray_cluster))
    killer.join(timeout=5)
    assert killed, "no worker was killed"
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
    pd.testing.assert_frame_equal(out.table, expected.table)
    assert shards_after == expected_shards and out.rejected == expected.rejected
    assert out.table["pair_id"].is_unique and len(out.table) + len(out.rejected) == len(raw)


@pytest.fixture(scope="module")
def references(clip_batch) -> tuple[pd.DataFrame, Path]:
    """`reference_images` rows of the engine batch (grounded and synthesized in-process), plus a copy of the
    first pair under another id, so near-duplicate removal has something to drop."""
    clips, root = clip_batch
    regions, _ = ground_batch(
        clips,
        root,
        root / "qc" / "edit_regions",
        grounder=BackendSpec.of("grounder", "diff"),
        segmenter=BackendSpec.of("segmenter", "diff"),
    )
    refs, _, _ = synthesize_batch(
        regions, root, root / "qc" / "reference_images", inpainter=BackendSpec.of("inpainter", "opencv")
    )
    copy = {**refs.iloc[0].to_dict(), "pair_id": "copy-of-first", "row": 99}
    return pd.concat([refs, pd.DataFrame([copy])], ignore_index=True), root


def test_qc_on_the_cluster_gives_the_in_process_quadruplets(ray_cluster, references):
    """quadruplets' per-pair QC (size filter, judge, embedding) on the cluster, dedup in the driver: the
    same table, quarantine records and contact-sheet frames as in-process; references the judge refused
    on a worker are quarantined (their pairs stay, instruction-only) and the copy is dropped as a
    near-duplicate, so rows in = kept + dropped whole."""
    refs, root = references
    settings = QualitySettings(
        min_reference_side=16, max_reference_aspect=8.0, judge_min_score=0.95, duplicate_threshold=0.93
    )
    backends = {"judge": BackendSpec.of("judge", "embedding"), "embedder": BackendSpec.of("embedder", "phash")}
    local = assemble_quadruplets(refs, root, settings=settings, engine=LOCAL, **backends)
    remote = assemble_quadruplets(refs, root, settings=settings, engine=_on(ray_cluster), **backends)
    pd.testing.assert_frame_equal(local.table, remote.table)
    assert remote.rejected == local.rejected
    assert len(remote.sheet_items) == len(local.sheet_items) > 0
    for ours, theirs in zip(remote.sheet_items, local.sheet_items):
        assert all(a is b is None or np.array_equal(a, b) for a, b in zip(ours, theirs))
    reasons = [r.reason for r in remote.rejected]
    assert "qc_judge_rejected" in reasons
    dropped = [r for r in remote.rejected if r.reason == "qc_near_duplicate"]
    assert [r.pair_id for r in dropped] == ["copy-of-first"]
    assert len(remote.table) + len(dropped) == len(refs) and remote.table["pair_id"].is_unique


def test_feature_encoding_in_a_ray_actor_pool_writes_the_in_process_shards(ray_cluster, training_data, tmp_path):
    """training_features' encoding in a Ray actor pool (encoders loaded once per actor from the checkpoint
    folder, no GPU on this cluster so none asked for) gives byte-identical shards and index to the
    in-process loop, every key once."""
    from model.build import init_checkpoint

    spec = EncoderSpec(str(init_checkpoint("tiny", tmp_path / "tiny", seed=0)))
    size, frames = (64, 96), 5

    def build(folder: Path, engine: EngineSettings):
        pool = ActorPool(size=1, num_cpus=1, num_gpus=None)
        built = build_features(
            folder, [training_data.manifest], training_data.data_root, spec, [size], frames, engine=engine, pool=pool
        )
        return built, _files(folder)

    local, local_files = build(tmp_path / "local", LOCAL)
    remote, remote_files = build(tmp_path / "remote", EngineSettings(engine="ray", ray_address=ray_cluster))
    assert local.written == remote.written == local.entries > 0
    assert (remote.index_sha256, remote.content_id) == (local.index_sha256, local.content_id)
    assert remote_files == local_files
