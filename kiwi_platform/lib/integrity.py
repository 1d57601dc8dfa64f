"""Do the files a table points at still hold the bytes it recorded? One answer for every stage.

Tables name files by (path column, sha256 column) pairs, paths relative to the data repo; a
blank path means "no file" (e.g. no reference) and is skipped. A path may be a shard reference
(`<shard>#<member>`, docs/shards.md): the member's bytes are hashed, and a missing shard or
member is "missing".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kiwi_platform.lib import shards


@dataclass(frozen=True)
class FileProblem:
    row: int
    path: str  # relative to the data repo, as in the table
    problem: str  # "missing" | "changed"

    def __str__(self) -> str:
        what = "is missing" if self.problem == "missing" else "does not match its sha256"
        return f"row {self.row}: {self.path} {what}"


def check_files(df: pd.DataFrame, root: Path, columns: Iterable[tuple[str, str]]) -> tuple[int, list[FileProblem]]:
    """(files checked, problems) for the (path column, sha256 column) pairs present in `df`."""
    columns = [(p, h) for p, h in columns if p in df.columns and h in df.columns]
    checked, problems = 0, []
    for rec in df.to_dict("records"):
        for path_col, hash_col in columns:
            rel = rec[path_col]
            if not rel:
                continue
            checked += 1
            path = root / rel
            if not shards.exists(path):
                problems.append(FileProblem(int(rec.get("row", 0)), rel, "missing"))
            elif shards.sha256(path) != rec[hash_col]:
                problems.append(FileProblem(int(rec.get("row", 0)), rel, "changed"))
    return checked, problems
