"""The inbox: drop a manifest into a folder and it becomes a registered batch (no Dagster here).

`$KIWI_HOME/inbox/` (or `KIWI_INBOX`) holds:
- `NAME.csv` or `NAME.parquet`: a manifest; the batch is named from the file (`NAME`, with
  characters a batch name cannot hold replaced by `-`);
- `NAME/` holding `*.parquet` chunks: one batch `NAME` reading all of them (the released RefVIE layout);
- optionally `NAME.base_path` (or `NAME/base_path` in a chunk folder): one line, the folder the
  manifest's relative media paths start from (default: the manifest's folder).

A manifest is picked up once it has not changed for `SETTLE_S` seconds (copy it in, or better
write it elsewhere and rename it in), and again whenever its size or modification time changes.
Registration goes through `MediaStore.check_registration` / `register_batch`, exactly as
`kiwi ingest` does, so a name already bound to a different manifest is refused, not replaced.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingestion.sources import open_source
from kiwi_platform.resources.store import MediaStore, check_batch_name

SETTLE_S = 10.0
INBOX_ENV = "KIWI_INBOX"


@dataclass(frozen=True)
class InboxItem:
    batch: str
    spec: str  # the manifest file, or `<folder>/*.parquet`
    base_path: str | None
    signature: str  # size and mtime of every file: changes when the manifest does


@dataclass(frozen=True)
class InboxRequest:
    batch: str
    spec: str
    base_path: str | None
    sha256: str


@dataclass
class InboxPlan:
    requests: list[InboxRequest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per manifest that was not registered
    seen: dict[str, str] = field(default_factory=dict)  # spec -> signature, the sensor's cursor


def inbox_dir(home: Path) -> Path:
    return Path(os.environ.get(INBOX_ENV) or Path(home) / "inbox")


def batch_name_for(name: str) -> str:
    """A valid batch name from a file or folder name (`RefVIE chunk 01` -> `RefVIE-chunk-01`)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:64] or "inbox"
    return check_batch_name(clean)


def scan_inbox(inbox: Path, now: float, settle_s: float = SETTLE_S) -> list[InboxItem]:
    """Manifests in the inbox that have settled, in name order."""
    items = []
    for entry in sorted(inbox.iterdir()) if inbox.is_dir() else []:
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in {".csv", ".parquet"}:
            files, spec, stem = [entry], str(entry.resolve()), entry.stem
            base_file = entry.with_suffix(".base_path")
        elif entry.is_dir() and (files := sorted(p for p in entry.glob("*.parquet") if not p.name.startswith("."))):
            spec, stem, base_file = str(entry.resolve() / "*.parquet"), entry.name, entry / "base_path"
        else:
            continue
        stats = [p.stat() for p in files]
        if now - max(s.st_mtime for s in stats) < settle_s:
            continue  # still being written
        base = base_file.read_text().strip() or None if base_file.is_file() else None
        signature = ";".join(f"{p.name}:{s.st_size}:{s.st_mtime_ns}" for p, s in zip(files, stats))
        items.append(InboxItem(batch_name_for(stem), spec, base, f"{signature}|{base or ''}"))
    return items


def plan_inbox(store: MediaStore, inbox: Path, seen: dict[str, str], now: float) -> InboxPlan:
    """Register every new or changed manifest in the inbox; say why any other was left alone."""
    plan = InboxPlan(seen=dict(seen))
    for item in scan_inbox(inbox, now):
        if seen.get(item.spec) == item.signature:
            continue
        plan.seen[item.spec] = item.signature
        try:
            source = open_source(item.spec, item.base_path)  # bad chunks or CSV: one line, nothing registered
            store.check_registration(item.batch, source.spec, base_path=item.base_path)
            entry = store.register_batch(item.batch, source.spec, base_path=item.base_path)
        except KiwiUserError as exc:
            plan.problems.append(f"{item.batch} ({item.spec}): {exc}")
            continue
        plan.requests.append(InboxRequest(item.batch, entry["manifest"], entry.get("base_path"), entry["sha256"]))
    return plan
