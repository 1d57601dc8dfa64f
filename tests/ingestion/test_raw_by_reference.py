"""Raw media by reference on local disk: recorded by URI, size and sha256, read in place, re-hashed
by `kiwi lineage --verify`; `copy_raw` still stores a content-addressed copy (docs/raw-media.md)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from kiwi_platform.ingestion.clip_table import normalize_batch
from kiwi_platform.ingestion.ingest_run import ingest_source
from kiwi_platform.ingestion.origins import with_source_paths
from kiwi_platform.ingestion.sources import open_source
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.lineage.verify import verify_raw
from kiwi_platform.resources.store import MediaStore
from tests.ingestion.ingest_media import Kit

SETTINGS = {"num_frames": 16, "max_area": 64 * 64, "multiple": 32}


def _dataset(tmp_path: Path, kit: Kit) -> Path:
    """A private copy of a few kit files plus a manifest, so tests may change and delete originals."""
    folder = tmp_path / "dataset"
    folder.mkdir()
    for name in ("a.mp4", "a_tgt.mp4", "img_src.jpg", "img_tgt.jpg", "ref.jpg"):
        shutil.copyfile(kit.root / name, folder / name)
    with open(folder / "train.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(
            [
                ("prompt", "src_video", "tgt_video", "ref_image"),
                ("make it red", "a.mp4", "a_tgt.mp4", "ref.jpg"),
                ("make it blue", "img_src.jpg", "img_tgt.jpg", ""),
            ]
        )
    return folder


def _ingest(tmp_path: Path, folder: Path, *, copy_raw: bool) -> MediaStore:
    store = MediaStore(root=str(tmp_path / "data"))
    out = ingest_source(open_source(folder / "train.csv"), store, "b", min_frames=16, copy_raw=copy_raw)
    assert out.quarantined == [] and len(out.table) == 2
    store.write_table("b", "raw_edit_pairs", out.table)
    return store


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_by_reference_records_uri_size_sha_and_copies_nothing(tmp_path: Path, kit: Kit) -> None:
    """By default each raw video stays where it is: the table names it (relative to the base, whose
    location is kept beside the table, so together they give the absolute URI) with its size and sha256,
    the batch folder holds no video, the originals are untouched, and normalization reads them in place.
    Only the small reference image is stored, under its sha256."""
    folder = _dataset(tmp_path, kit)
    before = {p: p.read_bytes() for p in _files(folder)}
    store = _ingest(tmp_path, folder, copy_raw=False)
    table = store.read_table("b", "raw_edit_pairs").sort_values("row")
    located = with_source_paths(table, store.batch_dir("b")).iloc[0]
    for role, name in (("src", "a.mp4"), ("tgt", "a_tgt.mp4"), ("ref", "ref.jpg")):
        original = folder / name
        assert (located[f"{role}_rel"], located[f"{role}_path"]) == (name, str(original.resolve()))
        assert located[f"{role}_sha256"] == sha256_file(original)
        size = located["ref_size_bytes"] if role == "ref" else located[f"{role}_size_bytes"]
        assert size == original.stat().st_size
    assert (located["src_file"], located["tgt_file"]) == ("", "")
    assert not table["raw_copied"].any()
    stored = _files(store.asset_dir("b", "raw_edit_pairs"))
    assert [p.name for p in stored] == ["manifest.csv", f"{sha256_file(folder / 'ref.jpg')}.jpg", "table.parquet"]
    assert {p: p.read_bytes() for p in _files(folder)} == before

    clips = normalize_batch(table, store, "b", tmp_path / "clips", SETTINGS)
    assert clips.rejected == [] and len(clips.table) == 2


def test_copy_raw_stores_content_addressed_copies(tmp_path: Path, kit: Kit) -> None:
    """With copy_raw every original is copied into the batch's media/ under its sha256, `<role>_file`
    points at the copy, `<role>_uri` still names the original, and the copy survives its original."""
    folder = _dataset(tmp_path, kit)
    store = _ingest(tmp_path, folder, copy_raw=True)
    table = store.read_table("b", "raw_edit_pairs").sort_values("row")
    media = store.asset_dir("b", "raw_edit_pairs") / "media"
    expected = {f"{sha256_file(folder / n)}{Path(n).suffix}" for n in ("a.mp4", "a_tgt.mp4", "ref.jpg")}
    expected |= {f"{sha256_file(folder / n)}.jpg" for n in ("img_src.jpg", "img_tgt.jpg")}
    assert {p.name for p in media.iterdir()} == expected
    first = with_source_paths(table, store.batch_dir("b")).iloc[0]
    assert first["src_path"] == str((folder / "a.mp4").resolve())
    assert (store.root_path / first["src_file"]).read_bytes() == (folder / "a.mp4").read_bytes()
    assert table["raw_copied"].all()
    shutil.rmtree(folder)
    assert verify_raw(store, ["b"]).problems == []
    clips = normalize_batch(table, store, "b", tmp_path / "clips", SETTINGS)
    assert clips.rejected == [] and len(clips.table) == 2


def test_verify_names_changed_and_vanished_originals(tmp_path: Path, kit: Kit) -> None:
    """After ingestion, an edited original is reported as changed (new and recorded sha256) and a
    deleted one as missing, one line each; normalization quarantines those rows instead of decoding
    other bytes under the recorded hash."""
    folder = _dataset(tmp_path, kit)
    store = _ingest(tmp_path, folder, copy_raw=False)
    assert verify_raw(store, ["b"]).problems == []
    shutil.copyfile(kit.root / "b.mp4", folder / "a.mp4")
    (folder / "img_tgt.jpg").unlink()

    result = verify_raw(store, ["b"])
    assert result.checked == 5
    found = sorted((p.status, p.role, Path(p.location).name) for p in result.problems)
    assert found == [("changed", "src", "a.mp4"), ("missing", "tgt", "img_tgt.jpg")]
    changed = next(p for p in result.problems if p.status == "changed")
    assert changed.found == sha256_file(folder / "a.mp4") and changed.line().startswith("CHANGED: batch b src ")
    assert result.summary() == "verified 5 raw files in 1 batches: 1 changed, 1 missing, 0 unreadable"

    clips = normalize_batch(store.read_table("b", "raw_edit_pairs"), store, "b", tmp_path / "clips", SETTINGS)
    assert sorted(q.reason for q in clips.rejected) == ["changed_file", "missing_file"]


@pytest.mark.parametrize("copy_raw", [False, True])
def test_reingest_switches_cleanly_between_modes(tmp_path: Path, kit: Kit, copy_raw: bool) -> None:
    """Re-ingesting a batch in the other mode leaves no stale copies (by reference) and a complete
    set of copies (copy_raw): the batch folder matches the mode of its latest ingestion."""
    folder = _dataset(tmp_path, kit)
    _ingest(tmp_path, folder, copy_raw=not copy_raw)
    store = _ingest(tmp_path, folder, copy_raw=copy_raw)
    media = store.asset_dir("b", "raw_edit_pairs") / "media"
    count = len(list(media.iterdir())) if media.is_dir() else 0
    assert count == (5 if copy_raw else 1)  # by reference: only the reference image
