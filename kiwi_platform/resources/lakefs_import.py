"""Zero-copy import of raw originals into a lakeFS batch branch: what to import, where, and waiting.

Why its own module: the resource (`resources/lakefs.py`) talks to the server; this decides which
originals lakeFS can import (those on an object store matching the server's import regex), the
content-addressed path each lands at, what the import left (`RawImport`, for logs and metadata),
and how long to wait for the server's asynchronous import job.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import dagster as dg

from kiwi_platform.resources.lakefs_errors import LakeFSError


@dataclass(frozen=True)
class RawImport:
    """What `import_originals` left on a batch branch (all counts are distinct files, by sha256)."""

    branch: str
    prefix: str  # where the originals live on the branch: <prefix>/<sha256><suffix>
    paths: dict[str, str]  # lakeFS path -> object-store URI, every importable original of the batch
    imported: int  # entries this call added (0 on a re-run)
    import_id: str  # the lakeFS import process, "" when nothing new was imported
    commit_id: str  # the import's commit, or the branch head when nothing new was imported
    by_reference: int  # originals lakeFS cannot import (local paths, other URLs), left where they are

    def summary(self) -> str:
        """One log line for the batch (never one per file)."""
        done = (
            f"imported {self.imported} raw originals zero-copy (import {self.import_id}, commit {self.commit_id[:12]})"
            if self.imported
            else "no new raw originals to import"
        )
        line = f"lakeFS {self.branch}: {done}; {len(self.paths)} on the branch"
        if self.by_reference:
            line += f"; {self.by_reference} not on an importable object store stay by reference (lakeFS imports only from object stores)"
        return line

    def metadata(self, listed: int = 50) -> dict[str, Any]:
        """Asset metadata naming the import (Dagster UI, lineage); the first `listed` paths only, since
        a large batch has thousands (all are under `lakefs_raw_prefix`)."""
        return {
            "lakefs_raw_import_id": self.import_id,
            "lakefs_raw_import_commit": self.commit_id,
            "lakefs_raw_imported": self.imported,
            "lakefs_raw_prefix": self.prefix,
            "lakefs_raw_objects": len(self.paths),
            "lakefs_raw_paths": dg.MetadataValue.json(dict(sorted(self.paths.items())[:listed])),
            "lakefs_raw_by_reference": self.by_reference,
        }


def raw_destination(prefix: str, sha256: str, uri: str) -> str:
    """`<prefix>/<sha256><suffix>`: content-addressed like `copy_raw`'s `media/`, so a branch path names
    the bytes ingestion hashed, the same file used twice is imported once, and moving the originals
    (another bucket or base prefix) does not change the path."""
    suffix = PurePosixPath(urlsplit(uri).path).suffix.lower()
    return f"{prefix.strip('/')}/{sha256}{suffix}"


def plan_import(
    originals: Iterable[tuple[str, str]], pattern: re.Pattern | None, base: str
) -> tuple[dict[str, str], set[str]]:
    """(lakeFS path -> URI of every importable original, sha256s of those that stay by reference).

    An original is importable when it is a URL matching the server's `import_validity_regex`; the
    same bytes imported from one URL are not counted as by reference from another.
    """
    wanted: dict[str, str] = {}
    by_reference: set[str] = set()
    for uri, sha in originals:
        if not uri or not sha:
            continue
        if pattern is not None and "://" in uri and pattern.match(uri):
            wanted.setdefault(raw_destination(base, sha, uri), uri)
        else:
            by_reference.add(sha)
    by_reference -= {PurePosixPath(p).stem for p in wanted}
    return wanted, by_reference


def wait_for_import(manager: Any, where: str, import_id: str, timeout_s: float) -> Any:
    """Poll the import (50 ms growing to 2 s) until it completes, fails or runs past `import_timeout_s`."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        status = manager.status()
        if status.error is not None:
            raise LakeFSError(f"{where} (import {import_id}): {status.error.message}")
        if status.completed:
            return status
        if time.monotonic() > deadline:
            with contextlib.suppress(Exception):
                manager.cancel()
            raise LakeFSError(
                f"{where}: import {import_id} did not finish within {timeout_s:g} s "
                "(cancelled; raise KIWI_LAKEFS_IMPORT_TIMEOUT_S for very large batches)"
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
