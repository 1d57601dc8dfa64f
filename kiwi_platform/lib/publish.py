"""Finish an asset's batch folder: write its tables, version it with DVC, commit it to lakeFS.

Every data asset ends the same way, so the steps (and the metadata people read in the UI)
live here once: counts, table hash, DVC md5 + data-repo revision, lakeFS commit when enabled.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import dagster as dg
import pandas as pd

from kiwi_platform.lib import quarantine
from kiwi_platform.lib.files import atomic_path
from kiwi_platform.lib.quarantine import QuarantineRecord
from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.lakefs import LakeFSResource
from kiwi_platform.resources.store import MediaStore


def publish_asset_folder(
    context: dg.AssetExecutionContext,
    *,
    store: MediaStore,
    dvc: DvcRepo,
    lakefs: LakeFSResource,
    asset: str,
    table: pd.DataFrame,
    quarantined: Iterable[QuarantineRecord],
    rows_in: int,
    extra_metadata: dict | None = None,
    raw_originals: Iterable[tuple[str, str]] | None = None,
) -> dg.MaterializeResult:
    """Write table + quarantine for one batch, track the folder with DVC, return the result.

    `raw_originals` ((URI, sha256) pairs, from `raw_edit_pairs`) are imported zero-copy into the
    batch's lakeFS branch first, so a failed import leaves no new table, DVC version or commit.
    """
    batch = context.partition_key
    records = list(quarantined)
    raw_import = None
    if raw_originals is not None and lakefs.enabled:
        raw_import = lakefs.import_originals(batch, raw_originals, metadata={"dagster_run_id": context.run.run_id})
        context.log.info(raw_import.summary())
    folder = store.asset_dir(batch, asset)
    table_path, table_sha = store.write_table(batch, asset, table)
    store.write_table(batch, asset, quarantine.to_frame(records), name="quarantine")
    tracked = dvc.track(folder, f"{asset}[{batch}] dagster run {context.run.run_id}")
    metadata: dict = {
        "rows_in": rows_in,
        "accepted": len(table),
        "quarantined": len(records),
        "quarantine_by_reason": dg.MetadataValue.json(quarantine.reason_counts(records)),
        "table": dg.MetadataValue.path(str(table_path)),
        "table_sha256": table_sha,
        "dvc_path": tracked.path,
        "dvc_md5": tracked.md5,
        "dvc_files": tracked.files,
        "dvc_bytes": tracked.size,
        "data_repo_rev": tracked.git_rev,
    }
    branch = lakefs.branch_for_batch(batch)
    if branch:
        lakefs.upload_directory(branch, folder, prefix=f"batches/{batch}/{asset}")
        commit_id = lakefs.commit(
            branch, f"{asset}[{batch}]", {"dagster_run_id": context.run.run_id, "dvc_md5": tracked.md5}
        )
        metadata.update(
            lakefs_branch=branch,
            lakefs_commit=commit_id or "",
            lakefs_url=dg.MetadataValue.url(lakefs.commit_url(commit_id)),
        )
    if raw_import is not None:
        metadata.update(raw_import.metadata())
    if records:
        metadata["quarantine_preview"] = dg.MetadataValue.md(quarantine_markdown(records))
    metadata.update(extra_metadata or {})
    context.log.info(
        f"{asset}[{batch}]: {rows_in} in, {len(table)} accepted, {len(records)} quarantined "
        f"{json.dumps(quarantine.reason_counts(records))}; dvc md5 {tracked.md5}"
    )
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(table_sha))


def quarantine_markdown(records: list[QuarantineRecord], limit: int = 20) -> str:
    lines = ["| row | reason | message |", "|---|---|---|"]
    for r in records[:limit]:
        lines.append(f"| {r.row} | `{r.reason}` | {r.message.replace('|', '/')} |")
    if len(records) > limit:
        lines.append(f"| ... | | {len(records) - limit} more (see `kiwi quarantine`) |")
    return "\n".join(lines)


def copy_into(src: Path, dst: Path) -> Path:
    """Copy a file into the store atomically unless an identical (content-addressed) copy exists."""
    if not dst.exists():
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    return dst
