"""SIGKILL a real `kiwi` process at named points, rerun the same command, and get what an
uninterrupted run gets: the same table sha256 and DVC md5, a clean data repo, nothing half-written.

The kill comes from tests/faults/kill_at.py (the named function kills its own process on its Nth
call), so production code carries no test hooks. The reference is the same command in a fresh home.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from kiwi_platform.lib.files import sha256_file
from tests.faults.conftest import assert_clean, run_kiwi, run_together

KILL_AT = [sys.executable, "-m", "tests.faults.kill_at"]
BATCH = "b"


def _versions(home: Path) -> dict[str, str]:
    """Every hash a user sees for the batch: tables' sha256 and the DVC md5 of each asset folder."""
    batch = home / "data" / "batches" / BATCH
    out = {}
    for asset in ("raw_edit_pairs", "normalized_clips"):
        out[f"{asset} table"] = sha256_file(batch / asset / "table.parquet")
        out[f"{asset} dvc_md5"] = yaml.safe_load((batch / f"{asset}.dvc").read_text())["outs"][0]["md5"]
    return out


def _killed(home: Path, target: str, nth: int, manifest: Path) -> None:
    [done] = run_together([(target, str(nth), "ingest", str(manifest), "--batch", BATCH)], home, argv0=KILL_AT)
    assert done.returncode == -9, done.describe()  # it really died at that point


def _converges(home: Path, manifest: Path, reference: dict[str, str]) -> None:
    rerun = run_kiwi("ingest", str(manifest), "--batch", BATCH, home=home)
    assert_clean(rerun)
    assert rerun.returncode == 0, rerun.describe()
    assert _versions(home) == reference
    data = home / "data"
    clips = data / "batches" / BATCH / "normalized_clips"
    written = sorted(clips.rglob("shard-*.zip"))
    assert written, "no clip shards found"
    for shard in written:  # every shard whole, and every clip in it a whole clip
        with zipfile.ZipFile(shard) as z:
            assert z.testzip() is None, shard
            for name in z.namelist():
                with z.open(name) as member, zipfile.ZipFile(member) as clip:
                    assert clip.testzip() is None, f"{shard}#{name}"
    assert not [p for p in clips.rglob(".*")], "temp files or staging left beside the clips"
    assert not list(clips.rglob("*.kclip")), "loose clips left beside the shards"
    git = subprocess.run(["git", "status", "--porcelain"], cwd=data, capture_output=True, text=True)
    assert git.stdout.strip() == "", git.stdout  # every DVC pointer committed
    status = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=data, capture_output=True, text=True)
    assert "changed" not in status.stdout and "deleted" not in status.stdout, status.stdout


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_manifest) -> dict[str, str]:
    """The hashes of an uninterrupted `kiwi ingest` in a fresh home."""
    home = tmp_path_factory.mktemp("reference") / "kiwi-home"
    done = run_kiwi("ingest", str(tiny_manifest), "--batch", BATCH, home=home)
    assert done.returncode == 0, done.describe()
    return _versions(home)


@pytest.mark.slow
def test_kill_during_normalization_then_rerun_converges(tmp_path, tiny_manifest, reference):
    """SIGKILL while normalizing (two clips written, the third starting); rerunning `kiwi ingest`
    exits 0 and gives the uninterrupted run's table sha256 and dvc_md5, every clip a whole file,
    no temp files, and a clean data repo."""
    home = tmp_path / "kiwi-home"
    _killed(home, "kiwi_platform.ingestion.clip_table:normalize_media", 3, tiny_manifest)
    clips = home / "data" / "batches" / BATCH / "normalized_clips"
    assert not (clips / "table.parquet").exists()  # the table is written last: nothing claims the partial set
    _converges(home, tiny_manifest, reference)


@pytest.mark.slow
def test_kill_while_packing_clip_shards_then_rerun_converges(tmp_path, tiny_manifest, reference):
    """SIGKILL in the middle of writing the clip shard (its second member starting); no half-written
    shard is visible, nothing claims the partial set, and rerunning `kiwi ingest` gives the
    uninterrupted run's table sha256 and dvc_md5 with whole shards and no temp files."""
    home = tmp_path / "kiwi-home"
    _killed(home, "kiwi_platform.lib.shards:member", 2, tiny_manifest)
    clips = home / "data" / "batches" / BATCH / "normalized_clips"
    assert not (clips / "table.parquet").exists()
    assert not list(clips.rglob("shard-*.zip")), "a shard became visible before it was complete"
    _converges(home, tiny_manifest, reference)


@pytest.mark.slow
def test_kill_during_dvc_publish_then_rerun_converges(tmp_path, tiny_manifest, reference):
    """SIGKILL right after `dvc add` of raw_edit_pairs, before its pointer is committed and pushed;
    rerunning `kiwi ingest` exits 0, with the uninterrupted run's hashes and a clean, committed repo."""
    home = tmp_path / "kiwi-home"
    _killed(home, "kiwi_platform.resources.dvc:DvcRepo._commit_metadata", 1, tiny_manifest)
    _converges(home, tiny_manifest, reference)
