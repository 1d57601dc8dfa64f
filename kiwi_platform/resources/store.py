"""Where each asset's files for a batch live: `<data_dir>/batches/<batch>/<asset>/`.

Assets pass paths and hashes, not pickled objects: the store names the folders, tables are
parquet files written atomically, and each asset folder is versioned by DVC as one unit.

The batch registry (`<data_dir>/registry/<batch>.json`) says which manifest a batch reads (a CSV
file, or a glob of parquet chunks such as `DIR/chunk_*.parquet`), with the manifest's sha256 and
the base folder its relative media paths start from (None: the manifest's own folder). Several `kiwi` processes may register and run batches at once, so:
registering is a read-compare-write under a registry lock, and a different manifest for a batch
that is (being) ingested is refused unless replaced explicitly; each run of a batch holds that
batch's run lock, and an entry is only ever changed while nobody runs the batch, so a run reads
the manifest it announced.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.files import atomic_path, sha256_file, write_text_atomic
from kiwi_platform.lib.locks import file_lock

BATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REGISTRY_LOCK_TIMEOUT_S = 120.0  # the registry lock is held for a read and a small write
UNPARTITIONED = "_unpartitioned"  # run-lock name of the unpartitioned assets; never a batch name


GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class StagedTable:
    """A table already written (streamed in row groups) to a temporary parquet file.

    `write_table` renames it into place instead of serialising a DataFrame, so an asset whose table
    has millions of rows never holds them all in memory. `len()` is its row count.
    """

    path: Path
    rows: int

    def __len__(self) -> int:
        return self.rows

    def head(self, n: int) -> pd.DataFrame:
        """The first `n` rows (previews), read without loading the rest."""
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(self.path).iter_batches(batch_size=n), None)
        return batch.to_pandas() if batch is not None else pd.DataFrame()


def manifest_files(spec: str | os.PathLike) -> list[Path]:
    """The files a manifest spec names: one file, or every match of a glob (sorted); may be empty."""
    text = os.path.expanduser(str(spec))
    if GLOB_CHARS & set(text):
        return sorted(Path(p).resolve() for p in glob.glob(text) if not os.path.basename(p).startswith("."))
    return [Path(text).resolve()]


def manifest_digest(spec: str | os.PathLike) -> str:
    """sha256 of a manifest: of the file itself, or for a glob of the sorted (name, sha256) lines of
    its files, so renaming the folder keeps the digest and changing, adding or removing a chunk does not."""
    files = manifest_files(spec)
    if not GLOB_CHARS & set(str(spec)):
        return sha256_file(files[0])
    if not files:
        raise KiwiUserError(f"manifest {spec} matches no file", code="manifest_missing")
    lines = "".join(f"{p.name}\t{sha256_file(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def normalize_spec(spec: str | os.PathLike) -> str:
    """An absolute form of a manifest spec (a glob stays a glob, with an absolute folder)."""
    text = os.path.expanduser(str(spec))
    if GLOB_CHARS & set(text):
        folder, pattern = os.path.split(text)
        return os.path.join(str(Path(folder or ".").resolve()), pattern)
    return str(Path(text).resolve())


def check_batch_name(name: str) -> str:
    if not BATCH_NAME.match(name or ""):
        raise KiwiUserError(
            f"batch name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            code="bad_batch_name",
        )
    return name


class MediaStore(dg.ConfigurableResource):
    """Local media/table storage rooted at KIWI_DATA_DIR (the DVC data repo)."""

    root: str

    @property
    def root_path(self) -> Path:
        return Path(self.root)

    def batch_dir(self, batch: str) -> Path:
        return self.root_path / "batches" / check_batch_name(batch)

    def asset_dir(self, batch: str, asset: str) -> Path:
        return self.batch_dir(batch) / asset

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root_path)

    def table_path(self, batch: str, asset: str) -> Path:
        return self.asset_dir(batch, asset) / "table.parquet"

    def write_table(
        self, batch: str, asset: str, df: pd.DataFrame | StagedTable, name: str = "table"
    ) -> tuple[Path, str]:
        path = self.asset_dir(batch, asset) / f"{name}.parquet"
        if isinstance(df, StagedTable):  # written already, row group by row group: just move it in
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(df.path, path)
            return path, sha256_file(path)
        with atomic_path(path) as tmp:
            df.to_parquet(tmp, index=False)
        return path, sha256_file(path)

    def read_table(self, batch: str, asset: str, name: str = "table") -> pd.DataFrame:
        path = self.asset_dir(batch, asset) / f"{name}.parquet"
        if not path.exists():
            raise KiwiUserError(
                f"{asset} has not been materialized for batch {batch!r} (no {path}); materialize it first",
                code="upstream_missing",
            )
        return pd.read_parquet(path)

    # -- batch registry: which manifest a batch partition reads -------------------------------
    def registry_path(self, batch: str) -> Path:
        return self.root_path / "registry" / f"{check_batch_name(batch)}.json"

    def _lock_path(self, name: str) -> Path:
        return self.root_path / "registry" / ".locks" / f"{name}.lock"

    @contextlib.contextmanager
    def _registry_lock(self) -> Iterator[None]:
        with file_lock(
            self._lock_path("_registry"),
            what=f"the batch registry of {self.root_path}",
            timeout=REGISTRY_LOCK_TIMEOUT_S,
        ):
            yield

    @contextlib.contextmanager
    def run_lock(self, batch: str | None) -> Iterator[None]:
        """Held by every run of `batch` (None: the unpartitioned assets, which read every batch).

        Two runs of the same partition would write the same asset folders at once; they queue
        here instead (a waiting process says so on stderr). Re-entrant within one process.
        """
        if batch is None:
            name, what = UNPARTITIONED, "the unpartitioned assets (training, evaluation)"
        else:
            name, what = check_batch_name(batch), f"batch {batch!r}"
        with file_lock(self._lock_path(name), what=what):
            yield

    def registry_entry(self, batch: str) -> dict | None:
        """The registered {batch, manifest, sha256, base_path}, or None. Entries written before sha256
        was recorded get it from the manifest file when that is still readable."""
        path = self.registry_path(batch)
        if not path.exists():
            return None
        entry = json.loads(path.read_text())
        entry.setdefault("base_path", None)
        if not entry.get("sha256"):
            try:
                entry["sha256"] = manifest_digest(entry["manifest"])
            except (OSError, KiwiUserError):
                entry["sha256"] = None
        return entry

    def register_batch(
        self, batch: str, manifest: Path | str, *, replace: bool = False, base_path: Path | str | None = None
    ) -> dict:
        """Record that `batch` reads `manifest` (a file or a glob of chunks) with relative media paths
        under `base_path` (None: the manifest's folder); idempotent for the same manifest content.

        A different manifest (by sha256) for a registered batch is refused with a one-line
        KiwiUserError unless `replace`. Changing an existing entry (replacing it, or the same
        content at a new path or base) waits until no run of the batch is in flight.
        """
        new = self._entry_for(batch, manifest, base_path)
        with self._registry_lock():
            current = self.registry_entry(batch)
            if current is None:  # first registration: no run of this batch can be in flight
                write_text_atomic(self.registry_path(batch), json.dumps(new, indent=2))
                return new
            if self._settled(current, new, replace):
                return current
        with self.run_lock(batch), self._registry_lock():  # run lock first, always: no lock-order cycle
            current = self.registry_entry(batch)
            if current is None or not self._settled(current, new, replace):
                write_text_atomic(self.registry_path(batch), json.dumps(new, indent=2))
        return new

    def check_registration(
        self, batch: str, manifest: Path | str, *, replace: bool = False, base_path: Path | str | None = None
    ) -> None:
        """Refuse a conflicting manifest early, before slow work (reads only; `register_batch` decides)."""
        current = self.registry_entry(batch)
        if current is not None:
            self._settled(current, self._entry_for(batch, manifest, base_path), replace)

    @staticmethod
    def _entry_for(batch: str, manifest: Path | str, base_path: Path | str | None = None) -> dict:
        spec = normalize_spec(manifest)
        if base_path and "://" in str(base_path):  # a URL prefix (s3://bucket/data): kept as written
            base = str(base_path).strip().rstrip("/")
        else:
            base = str(Path(os.path.expanduser(str(base_path))).resolve()) if base_path else None
        return {"batch": check_batch_name(batch), "manifest": spec, "sha256": manifest_digest(spec), "base_path": base}

    @staticmethod
    def _settled(current: dict, new: dict, replace: bool) -> bool:
        """True when `current` already is `new`; raises on a different manifest unless `replace`."""
        if current.get("sha256") == new["sha256"]:
            return current["manifest"] == new["manifest"] and current.get("base_path") == new.get("base_path")
        if current["manifest"] == new["manifest"] and current.get("sha256") is None:
            return False  # an old entry whose file is gone: same path, record the hash now
        if replace:
            return False
        had = f"{current['manifest']}, sha256 {(current.get('sha256') or 'unknown')[:12]}"
        raise KiwiUserError(
            f"batch {new['batch']!r} is already registered with a different manifest ({had}); "
            f"{new['manifest']} (sha256 {new['sha256'][:12]}) was not ingested: use another batch name, "
            f"or pass --replace to make batch {new['batch']!r} read it",
            code="batch_conflict",
        )

    @contextlib.contextmanager
    def claim_batch(
        self, batch: str, manifest: Path | str, *, replace: bool = False, base_path: Path | str | None = None
    ) -> Iterator[dict]:
        """Register `manifest` as `batch` and hold the batch's run lock until the block ends.

        A conflicting manifest is refused at once, before any waiting. If another process replaced
        the entry while this one waited for the run lock, this one is refused too: the block only
        ever runs on the manifest it registered. Yields the registry entry in force.
        """
        new = self.register_batch(batch, manifest, replace=replace, base_path=base_path)
        with self.run_lock(batch):
            current = self.registry_entry(batch)
            if current is None or current.get("sha256") != new["sha256"]:
                now = current["manifest"] if current else "nothing"
                raise KiwiUserError(
                    f"batch {batch!r} was replaced by another kiwi process (it now reads {now}) while this one "
                    f"waited; {new['manifest']} was not ingested (pass --replace to make the batch read it)",
                    code="batch_conflict",
                )
            yield current

    def batch_source(self, batch: str) -> dict:
        """The registry entry a run of `batch` reads; one line saying what to provide when there is none."""
        entry = self.registry_entry(batch)
        if entry is None:
            raise KiwiUserError(
                f"batch {batch!r} has no manifest: set raw_edit_pairs' run config `manifest` (a CSV, or a glob of "
                f"parquet chunks) and optionally `base_path` in the Launchpad, or run "
                f"`kiwi ingest MANIFEST --batch {batch} [--base-path DIR]`",
                code="batch_unregistered",
            )
        return entry

    def batch_manifest(self, batch: str) -> Path:
        return Path(self.batch_source(batch)["manifest"])

    def batches(self) -> list[str]:
        """Registered batch names; an entry being written (a hidden temp file) is not one yet."""
        folder = self.root_path / "registry"
        entries = folder.glob("*.json") if folder.is_dir() else []
        return sorted(p.stem for p in entries if not p.name.startswith("."))
