"""Checkpoint folders that prove their own integrity: a sha256 per file, written when a version is frozen.

A registered checkpoint is read again much later (the next stage, evaluation, `kiwi edit`,
`kiwi lineage --verify`); a silently changed weight file would make all of those lie. The
manifest lists every file's sha256 and size; loaders refuse a folder whose files no longer match,
and the manifest's own sha256 is recorded in MLflow so the manifest cannot be edited to match.
"""

from __future__ import annotations

import json
from pathlib import Path

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.files import sha256_file, write_text_atomic

MANIFEST_NAME = "kiwi-checkpoint.json"


def write_checkpoint_manifest(folder: Path) -> Path:
    """Record every file under `folder` (sorted, relative paths) with its sha256 and size."""
    files = {
        str(p.relative_to(folder)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
    return write_text_atomic(folder / MANIFEST_NAME, json.dumps({"files": files}, indent=1, sort_keys=True))


def checkpoint_problems(folder: Path) -> list[str] | None:
    """Files that are missing or changed since the manifest was written; None when there is no manifest."""
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return None
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{MANIFEST_NAME} is unreadable"]
    problems = []
    for rel, entry in files.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            problems.append(f"{rel} does not match its recorded sha256")
    return problems


def require_intact_checkpoint(folder: Path) -> None:
    """Refuse (one line) a checkpoint whose recorded files changed; folders without a manifest pass."""
    problems = checkpoint_problems(Path(folder))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise KiwiUserError(
            f"checkpoint {folder} was modified after it was registered: {problems[0]}{more}; "
            "restore it (e.g. `dvc pull` / from backup) or re-train the stage",
            code="checkpoint_changed",
        )
