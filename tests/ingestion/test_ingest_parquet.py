"""The released RefVIE parquet chunks ingest as they come: embedded references, iid, bad chunks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingestion.ingest_run import ingest_source
from kiwi_platform.ingestion.manifest import read_manifest
from kiwi_platform.ingestion.sources import open_source
from kiwi_platform.lib.files import sha256_bytes, sha256_file
from kiwi_platform.resources.store import MediaStore
from tests.ingestion.refvie_parquet import SCHEMA, jpeg_bytes, refvie_rows, write_chunks


def _ingest(tmp_path: Path, spec: str, base: Path | None):
    store = MediaStore(root=str(tmp_path / "data"))
    out = ingest_source(open_source(spec, base), store, "rv", min_frames=1)
    store.write_table("rv", "raw_edit_pairs", out.table)
    return store, out, store.read_table("rv", "raw_edit_pairs")


def test_chunks_ingest_with_embedded_references_and_iids(tmp_path: Path, demo_dir: Path) -> None:
    """Two chunks with paths under a video root: every row is accepted or quarantined (5 = 2 + 3), the
    iid is the pair id, an embedded JPEG is stored under its own sha256 with the same bytes, a null or
    undecodable reference is unreadable_image (never a crash), and a repeated iid is duplicate_row."""
    write_chunks(tmp_path / "chunks", refvie_rows(demo_dir))
    store, out, table = _ingest(tmp_path, str(tmp_path / "chunks" / "chunk_*.parquet"), demo_dir)
    assert out.rows_in == 5 == len(table) + len(out.quarantined)
    assert list(table["pair_id"]) == ["rv-001", "rv-004"] and list(table["iid"]) == ["rv-001", "rv-004"]
    assert list(table["media"]) == ["video", "image"]  # image edits are 1-frame clips, as in the CSV
    ref = jpeg_bytes(demo_dir)
    for rec in table.to_dict("records"):
        assert rec["ref_embedded"] and rec["ref_rel"] == "" and rec["ref_sha256"] == sha256_bytes(ref)
        stored = store.root_path / rec["ref_file"]
        assert stored.name == f"{sha256_bytes(ref)}.jpg" and stored.read_bytes() == ref
        assert (rec["ref_width"], rec["ref_height"]) == (48, 48)
        assert not Path(rec["src_rel"]).is_absolute()
    reasons = [(q.row, q.reason) for q in out.quarantined]
    assert reasons == [(2, "unreadable_image"), (3, "unreadable_image"), (5, "duplicate_row")]
    assert "null" in out.quarantined[0].message and "rv-001" in out.quarantined[2].message
    copy = store.asset_dir("rv", "raw_edit_pairs") / "manifest.csv"
    assert len(read_manifest(copy).rows) == out.rows_in  # what raw_rows_accounted and kiwi export count


def test_chunk_digest_ignores_the_folder_and_follows_the_bytes(tmp_path: Path, demo_dir: Path) -> None:
    """The same chunks in two folders have one manifest sha256; changing one chunk changes it."""
    rows = refvie_rows(demo_dir)
    write_chunks(tmp_path / "a", rows)
    write_chunks(tmp_path / "b", rows)
    first = open_source(str(tmp_path / "a" / "chunk_*.parquet"), demo_dir).sha256
    assert open_source(str(tmp_path / "b" / "chunk_*.parquet"), demo_dir).sha256 == first
    write_chunks(tmp_path / "b", rows[:4])
    assert open_source(str(tmp_path / "b" / "chunk_*.parquet"), demo_dir).sha256 != first


def test_every_bad_chunk_is_named_before_any_work(tmp_path: Path, demo_dir: Path) -> None:
    """A truncated chunk and a chunk without `tgt_video` are both named in one error, and nothing is
    read or written: a user fixes all chunks at once instead of finding them run by run."""
    folder = tmp_path / "chunks"
    good, second = write_chunks(folder, refvie_rows(demo_dir))
    data = second.read_bytes()
    second.write_bytes(data[: len(data) // 2])
    wrong = pa.schema([f for f in SCHEMA if f.name != "tgt_video"])
    rows = [{k: v for k, v in r.items() if k != "tgt_video"} for r in refvie_rows(demo_dir)[:2]]
    pq.write_table(pa.Table.from_pylist(rows, schema=wrong), folder / "chunk_00002.parquet")
    with pytest.raises(KiwiUserError) as err:
        open_source(str(folder / "chunk_*.parquet"), demo_dir)
    message = str(err.value)
    assert "2 of 3 parquet chunk(s)" in message and "\n" not in message
    assert "chunk_00001.parquet: not a readable parquet file" in message
    assert "chunk_00002.parquet: missing column(s) tgt_video" in message
    assert good.name not in message
    assert not (tmp_path / "data").exists()


def test_mistyped_column_is_a_bad_chunk(tmp_path: Path, demo_dir: Path) -> None:
    """`ref_image_bytes` stored as text is a schema error naming the column and its type."""
    schema = pa.schema([*(f for f in SCHEMA if f.name != "ref_image_bytes"), ("ref_image_bytes", pa.string())])
    rows = [{**r, "ref_image_bytes": "abc"} for r in refvie_rows(demo_dir)[:1]]
    write_chunks(tmp_path / "c", rows, schema=schema)
    with pytest.raises(KiwiUserError, match="ref_image_bytes is string"):
        open_source(str(tmp_path / "c" / "chunk_*.parquet"), demo_dir)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("none_*.parquet", "matches no file"), ("*", "not all parquet chunks")],
)
def test_unusable_globs_are_one_line_errors(tmp_path: Path, demo_dir: Path, spec: str, message: str) -> None:
    """A glob matching nothing, or matching a CSV beside the chunks, is refused in one line."""
    write_chunks(tmp_path, refvie_rows(demo_dir)[:2])
    (tmp_path / "notes.csv").write_text("prompt,src_video,tgt_video\n")
    with pytest.raises(KiwiUserError, match=message):
        open_source(str(tmp_path / spec), demo_dir)


def test_content_addressed_copies_match_their_hashes(tmp_path: Path, demo_dir: Path) -> None:
    """Every stored media file (embedded references included) hashes to the sha256 its row records."""
    write_chunks(tmp_path / "chunks", refvie_rows(demo_dir))
    store, _, table = _ingest(tmp_path, str(tmp_path / "chunks" / "chunk_*.parquet"), demo_dir)
    for rec in table.to_dict("records"):
        for role in ("src", "tgt", "ref"):
            assert sha256_file(store.root_path / rec[f"{role}_file"]) == rec[f"{role}_sha256"]
