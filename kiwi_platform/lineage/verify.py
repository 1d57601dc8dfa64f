"""Re-hash every raw file a batch reads, where it is: `kiwi lineage --verify` without a model.

With raw media by reference (docs/raw-media.md) the bytes a batch was built from live outside
the data repo, so nothing but a re-hash notices an original that was edited, replaced or deleted.
Each file later stages read is checked against the sha256 ingestion recorded: the original
(located through the batch's origin record, `with_source_paths`), or the stored copy
(`<role>_file`: `copy_raw`, reference images); a file shared by many rows is hashed once. An unreachable storage endpoint stops the check with one line (KiwiUserError)
rather than reporting every remote file as vanished.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kiwi_platform.ingestion.origins import with_source_paths
from kiwi_platform.ingestion.remote import is_url, sha256_url
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.lib.quarantine import RowRejected
from kiwi_platform.resources.store import MediaStore

ROLES = ("src", "tgt", "ref")


@dataclass(frozen=True)
class RawProblem:
    batch: str
    role: str
    location: str  # absolute path or URL
    status: str  # "changed" | "missing" | "unreadable"
    expected: str  # sha256 recorded at ingestion
    found: str = ""  # sha256 now, for a changed file; the reason otherwise

    def line(self) -> str:
        if self.status == "changed":
            return (
                f"CHANGED: batch {self.batch} {self.role} {self.location} "
                f"(sha256 {self.found}, ingested {self.expected})"
            )
        return f"{self.status.upper()}: batch {self.batch} {self.role} {self.location} ({self.found})"


@dataclass
class RawVerification:
    batches: list[str] = field(default_factory=list)
    checked: int = 0
    problems: list[RawProblem] = field(default_factory=list)

    def summary(self) -> str:
        counts = {s: sum(p.status == s for p in self.problems) for s in ("changed", "missing", "unreadable")}
        return (
            f"verified {self.checked} raw files in {len(self.batches)} batches: "
            f"{counts['changed']} changed, {counts['missing']} missing, {counts['unreadable']} unreadable"
        )


def verify_raw(store: MediaStore, batches: Iterable[str]) -> RawVerification:
    """Re-hash each distinct raw file of `batches` (ingested ones; others are skipped)."""
    out = RawVerification()
    for batch in batches:
        if not (store.asset_dir(batch, "raw_edit_pairs") / "table.parquet").exists():
            continue
        out.batches.append(batch)
        raw = with_source_paths(store.read_table(batch, "raw_edit_pairs"), store.batch_dir(batch))
        seen: set[str] = set()
        for rec in raw.to_dict("records"):
            for role in ROLES:
                sha = rec.get(f"{role}_sha256") or ""
                stored, original = rec.get(f"{role}_file") or "", rec.get(f"{role}_path") or ""
                location = str(store.root_path / stored) if stored else original
                if not sha or (not location and not rec.get(f"{role}_rel")) or location in seen:
                    continue
                seen.add(location)
                out.checked += 1
                if not location:  # by reference, but the batch's origin record is gone
                    name = rec[f"{role}_rel"]
                    out.problems.append(RawProblem(batch, role, name, "unreadable", sha, "origin unknown; re-ingest"))
                    continue
                problem = _check(batch, role, location, sha)
                if problem:
                    out.problems.append(problem)
    return out


def _check(batch: str, role: str, location: str, sha: str) -> RawProblem | None:
    if is_url(location):
        try:
            digest, _ = sha256_url(location)
        except RowRejected as rej:
            status = "missing" if rej.reason == "missing_file" else "unreadable"
            return RawProblem(batch, role, location, status, sha, rej.message)
    else:
        path = Path(location)
        if not path.is_file():
            return RawProblem(batch, role, location, "missing", sha, "no such file")
        try:
            digest = sha256_file(path)
        except OSError as exc:
            return RawProblem(batch, role, location, "unreadable", sha, exc.strerror or str(exc))
    return None if digest == sha else RawProblem(batch, role, location, "changed", sha, digest)
