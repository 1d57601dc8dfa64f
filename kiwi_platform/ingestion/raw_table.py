"""The `raw_edit_pairs` table: accepted rows, each raw file recorded by name, size and sha256.

By default raw media stay where they are (docs/raw-media.md). The table names each file as the
manifest did (`<role>_rel`: relative to the batch's base folder or URL prefix, or the absolute
path / URL as written) with its size and sha256, and the base is kept beside the table
(`origins.py`), so the same data read from a moved copy still gives the same table bytes (issue
16.9) while `with_source_paths` gives each file's absolute path or URL on this machine. An
original read in place has `<role>_file` "". With `copy_raw` every original is stored under a
content-addressed name (`<sha256><suffix>`) in the batch's `media/` and `<role>_file` names the
copy, so DVC versions the bytes and a source that may disappear is safe. Reference images are
always stored that way (small, and later stages open them as local files), as is an embedded
reference (parquet `ref_image_bytes`), as the file it encodes. A file shared by rows is stored once.

`RawTableWriter` streams: each accepted row's media are handled as it arrives and rows go to the
parquet file in row groups, so a batch of a million pairs is never one DataFrame in memory. The
schema is fixed (`SCHEMA`), so an empty batch has the same columns and types as a full one.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kiwi_platform.ingestion.remote import CHANGED_REASON, fetched, is_url
from kiwi_platform.lib.files import remove_stale, write_bytes_atomic
from kiwi_platform.lib.publish import copy_into
from kiwi_platform.lib.quarantine import RowRejected
from kiwi_platform.resources.store import MediaStore, StagedTable

ROLES = ("src", "tgt", "ref")
ROW_GROUP = 4096
_PROBE = (
    ("kind", pa.string()),
    ("codec", pa.string()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("fps", pa.float64()),
    ("frames", pa.int64()),
    ("duration", pa.float64()),
    ("size_bytes", pa.int64()),
    ("rotation", pa.int64()),
)
SCHEMA = pa.schema(
    [
        ("batch", pa.string()),
        ("pair_id", pa.string()),
        ("row", pa.int64()),
        ("iid", pa.string()),
        ("prompt", pa.string()),
        ("media", pa.string()),
        *((f"{role}_rel", pa.string()) for role in ROLES),
        ("ref_embedded", pa.bool_()),
        *((f"{role}_sha256", pa.string()) for role in ROLES),
        *((f"{p}{name}", kind) for p in ("src_", "tgt_") for name, kind in _PROBE),
        ("ref_width", pa.int64()),
        ("ref_height", pa.int64()),
        ("ref_size_bytes", pa.int64()),
        *((f"{role}_file", pa.string()) for role in ROLES),
        ("raw_copied", pa.bool_()),
        ("manifest_sha256", pa.string()),
    ]
)


def store_media(rec: dict, store: MediaStore, media_dir: Path, copy_raw: bool = False) -> set[Path]:
    """Set one accepted row's `<role>_file`: "" for an original read in place, else the store-relative
    copy in `media_dir` (copy_raw, reference images, embedded references). Returns the copies.

    Raises RowRejected when a remote original changed between probing and copying.
    """
    kept = set()
    sources = rec.pop("_sources")
    ref_suffix = rec.pop("_ref_suffix", "")
    rec["raw_copied"] = copy_raw
    for role in ROLES:
        origin = sources.get(role)
        if not origin or not (copy_raw or role == "ref"):
            rec[f"{role}_file"] = ""
            continue
        sha = rec[f"{role}_sha256"]
        if isinstance(origin, bytes):  # an embedded reference: the bytes are the file
            dst = media_dir / f"{sha}{ref_suffix}"
            if not dst.exists():
                write_bytes_atomic(dst, origin)
        elif is_url(origin):
            dst = media_dir / f"{sha}{PurePosixPath(origin).suffix.lower()}"
            if not dst.exists():
                with fetched(origin) as (local, digest):
                    if digest != sha:
                        raise RowRejected(CHANGED_REASON, f"{origin} changed while it was being ingested", origin)
                    copy_into(local, dst)
        else:
            dst = copy_into(Path(origin), media_dir / f"{sha}{Path(origin).suffix.lower()}")
        kept.add(dst)
        rec[f"{role}_file"] = store.rel(dst)
    return kept


class RawTableWriter:
    """Stores media and appends accepted rows to a staged parquet file, `ROW_GROUP` rows at a time."""

    def __init__(self, store: MediaStore, batch: str, manifest_sha256: str, copy_raw: bool = False) -> None:
        self.store, self.batch, self.manifest_sha256 = store, batch, manifest_sha256
        self.copy_raw = copy_raw
        self.media_dir = store.asset_dir(batch, "raw_edit_pairs") / "media"
        # beside the DVC-tracked folder, so a killed run cannot leave a stray file inside it
        self.path = store.batch_dir(batch) / f".raw_edit_pairs.table.{os.getpid()}.parquet"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.path, SCHEMA)
        self._buffer: list[dict] = []
        self._kept: set[Path] = set()
        self.rows = self.videos = self.images = self.embedded_refs = 0

    def add(self, rec: dict) -> None:
        self._kept |= store_media(rec, self.store, self.media_dir, self.copy_raw)
        rec.update(batch=self.batch, manifest_sha256=self.manifest_sha256)
        self._buffer.append(rec)
        self.rows += 1
        self.videos += rec["media"] == "video"
        self.images += rec["media"] == "image"
        self.embedded_refs += bool(rec["ref_embedded"])
        if len(self._buffer) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=SCHEMA))
            self._buffer.clear()

    def close(self) -> StagedTable:
        """Finish the file and drop media an earlier run of the batch stored but this one does not use."""
        self._flush()
        self._writer.close()
        remove_stale(self.media_dir, self._kept)
        return StagedTable(self.path, self.rows)

    def abort(self) -> None:
        self._writer.close()
        self.path.unlink(missing_ok=True)


def store_accepted_media(accepted: list[dict], store: MediaStore, media_dir: Path, copy_raw: bool = True) -> None:
    """Store every accepted row's files into `media_dir` (small batches and tests; assets stream)."""
    kept: set[Path] = set()
    for rec in accepted:
        kept |= store_media(rec, store, media_dir, copy_raw)
    remove_stale(media_dir, kept)


def raw_table(accepted: list[dict], batch: str, manifest_sha256: str) -> pd.DataFrame:
    """One row per accepted pair, with the batch name and the manifest's hash for lineage."""
    rows = [{**rec, "batch": batch, "manifest_sha256": manifest_sha256} for rec in accepted]
    return pa.Table.from_pylist(rows, schema=SCHEMA).to_pandas()


def raw_columns(records: list[dict] | None = None) -> list[str]:
    """The table's columns; fixed even when no row was accepted, so readers see a stable schema."""
    return list(SCHEMA.names)
