"""Ingestion assets materialized for real: Dagster instance, DVC data repo, demo and synthetic media."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from kiwi_platform.lib.files import sha256_file
from kiwi_platform.media.clips import read_clip
from kiwi_platform.runner import materialize
from tests.integration.conftest import SMALL_RUN_CONFIG, add_batch


def _metadata(instance: dg.DagsterInstance, asset: str, partition: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None, f"{asset} was never materialized"
    mat = event.asset_materialization
    assert mat.partition == partition
    return {k: v.value for k, v in mat.metadata.items()}


def test_upstream_demo_manifest_rows_are_quarantined_with_reasons(platform, demo_dir):
    """The released demo manifests point at targets upstream never shipped: the batch still runs,
    every row is accounted for (missing_file for the first, duplicate_row for the repeats), the
    counts and DVC md5 appear in the asset metadata, and the blocking checks pass."""
    defs, resources, instance = platform
    add_batch(platform, "demo-video", demo_dir / "video_demo_training_set.csv")
    [outcome] = materialize("group:ingestion", ["demo-video"], defs=defs)
    assert outcome.ok, outcome.errors
    assert {c.name for c in outcome.checks} >= {"raw_rows_accounted", "raw_pairs_valid", "normalized_clips_valid"}
    meta = _metadata(instance, "raw_edit_pairs", "demo-video")
    assert (meta["rows_in"], meta["accepted"], meta["quarantined"]) == (8, 0, 8)
    assert meta["quarantine_by_reason"] == {"duplicate_row": 7, "missing_file": 1}
    assert meta["rows_repaired"] == 8  # unquoted commas in the upstream prompts were re-joined
    dvc_file = resources["store"].root_path / f"{meta['dvc_path']}.dvc"
    assert yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"] == meta["dvc_md5"]
    q = pd.read_parquet(resources["store"].asset_dir("demo-video", "raw_edit_pairs") / "quarantine.parquet")
    assert list(q["row"]) == list(range(1, 9))
    assert q.loc[q["reason"] == "missing_file", "path"].str.endswith("0005e4ad9f49814db1d3f2296b911abf_1.mp4").all()


def test_synthetic_batch_flows_to_normalized_clips_and_is_idempotent(platform, small_synth):
    """Accepted pairs become clips of the configured frame count and size; a second materialization
    reuses every clip, produces the same table hash and DVC md5, and adds no data-repo commit."""
    defs, resources, instance = platform
    store = resources["store"]
    add_batch(platform, "synth", small_synth)
    [first] = materialize("group:ingestion", ["synth"], defs=defs, run_config=SMALL_RUN_CONFIG)
    assert first.ok, first.errors
    raw_meta = _metadata(instance, "raw_edit_pairs", "synth")
    meta = _metadata(instance, "normalized_clips", "synth")
    assert raw_meta["rows_in"] == 6 and raw_meta["accepted"] == 6
    assert meta["accepted"] == 6 and meta["quarantined"] == 0
    table = store.read_table("synth", "normalized_clips")
    assert set(table["media"]) == {"image", "video"}
    for rec in table.to_dict("records"):
        frames = read_clip(store.root_path / rec["tgt_clip"])
        assert frames.shape == (rec["frames"], 64, 96, 3)
        assert rec["frames"] == (1 if rec["media"] == "image" else 9)
        assert sha256_file(store.root_path / rec["src_clip"]) == rec["src_clip_sha256"]
    head = resources["dvc"].git("rev-parse", "HEAD").stdout

    [second] = materialize("group:ingestion", ["synth"], defs=defs, run_config=SMALL_RUN_CONFIG)
    assert second.ok
    again = _metadata(instance, "normalized_clips", "synth")
    assert again["clips_decoded"] == 0 and again["clips_reused"] == 12
    assert (again["table_sha256"], again["dvc_md5"]) == (meta["table_sha256"], meta["dvc_md5"])
    assert resources["dvc"].git("rev-parse", "HEAD").stdout == head
    assert len(store.read_table("synth", "normalized_clips")) == 6


def test_dvc_pull_restores_batch_in_a_clean_clone(platform, small_synth, tmp_path):
    """A clean clone of the data repo gets every materialized file back, byte for byte, with `dvc pull`."""
    defs, resources, instance = platform
    add_batch(platform, "synth", small_synth)
    [outcome] = materialize("group:ingestion", ["synth"], defs=defs, run_config=SMALL_RUN_CONFIG)
    assert outcome.ok
    repo = resources["dvc"]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.root_path), str(clone)], check=True)
    assert not (clone / "batches" / "synth" / "normalized_clips").exists()  # data is not in git
    # the batch's pointer files; `dvc pull` alone would also want the declared synth_demo stage
    repo.dvc("pull", "batches/synth/raw_edit_pairs.dvc", "batches/synth/normalized_clips.dvc", cwd=clone)
    original = repo.root_path / "batches" / "synth"
    files = sorted(
        p.relative_to(original)
        for p in original.rglob("*")
        if p.is_file() and p.suffix in {".kclip", ".parquet", ".csv", ".mp4", ".png"}
    )
    assert len(files) > 12
    for rel in files:
        assert sha256_file(clone / "batches" / "synth" / rel) == sha256_file(original / rel), rel


def test_failed_step_is_reported_and_downstream_skipped(platform, small_synth, tmp_path):
    """When a batch's manifest disappears, raw_edit_pairs fails with a clear message and
    normalized_clips does not run on stale data."""
    import shutil

    defs, resources, instance = platform
    gone = tmp_path / "gone"
    shutil.copytree(small_synth.parent, gone)
    add_batch(platform, "gone", gone / "manifest.csv")
    shutil.rmtree(gone)
    [outcome] = materialize("group:ingestion", ["gone"], defs=defs, run_config=SMALL_RUN_CONFIG)
    assert not outcome.ok
    assert outcome.materialized == []
    assert any("does not exist" in e for e in outcome.errors), outcome.errors


def test_dvc_yaml_is_installed_and_dvc_status_works(platform):
    """The project's dvc.yaml lands in the data repo, `dvc status` runs on it, and the checkout stays clean."""
    defs, resources, instance = platform
    repo = resources["dvc"]
    repo.ensure()
    assert (repo.root_path / "dvc.yaml").read_text() == (Path(__file__).parents[2] / "dvc.yaml").read_text()
    proc = repo.dvc("status", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "synth_demo" in proc.stdout  # declared stage, not yet reproduced in this fresh repo
    project = subprocess.run(
        ["git", "status", "--porcelain", "--", "dvc.yaml", ".dvc"],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
    )
    assert project.stdout.strip() == ""
