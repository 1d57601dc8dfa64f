"""Where a batch's files came from on this machine, kept out of the versioned data (issue 16.9).

The `raw_edit_pairs` table names media relative to the batch's base folder, so the same data
ingested from a moved copy (another KIWI_HOME, a dataset mounted elsewhere) has the same table
bytes and DVC md5. The absolute origin is still worth knowing (lineage, `--verify` of the
user's originals): it goes to `batches/<batch>/raw_edit_pairs.origin.json`, beside the
DVC-tracked folder and not inside it, and to the asset's Dagster metadata. `original_bytes` is
how a later stage reads an original recorded by reference: where it is, re-hashed first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from kiwi_platform.ingestion.remote import CHANGED_REASON, fetched, is_url
from kiwi_platform.lib.batch_origin import ORIGIN_FILE, local_original, read_origin
from kiwi_platform.lib.files import sha256_file, write_text_atomic
from kiwi_platform.lib.quarantine import RowRejected

ROLES = ("src", "tgt", "ref")


def write_origin(
    batch_dir: Path, *, kind: str, manifest: str, base_path: Path | str, files: list[str], copy_raw: bool = False
) -> Path:
    """Record the absolute manifest, its files, the base folder (or URL prefix) of the batch's latest
    ingestion, and whether its raw media were copied or are read in place."""
    entry = {
        "format": kind,
        "manifest": manifest,
        "manifest_files": files,
        "base_path": str(base_path),
        "raw_media": "copied" if copy_raw else "by_reference",
    }
    return write_text_atomic(batch_dir / ORIGIN_FILE, json.dumps(entry, indent=2) + "\n")


def with_source_paths(raw: pd.DataFrame, batch_dir: Path) -> pd.DataFrame:
    """`raw` plus `src_path`, `tgt_path`, `ref_path`: each file's absolute origin, a path on this
    machine or a URL ("" for an embedded reference, or when the batch's origin is unknown and the
    path relative). Raw media kept by reference are read from there."""
    origin = read_origin(batch_dir) or {}
    base = origin.get("base_path")
    out = raw.copy()
    for role in ROLES:
        column = out[f"{role}_rel"] if f"{role}_rel" in out else pd.Series([""] * len(out), index=out.index)
        out[f"{role}_path"] = [_absolute(base, rel) for rel in column.fillna("")]
    return out


def iter_originals(table_path: Path, batch_dir: Path, chunk_rows: int = 10_000) -> Iterator[tuple[str, str]]:
    """(URI, sha256) of each raw file a `raw_edit_pairs` table reads, streamed in row groups (only
    the name and hash columns are read), for the lakeFS import of the originals."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(table_path)
    wanted = [f"{role}_{col}" for role in ROLES for col in ("rel", "sha256")]
    columns = [c for c in wanted if c in parquet.schema_arrow.names]
    for group in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
        located = with_source_paths(group.to_pandas(), batch_dir)
        for role in ROLES:
            if f"{role}_sha256" in located:
                yield from zip(located[f"{role}_path"], located[f"{role}_sha256"].fillna(""), strict=True)


def _absolute(base: str | None, rel: str) -> str:
    if not rel or rel.startswith("embedded:"):
        return ""
    if is_url(rel):
        return rel
    if base and is_url(base) and not os.path.isabs(rel):
        return f"{base.rstrip('/')}/{rel}"
    return local_original(base, rel)


@contextmanager
def original_bytes(root: Path, rec: dict, role: str) -> Iterator[Path]:
    """A local path holding the bytes ingestion hashed as `<role>_sha256`.

    A stored copy (`<role>_file`, store-relative) is used as is: DVC versions it. An original read
    in place (`<role>_path`: a local path, or a URL fetched to a temp file for the decoder) is
    re-hashed first, so a file that vanished or changed since ingestion is quarantined instead of
    being normalized under the old hash.
    """
    sha = rec[f"{role}_sha256"]
    if rec.get(f"{role}_file"):
        yield root / rec[f"{role}_file"]
        return
    where = rec.get(f"{role}_path") or ""
    if not where:
        name = rec.get(f"{role}_rel") or role
        raise RowRejected("missing_file", f"{name}: where the original lives is unknown; re-ingest the batch", name)
    if is_url(where):
        with fetched(where) as (local, digest):
            _check_same(digest, sha, where)
            yield local
        return
    path = Path(where)
    if not path.is_file():
        raise RowRejected("missing_file", f"{path.name} vanished since ingestion ({path})", where)
    _check_same(sha256_file(path), sha, where)
    yield path


def _check_same(digest: str, sha: str, where: str) -> None:
    if digest != sha:
        raise RowRejected(
            CHANGED_REASON, f"{where} changed since ingestion (sha256 {digest[:16]}, ingested {sha[:16]})", where
        )
