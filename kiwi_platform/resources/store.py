"""Where each asset's files for a batch live: `<data_dir>/batches/<batch>/<asset>/`.

Assets pass paths and hashes, not pickled objects: the store names the folders, tables are
parquet files written atomically, and each asset folder is versioned by DVC as one unit.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import dagster as dg
import pandas as pd

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.files import atomic_path, sha256_file, write_text_atomic

BATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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

    def write_table(self, batch: str, asset: str, df: pd.DataFrame, name: str = "table") -> tuple[Path, str]:
        path = self.asset_dir(batch, asset) / f"{name}.parquet"
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

    def register_batch(self, batch: str, manifest: Path) -> dict:
        entry = {"batch": batch, "manifest": str(Path(manifest).resolve())}
        write_text_atomic(self.registry_path(batch), json.dumps(entry, indent=2))
        return entry

    def batch_manifest(self, batch: str) -> Path:
        path = self.registry_path(batch)
        if not path.exists():
            raise KiwiUserError(f"batch {batch!r} is not registered; run `kiwi ingest MANIFEST.csv --batch {batch}`")
        return Path(json.loads(path.read_text())["manifest"])

    def batches(self) -> list[str]:
        folder = self.root_path / "registry"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
