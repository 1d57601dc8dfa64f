"""The per-stage training manifests: every batch's quadruplets, re-verified, mixed per stage.

A batch whose files changed since QC stops the build (its quadruplets must be re-materialized);
a batch without quadruplets is skipped and named. Each stage manifest is also kept by content
(`history/`), so a checkpoint's exact training data stays traceable after the next rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.files import atomic_path, sha256_file
from kiwi_platform.lib.integrity import check_files
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.training.registration import snapshot_manifest
from kiwi_platform.training.stage_mixes import MANIFEST_COLUMNS, build_stage_manifest

MANIFEST_DIR = "training/manifests"
QUADRUPLET_FILES = (("src_clip", "src_clip_sha256"), ("tgt_clip", "tgt_clip_sha256"), ("ref_image", "ref_sha256"))


@dataclass
class BuiltManifests:
    folder: Path
    used: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict] = field(default_factory=dict)


def load_verified_quadruplets(store: MediaStore, names: list[str]) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """All named batches' quadruplets whose files still match their hashes; (table, used, skipped)."""
    tables, skipped = [], {}
    for batch in names:
        path = store.asset_dir(batch, "quadruplets") / "table.parquet"
        if not path.exists():
            skipped[batch] = "no quadruplets yet"
            continue
        df = pd.read_parquet(path)
        _, problems = check_files(df, store.root_path, QUADRUPLET_FILES)
        if problems:
            raise KiwiUserError(
                f"batch {batch}: {len(problems)} files changed since QC (e.g. {problems[0].path}); "
                f"re-materialize quadruplets for {batch}",
                code="changed_since_qc",
            )
        if len(df):
            tables.append(df)
        else:
            skipped[batch] = "0 quadruplets"
    used = sorted(set(names) - set(skipped))
    quads = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=[*MANIFEST_COLUMNS, "media"])
    return quads, used, skipped


def write_stage_manifests(store: MediaStore, names: list[str], stage3_reference_only: bool) -> BuiltManifests:
    """Write `stage{1,2,3}.parquet` under MANIFEST_DIR (atomically) from the named batches."""
    quads, used, skipped = load_verified_quadruplets(store, names)
    built = BuiltManifests(store.root_path / MANIFEST_DIR, used, skipped)
    for stage in (1, 2, 3):
        groups = ("reference",) if stage == 3 and stage3_reference_only else None
        manifest = build_stage_manifest(quads, stage, groups)
        path = built.folder / f"stage{stage}.parquet"
        with atomic_path(path) as tmp:
            manifest.to_parquet(tmp, index=False)
        snapshot_manifest(path, stage, sha256_file(path))
        built.counts[f"stage{stage}"] = manifest["task"].value_counts().to_dict() if len(manifest) else {}
    return built
