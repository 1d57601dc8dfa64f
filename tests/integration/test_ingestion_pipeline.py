"""Ingestion assets materialized for real: Dagster instance, DVC data repo, demo and synthetic media."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from kiwi_platform.lib import shards
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
    """Accepted pairs become clips of the configured frame count and size, and both ingestion assets show
    a source | target preview image; a second materialization reuses every clip, produces the same table
    hash and DVC md5, and adds no data-repo commit."""
    defs, resources, instance = platform
    store = resources["store"]
    add_batch(platform, "synth", small_synth)
    [first] = materialize("group:ingestion", ["synth"], defs=defs, run_config=SMALL_RUN_CONFIG)
    assert first.ok, first.errors
    raw_meta = _metadata(instance, "raw_edit_pairs", "synth")
    meta = _metadata(instance, "normalized_clips", "synth")
    assert raw_meta["rows_in"] == 6 and raw_meta["accepted"] == 6
    for preview in (raw_meta["preview"], _metadata(instance, "normalized_clips", "synth")["preview"]):
        assert "source | target" in preview and "](data:image/jpeg;base64," in preview
    assert meta["accepted"] == 6 and meta["quarantined"] == 0
    table = store.read_table("synth", "normalized_clips")
    assert set(table["media"]) == {"image", "video"}
    for rec in table.to_dict("records"):
        frames = read_clip(store.root_path / rec["tgt_clip"])
        assert frames.shape == (rec["frames"], 64, 96, 3)
        assert rec["frames"] == (1 if rec["media"] == "image" else 9)
        assert shards.sha256(store.root_path / rec["src_clip"]) == rec["src_clip_sha256"]
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
        if p.is_file() and p.suffix in {".zip", ".kclip", ".parquet", ".csv", ".mp4", ".png"}
    )
    assert "normalized_clips/clips/shard-00000.zip" in {f.as_posix() for f in files} and len(files) >= 4
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
    """The project's dvc.yaml (its artifacts) lands in the data repo, `dvc status` runs on it without
    reporting a stage this repo never made as deleted, and the checkout stays clean."""
    defs, resources, instance = platform
    repo = resources["dvc"]
    repo.ensure()
    installed = yaml.safe_load((repo.root_path / "dvc.yaml").read_text())
    project = yaml.safe_load((Path(__file__).parents[2] / "dvc.yaml").read_text())
    assert installed.get("artifacts") == project["artifacts"]
    proc = repo.dvc("status", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "synth_demo" not in proc.stdout and "deleted" not in proc.stdout  # never made here: not listed
    project = subprocess.run(
        ["git", "status", "--porcelain", "--", "dvc.yaml", ".dvc"],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
    )
    assert project.stdout.strip() == ""


def test_new_batch_from_run_config_alone(platform, small_synth):
    """The UI flow: a partition added by hand plus `raw_edit_pairs.config.manifest` in the Launchpad
    ingests a batch nobody registered before; the run config registers it like `kiwi ingest` does."""
    defs, resources, instance = platform
    instance.add_dynamic_partitions("batch", ["ui-new-batch"])
    config = {"ops": {**SMALL_RUN_CONFIG["ops"]}}
    config["ops"]["raw_edit_pairs"] = {"config": {"min_frames": 9, "manifest": str(small_synth), "base_path": None}}
    [outcome] = materialize("group:ingestion", ["ui-new-batch"], defs=defs, run_config=config)
    assert outcome.ok, outcome.errors
    entry = resources["store"].registry_entry("ui-new-batch")
    assert entry["manifest"] == str(small_synth.resolve()) and entry["sha256"] == sha256_file(small_synth)
    assert _metadata(instance, "raw_edit_pairs", "ui-new-batch")["accepted"] == 6


def test_partition_without_manifest_fails_in_one_line(platform):
    """A partition added in the UI with no manifest registered or configured fails with one line that
    says what to provide (the run config field or `kiwi ingest`), not a stack trace."""
    defs, resources, instance = platform
    instance.add_dynamic_partitions("batch", ["empty-batch"])
    [outcome] = materialize("group:ingestion", ["empty-batch"], defs=defs)
    assert not outcome.ok and outcome.materialized == []
    [error] = [e for e in outcome.errors if e.startswith("raw_edit_pairs")]
    assert "has no manifest" in error and "manifest" in error and "kiwi ingest" in error
    assert "\n" not in error and "Traceback" not in error


def test_released_parquet_chunks_through_the_cli(kiwi_home, demo_dir, tmp_path):
    """`kiwi ingest 'DIR/chunk_*.parquet' --batch rv --base-path VIDEO_ROOT` on chunks in the released
    layout exits 0, prints the quarantine by reason (null / undecodable reference, repeated iid), and
    the rows add up (5 in = 2 accepted + 3 quarantined), checked by raw_rows_accounted."""
    from tests.ingestion.refvie_parquet import refvie_rows, write_chunks
    from tests.integration.test_cli import kiwi

    write_chunks(tmp_path / "refvie", refvie_rows(demo_dir))
    proc = kiwi(
        "ingest", str(tmp_path / "refvie" / "chunk_*.parquet"), "--batch", "rv", "--base-path", str(demo_dir),
        "--select", "raw_edit_pairs", home=kiwi_home,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "check raw_edit_pairs:raw_rows_accounted pass" in proc.stdout
    assert "2 accepted, 3 quarantined" in proc.stdout and "unreadable_image" in proc.stdout
    listed = kiwi("quarantine", "--batch", "rv", "--json", home=kiwi_home)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["row"], r["reason"]) for r in rows] == [
        (2, "unreadable_image"),
        (3, "unreadable_image"),
        (5, "duplicate_row"),
    ]


def test_inbox_sensor_registers_and_requests_ingestion(platform, small_synth, tmp_path):
    """The inbox sensor (stopped by default) turns a settled manifest in $KIWI_HOME/inbox into a batch
    partition and one run request carrying the manifest in run config; running that request ingests it,
    and the next evaluation requests nothing."""
    import os
    import time

    from kiwi_platform.inbox_sensor import ingest_from_inbox
    from kiwi_platform.settings import KiwiSettings

    defs, resources, instance = platform
    assert ingest_from_inbox.default_status == dg.DefaultSensorStatus.STOPPED
    inbox = KiwiSettings.from_env().home / "inbox"
    inbox.mkdir(parents=True)
    dropped = inbox / "synth drop.csv"
    dropped.write_text(
        "".join(
            line if i == 0 else _absolute_row(line, small_synth.parent)
            for i, line in enumerate(small_synth.read_text().splitlines(keepends=True))
        )
    )
    os.utime(dropped, (time.time() - 60, time.time() - 60))
    context = dg.build_sensor_context(instance=instance, resources={"store": resources["store"]})
    result = ingest_from_inbox(context)
    [request] = result.run_requests
    assert request.partition_key == "synth-drop"
    assert result.dynamic_partitions_requests[0].partition_keys == ["synth-drop"]
    instance.add_dynamic_partitions("batch", ["synth-drop"])
    config = {"ops": {**SMALL_RUN_CONFIG["ops"]}}
    config["ops"]["raw_edit_pairs"] = {
        "config": {**request.run_config["ops"]["raw_edit_pairs"]["config"], "min_frames": 9}
    }
    [outcome] = materialize("group:ingestion", ["synth-drop"], defs=defs, run_config=config)
    assert outcome.ok, outcome.errors
    assert _metadata(instance, "raw_edit_pairs", "synth-drop")["accepted"] == 6
    again = ingest_from_inbox(
        dg.build_sensor_context(instance=instance, cursor=context.cursor, resources={"store": resources["store"]})
    )
    assert isinstance(again, dg.SkipReason)


def _absolute_row(line: str, folder: Path) -> str:
    """A synth manifest row with its media paths made absolute (the inbox holds only the CSV)."""
    import csv
    import io

    cells = next(csv.reader([line]))
    header = ["prompt", "src_video", "tgt_video", "ref_image"]
    out = [c if not c or header[i] == "prompt" else str(folder / c) for i, c in enumerate(cells)]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(out)
    return buf.getvalue()
