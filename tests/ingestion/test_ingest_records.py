"""Quarantine records and the table they become; content hashes and atomic file writes."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from kiwi_platform.lib.files import atomic_path, sha256_file, write_text_atomic
from kiwi_platform.lib.quarantine import COLUMNS, REASONS, QuarantineRecord, read_batch, reason_counts, to_frame


def test_unknown_reason_codes_are_refused() -> None:
    """Reason codes are a fixed vocabulary (dashboards filter on them); a typo fails loudly, qc_* is open."""
    with pytest.raises(ValueError, match="missing_flie"):
        QuarantineRecord(row=1, reason="missing_flie", message="typo")
    assert QuarantineRecord(row=1, reason="qc_blurry", message="too blurry", stage="qc").reason == "qc_blurry"
    assert all(isinstance(text, str) and len(text.split()) >= 4 for text in REASONS.values())


def test_quarantine_table_is_ordered_by_row_with_stable_columns() -> None:
    """The table lists rows in manifest order with the documented columns, whatever order records came in."""
    records = [
        QuarantineRecord(row=5, reason="duplicate_row", message="repeats row 1"),
        QuarantineRecord(row=2, reason="missing_file", message="a.mp4 does not exist", path="/x/a.mp4"),
        QuarantineRecord(row=2, reason="qc_blurry", message="too blurry", stage="a_qc", score=0.1),
    ]
    df = to_frame(records)
    assert list(df.columns) == COLUMNS
    assert list(zip(df["row"], df["stage"], strict=True)) == [(2, "a_qc"), (2, "raw_edit_pairs"), (5, "raw_edit_pairs")]
    assert df["row"].dtype == "int64" and df["score"].dtype == "float64"
    assert reason_counts(records) == {"duplicate_row": 1, "missing_file": 1, "qc_blurry": 1}


def test_empty_quarantine_table_keeps_its_schema(tmp_path: Path) -> None:
    """No quarantined rows still gives a table with the columns (readers need not special-case it)."""
    assert list(to_frame([]).columns) == COLUMNS
    assert list(read_batch(tmp_path).columns) == COLUMNS and read_batch(tmp_path).empty


def test_read_batch_combines_stage_tables(tmp_path: Path) -> None:
    """A batch's quarantine is every stage folder's quarantine.parquet, merged and ordered by row."""
    (tmp_path / "raw_edit_pairs").mkdir()
    (tmp_path / "normalized_clips").mkdir()
    to_frame([QuarantineRecord(row=3, reason="missing_file", message="x does not exist")]).to_parquet(
        tmp_path / "raw_edit_pairs" / "quarantine.parquet"
    )
    to_frame(
        [QuarantineRecord(row=1, reason="truncated_video", message="y breaks off", stage="normalized_clips")]
    ).to_parquet(tmp_path / "normalized_clips" / "quarantine.parquet")
    df = read_batch(tmp_path)
    assert list(df["row"]) == [1, 3] and list(df["reason"]) == ["truncated_video", "missing_file"]
    assert isinstance(df, pd.DataFrame)


def test_sha256_file_matches_hashlib_across_chunks(tmp_path: Path) -> None:
    """File hashes are plain sha256 of the bytes, also for files larger than one read chunk."""
    path = tmp_path / "blob.bin"
    data = os.urandom((1 << 20) * 2 + 123)
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_atomic_write_is_whole_or_absent(tmp_path: Path) -> None:
    """An output is either the complete new file or untouched: errors leave the old file and no temp."""
    target = tmp_path / "out" / "table.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["table.json"]
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600
