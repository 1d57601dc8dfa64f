"""The `raw_edit_pairs` table: accepted rows with their media copied into the batch folder.

Accepted media are stored under content-addressed names (`<sha256><suffix>`), so DVC versions
exactly the bytes the rest of the pipeline reads and a file shared by many rows is stored once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kiwi_platform.lib.files import remove_stale
from kiwi_platform.lib.publish import copy_into
from kiwi_platform.media.probe import MediaInfo
from kiwi_platform.resources.store import MediaStore

ROLES = ("src", "tgt", "ref")


def store_accepted_media(accepted: list[dict], store: MediaStore, media_dir: Path) -> None:
    """Copy each accepted row's files into `media_dir` and record where (`<role>_file`, store-relative)."""
    kept: set[Path] = set()
    for rec in accepted:
        for role in ROLES:
            if rec[f"{role}_path"]:
                dst = media_dir / f"{rec[f'{role}_sha256']}{Path(rec[f'{role}_path']).suffix.lower()}"
                kept.add(copy_into(Path(rec[f"{role}_path"]), dst))
                rec[f"{role}_file"] = store.rel(dst)
            else:
                rec[f"{role}_file"] = ""
    remove_stale(media_dir, kept)


def raw_table(accepted: list[dict], batch: str, manifest_sha256: str) -> pd.DataFrame:
    """One row per accepted pair, with the batch name and the manifest's hash for lineage."""
    table = pd.DataFrame(accepted, columns=raw_columns(accepted))
    table.insert(0, "batch", batch)
    table["manifest_sha256"] = manifest_sha256
    return table


def raw_columns(records: list[dict]) -> list[str]:
    """The table's columns; fixed even when no row was accepted, so readers see a stable schema."""
    if records:
        return list(records[0].keys())
    probe = [f"{p}{k}" for p in ("src_", "tgt_") for k in MediaInfo.__dataclass_fields__]
    return [
        "pair_id",
        "row",
        "prompt",
        "media",
        *(f"{role}_rel" for role in ROLES),
        *(f"{role}_path" for role in ROLES),
        *(f"{role}_sha256" for role in ROLES),
        *probe,
        "ref_width",
        "ref_height",
        *(f"{role}_file" for role in ROLES),
    ]
