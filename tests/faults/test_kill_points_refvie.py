"""SIGKILL `kiwi materialize` while it grounds edits, rerun it, and get the uninterrupted run's result.

Grounding writes one mask file per pair before the table; a kill between two pairs must leave
nothing that claims to be the asset (no table, no DVC pointer), and the rerun must give the same
table sha256 and DVC md5 as a run that was never interrupted, with no temp files left behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kiwi_platform.lib.files import sha256_file
from tests.faults.conftest import assert_clean, run_kiwi, run_together

KILL_AT = [sys.executable, "-m", "tests.faults.kill_at"]
BATCH = "b"
GROUND = ("materialize", "--select", "edit_regions", "--batch", BATCH)


def _ingested(home: Path, manifest: Path) -> None:
    done = run_kiwi("ingest", str(manifest), "--batch", BATCH, home=home)
    assert done.returncode == 0, done.describe()


def _versions(home: Path) -> dict[str, str]:
    folder = home / "data" / "batches" / BATCH
    return {
        "table": sha256_file(folder / "edit_regions" / "table.parquet"),
        "dvc_md5": yaml.safe_load((folder / "edit_regions.dvc").read_text())["outs"][0]["md5"],
    }


@pytest.fixture(scope="module")
def grounded_reference(tmp_path_factory, tiny_manifest) -> dict[str, str]:
    """edit_regions of an uninterrupted ingest + materialize in a fresh home."""
    home = tmp_path_factory.mktemp("refvie-reference") / "kiwi-home"
    _ingested(home, tiny_manifest)
    done = run_kiwi(*GROUND, home=home)
    assert done.returncode == 0, done.describe()
    return _versions(home)


@pytest.mark.slow
def test_kill_during_grounding_then_rerun_converges(tmp_path, tiny_manifest, grounded_reference):
    """SIGKILL as the second pair's grounding starts: no edit_regions table or DVC pointer is visible;
    rerunning the same `kiwi materialize` exits 0 with the uninterrupted table sha256 and dvc_md5, no temp
    files in the asset folder, and a clean, committed data repo."""
    home = tmp_path / "kiwi-home"
    _ingested(home, tiny_manifest)
    [killed] = run_together([("kiwi_platform.refvie.region_table:analyse_pair", "2", *GROUND)], home, argv0=KILL_AT)
    assert killed.returncode == -9, killed.describe()
    folder = home / "data" / "batches" / BATCH
    assert not (folder / "edit_regions" / "table.parquet").exists()
    assert not (folder / "edit_regions.dvc").exists()

    rerun = run_kiwi(*GROUND, home=home)
    assert_clean(rerun)
    assert rerun.returncode == 0, rerun.describe()
    assert _versions(home) == grounded_reference
    assert not [p for p in (folder / "edit_regions").rglob(".*")], "temp files left in edit_regions"
    git = subprocess.run(["git", "status", "--porcelain"], cwd=home / "data", capture_output=True, text=True)
    assert git.stdout.strip() == "", git.stdout
