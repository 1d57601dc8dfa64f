"""Upstream training CSVs as released: media paths relative to a dataset base folder, or absolute."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingestion.ingest_run import ingest_source
from kiwi_platform.ingestion.origins import with_source_paths
from kiwi_platform.ingestion.sources import open_source
from kiwi_platform.resources.store import MediaStore
from tests.ingestion.ingest_media import Kit


def _manifest(folder: Path, rows: list[tuple[str, ...]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("src_video", "tgt_video", "prompt"), *rows])
    return path


def _ingest(tmp_path: Path, manifest: Path, base: Path | None):
    store = MediaStore(root=str(tmp_path / "data"))
    out = ingest_source(open_source(manifest, base), store, "b", min_frames=16)
    store.write_table("b", "raw_edit_pairs", out.table)
    return store, out


def test_paths_start_at_the_base_path_not_the_csv(tmp_path: Path, kit: Kit) -> None:
    """A CSV kept apart from its media reads them through --base-path (upstream's dataset_base_path);
    without it the same rows are missing_file, named by the path as written."""
    manifest = _manifest(
        tmp_path / "csvs", [("a.mp4", "a_tgt.mp4", "make it red"), ("img_src.jpg", "img_tgt.jpg", "x")]
    )
    store, out = _ingest(tmp_path, manifest, kit.root)
    assert out.quarantined == [] and len(out.table) == 2
    table = store.read_table("b", "raw_edit_pairs")
    assert list(table["src_rel"]) == ["a.mp4", "img_src.jpg"] and list(table["media"]) == ["video", "image"]
    located = with_source_paths(table, store.batch_dir("b"))
    assert list(located["src_path"]) == [str(kit.root / "a.mp4"), str(kit.root / "img_src.jpg")]

    _, without = _ingest(tmp_path / "second", manifest, None)
    assert [(q.reason, q.path) for q in without.quarantined] == [
        ("missing_file", "a.mp4"),
        ("missing_file", "img_src.jpg"),
    ]


def test_relative_paths_may_not_leave_the_base_path(tmp_path: Path, kit: Kit) -> None:
    """With a base path, `../` out of it is still path_escape: the protection follows the base folder."""
    manifest = _manifest(kit.root / "sub", [("../a.mp4", "a_tgt.mp4", "p")])
    _, out = _ingest(tmp_path, manifest, kit.root / "sub")
    assert [(q.reason, q.path) for q in out.quarantined] == [("path_escape", "../a.mp4")]


def test_missing_base_path_is_a_one_line_error(tmp_path: Path, kit: Kit) -> None:
    """A base path that does not exist stops the batch before any row is read."""
    manifest = _manifest(tmp_path, [("a.mp4", "a_tgt.mp4", "p")])
    with pytest.raises(KiwiUserError, match="base path .* does not exist"):
        open_source(manifest, tmp_path / "nope")
