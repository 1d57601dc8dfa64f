"""Read the released RefVIE parquet chunks (`chunk_*.parquet`) as a manifest, one batch at a time.

Columns: `iid, prompt, src_video, tgt_video, ref_image_bytes` (the reference image embedded as
bytes, possibly null); `iid` and `ref_image_bytes` are optional, a `ref_image` path column is read
like the CSV's. Every chunk's footer and schema are checked before any work starts, and all bad
chunks (truncated, not parquet, a missing or mistyped column) are named in one error, so a user
fixes them in one go instead of discovering them one run at a time. Rows are then read in small
record batches: memory holds one batch of rows (and their embedded images), never a chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingestion.manifest import ManifestRow

REQUIRED = ("prompt", "src_video", "tgt_video")
READ_BATCH_ROWS = 256  # rows (with their embedded images) held at once while reading


@dataclass(frozen=True)
class ParquetScan:
    files: tuple[Path, ...]
    columns: tuple[str, ...]
    rows: int


def _kind_ok(name: str, dtype: pa.DataType) -> bool:
    if name in REQUIRED or name == "ref_image":
        return pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_null(dtype)
    if name == "iid":
        return pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_integer(dtype)
    if name == "ref_image_bytes":
        return pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) or pa.types.is_null(dtype)
    return True


def _chunk_problem(path: Path) -> tuple[str | None, int, tuple[str, ...]]:
    """(what is wrong with one chunk or None, its row count, its known columns)."""
    try:
        meta = pq.ParquetFile(path)
        schema, rows = meta.schema_arrow, meta.metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"not a readable parquet file, truncated or corrupt ({first})", 0, ()
    missing = [c for c in REQUIRED if c not in schema.names]
    if missing:
        return f"missing column(s) {', '.join(missing)} (has {', '.join(schema.names)})", rows, ()
    wrong = [f"{f.name} is {f.type}" for f in schema if not _kind_ok(f.name, f.type)]
    if wrong:
        return f"wrong column type(s): {', '.join(wrong)}", rows, ()
    known = tuple(c for c in ("iid", *REQUIRED, "ref_image", "ref_image_bytes") if c in schema.names)
    return None, rows, known


def scan_parquet(files: Sequence[Path]) -> ParquetScan:
    """Check every chunk's footer and schema; one KiwiUserError listing every bad chunk."""
    problems, rows, columns = [], 0, set()
    for path in files:
        problem, n, known = _chunk_problem(path)
        if problem:
            problems.append(f"{path.name}: {problem}")
        rows += n
        columns.update(known)
    if problems:
        raise KiwiUserError(
            f"{len(problems)} of {len(files)} parquet chunk(s) in {files[0].parent} cannot be ingested, "
            f"nothing was read: " + "; ".join(problems),
            code="manifest_unreadable",
        )
    order = ("iid", *REQUIRED, "ref_image", "ref_image_bytes")
    return ParquetScan(tuple(files), tuple(c for c in order if c in columns), rows)


def iter_parquet_rows(scan: ParquetScan) -> Iterator[ManifestRow]:
    """Every row of every chunk in order, numbered 1.. across chunks (the quarantine's row numbers)."""
    number = 0
    for path in scan.files:
        pf = pq.ParquetFile(path)
        present = [c for c in scan.columns if c in pf.schema_arrow.names]
        embedded = "ref_image_bytes" in present
        try:
            for batch in pf.iter_batches(batch_size=READ_BATCH_ROWS, columns=present):
                for rec in batch.to_pylist():
                    number += 1
                    iid = rec.get("iid")
                    yield ManifestRow(
                        row=number,
                        prompt=rec.get("prompt"),
                        src=_cell(rec.get("src_video")),
                        tgt=_cell(rec.get("tgt_video")),
                        ref=_cell(rec.get("ref_image")),
                        iid=None if iid is None else (str(iid).strip() or None),
                        ref_bytes=rec.get("ref_image_bytes"),
                        ref_embedded=embedded,
                    )
        except (OSError, pa.ArrowException) as exc:  # a damaged data page the footer check cannot see
            raise KiwiUserError(
                f"parquet chunk {path} is damaged after row {number} ({str(exc).splitlines()[0]}); "
                f"replace the chunk and re-run",
                code="manifest_unreadable",
            ) from None


def _cell(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None
