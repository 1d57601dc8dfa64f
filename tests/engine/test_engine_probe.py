"""Probing (raw_edit_pairs' hashing and probing of every file) on the real two-node Ray cluster.

Slow: shares the session's loopback cluster (tests/engine/conftest.py).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from kiwi_platform.engine import EngineSettings
from kiwi_platform.ingestion import file_facts, validate
from kiwi_platform.ingestion.ingest_run import ingest_source
from kiwi_platform.ingestion.sources import open_source
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.synth import generate

pytestmark = pytest.mark.slow


def _manifest(root: Path, demo_dir: Path) -> Path:
    """5 synthetic pairs plus the rows that make probing interesting: one naming a missing file, one
    repeating row 1, one whose 'reference image' is a video, and one reusing pair 0's source with pair
    1's target (a file shared across rows, probed once)."""
    out = root / "synth"
    generate(out, 5, seed=3, frames=9, height=96, width=160, image_share=0.0, demo_dir=demo_dir)
    with open(out / "manifest.csv", newline="") as fh:
        rows = [[*r, ""] for r in csv.reader(fh)]  # prompt, src_video, tgt_video, ref_image
    rows[0][3] = "ref_image"
    extra = [list(r) for r in (rows[1], rows[1], rows[2], rows[1])]
    extra[0][1] = "src/not-there.mp4"
    extra[2][3] = rows[2][2]
    extra[3][0], extra[3][2] = "Swap the object for the other one.", rows[2][2]
    with open(out / "manifest.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows + extra)
    return out / "manifest.csv"


def _ingest(manifest: Path, root: Path, engine: EngineSettings | None):
    store = MediaStore(root=str(root))
    return ingest_source(open_source(manifest), store, "b", min_frames=9, copy_raw=False, engine=engine)


def test_probing_on_the_cluster_gives_the_in_process_table_and_quarantine(ray_cluster, tmp_path, demo_dir, monkeypatch):
    """raw_edit_pairs with its files probed on a cluster, in windows smaller than the batch: the same
    table, byte for byte, and the same quarantine records (missing file, duplicate row, a video given
    as reference) as probing each file in the step, rows in = accepted + quarantined; and the step
    itself probed only the file the cluster found missing (re-checked on the driver's disk)."""
    manifest = _manifest(tmp_path, demo_dir)
    local = _ingest(manifest, tmp_path / "local", None)
    monkeypatch.setattr(validate, "WINDOW", 3)  # several windows, one row shared across two of them
    in_driver: list[Path] = []
    probe_here = file_facts.local_facts
    monkeypatch.setattr(file_facts, "local_facts", lambda path: in_driver.append(path) or probe_here(path))
    remote = _ingest(manifest, tmp_path / "remote", EngineSettings(engine="auto", ray_address=ray_cluster))
    assert remote.table.path.read_bytes() == local.table.path.read_bytes()
    assert remote.quarantined == local.quarantined
    assert sorted(r.reason for r in remote.quarantined) == ["duplicate_row", "missing_file", "unreadable_image"]
    assert len(remote.table) + len(remote.quarantined) == remote.rows_in == 9
    assert pd.read_parquet(remote.table.path)["pair_id"].is_unique
    # the workers import file_facts afresh (this patch is the driver's alone): the step probed only
    # the file a worker found missing, to tell "not on the worker's disk" from "not there at all"
    assert [p.name for p in in_driver] == ["not-there.mp4"]
