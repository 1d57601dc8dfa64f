"""A batch's source: one CSV manifest, or a glob of released parquet chunks, plus its base folder.

`open_source` checks the whole source before any media work starts (the file(s), header or
schema, row count; a parquet glob with several bad chunks names all of them) and then hands out
rows one at a time (`iter_rows`). The digest is the registry's (`manifest_digest`), so the batch
registry and the table's `manifest_sha256` agree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingestion.manifest import REQUIRED_COLUMNS, ManifestRow, iter_csv_rows, scan_csv
from kiwi_platform.ingestion.parquet_manifest import iter_parquet_rows, scan_parquet
from kiwi_platform.ingestion.remote import check_reachable, is_url
from kiwi_platform.resources.store import GLOB_CHARS, manifest_digest, manifest_files, normalize_spec


@dataclass(frozen=True)
class Source:
    kind: str  # "csv" | "parquet"
    spec: str  # absolute file path or glob
    files: tuple[Path, ...]
    base_dir: Path | str  # a local folder, or a URL prefix (s3://bucket/data) for relative media paths
    sha256: str
    columns: tuple[str, ...]
    rows: int
    repaired_rows: int
    _scan: object

    @property
    def missing_columns(self) -> tuple[str, ...]:
        return tuple(c for c in REQUIRED_COLUMNS if c not in self.columns)

    def iter_rows(self) -> Iterator[ManifestRow]:
        if self.kind == "csv":
            return iter_csv_rows(self._scan)
        return iter_parquet_rows(self._scan)


def open_source(spec: str | os.PathLike, base_path: str | os.PathLike | None = None) -> Source:
    """Check a manifest spec end to end; raises a one-line KiwiUserError when it cannot be ingested."""
    spec = normalize_spec(spec)
    files = manifest_files(spec)
    if not files:
        raise KiwiUserError(f"manifest {spec} matches no file", code="manifest_missing")
    parquet = all(p.suffix.lower() == ".parquet" for p in files)
    if len(files) > 1 and not parquet:
        others = sorted({p.suffix or p.name for p in files if p.suffix.lower() != ".parquet"})
        raise KiwiUserError(
            f"manifest glob {spec} matches {len(files)} files, not all parquet chunks ({', '.join(others)}); "
            "a glob may only name parquet chunks, a CSV manifest is one file",
            code="manifest_unreadable",
        )
    base = _base_dir(base_path, files[0].parent)
    if parquet:
        for path in files:
            if not path.is_file():
                raise KiwiUserError(f"manifest {path} does not exist", code="manifest_missing")
        scan = scan_parquet(files)
        source = Source("parquet", spec, tuple(files), base, manifest_digest(spec), scan.columns, scan.rows, 0, scan)
    else:
        scan = scan_csv(files[0])
        source = Source(
            "csv", str(scan.path), (scan.path,), base, scan.sha256, scan.columns, scan.rows, scan.repaired_rows, scan
        )
    check_reachable(remote_urls(source))  # an endpoint that is down stops here, before anything is registered
    return source


def remote_urls(source: Source) -> set[str]:
    """One URL per remote bucket/host the source's media live in (the base prefix included)."""
    roots: set[str] = set()
    if isinstance(source.base_dir, str):
        roots.add(source.base_dir)
    for cell in _path_cells(source):
        if cell and is_url(cell):
            scheme, rest = cell.strip().split("://", 1)
            roots.add(f"{scheme}://{rest.split('/', 1)[0]}")
    return roots


def _path_cells(source: Source) -> Iterator[str | None]:
    """Every media path cell of the source; parquet chunks read only their path columns (not the images)."""
    if source.kind == "csv":
        for row in source.iter_rows():
            yield from (row.src, row.tgt, row.ref)
        return
    import pyarrow.parquet as pq

    for path in source.files:
        pf = pq.ParquetFile(path)
        columns = [c for c in ("src_video", "tgt_video", "ref_image") if c in pf.schema_arrow.names]
        if columns:
            for batch in pf.iter_batches(columns=columns):
                for column in batch.columns:
                    yield from column.to_pylist()


def is_glob(spec: str | os.PathLike) -> bool:
    return bool(GLOB_CHARS & set(str(spec)))


def _base_dir(base_path: str | os.PathLike | None, default: Path) -> Path | str:
    if base_path is None or str(base_path).strip() == "":
        return default.resolve()
    if is_url(base_path):
        return str(base_path).strip().rstrip("/")
    base = Path(os.path.expanduser(str(base_path))).resolve()
    if not base.is_dir():
        what = "does not exist" if not base.exists() else "is not a folder"
        raise KiwiUserError(f"base path {base} {what}; pass the dataset's root folder", code="base_path_missing")
    return base
