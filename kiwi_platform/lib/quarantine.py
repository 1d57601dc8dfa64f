"""The quarantine table: every row a stage could not use, with a reason code and a message.

Each stage writes its own `quarantine.parquet` inside its asset folder (so it is versioned with
the outputs it explains); readers combine them per batch.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

import pandas as pd

from kiwi_platform.ingest.reasons import QuarantineRecord

COLUMNS = ["row", "stage", "reason", "message", "path", "pair_id", "score"]


def to_frame(records: Iterable[QuarantineRecord]) -> pd.DataFrame:
    df = pd.DataFrame([r.to_dict() for r in records], columns=COLUMNS)
    return df.astype({"row": "int64", "score": "float64"}).sort_values(["row", "stage"], kind="stable").reset_index(drop=True)


def read_batch(batch_dir: Path) -> pd.DataFrame:
    """All quarantine records of a batch, ordered by manifest row, then stage."""
    frames = [pd.read_parquet(p) for p in sorted(batch_dir.glob("*/quarantine.parquet"))]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True).sort_values(["row", "stage"], kind="stable").reset_index(drop=True)


def reason_counts(records: Iterable[QuarantineRecord]) -> dict[str, int]:
    return dict(sorted(Counter(r.reason for r in records).items()))
