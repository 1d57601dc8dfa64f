"""The manifest as ingested, kept in the batch's `raw_edit_pairs/manifest.csv` (versioned with it).

A CSV manifest is copied byte for byte. Parquet chunks are not copied (their embedded images are
already stored content-addressed under `media/`): their rows are written as an upstream-form CSV
(`row, iid, prompt, src_video, tgt_video, ref_image`) as they stream past, the embedded reference
named `embedded:<sha256>` (or empty when null). Either way `read_manifest` on the copy gives the
batch's row count, which `raw_rows_accounted` and `kiwi export` rely on. `row` is never blank, so
a row whose cells are all null still counts.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from kiwi_platform.ingestion.manifest import ManifestRow
from kiwi_platform.ingestion.sources import Source
from kiwi_platform.lib.files import atomic_path, sha256_bytes
from kiwi_platform.lib.publish import copy_into

HEADER = ("row", "iid", "prompt", "src_video", "tgt_video", "ref_image")


def copied_rows(source: Source, rows: Iterable[ManifestRow], dst: Path) -> Iterator[ManifestRow]:
    """Pass `rows` through unchanged while writing the copy; the copy lands at `dst` once all are read."""
    dst.unlink(missing_ok=True)  # the manifest may change under the same batch name
    if source.kind == "csv":
        yield from rows
        copy_into(source.files[0], dst)
        return
    with atomic_path(dst) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        for row in rows:
            ref = row.ref or (f"embedded:{sha256_bytes(row.ref_bytes)}" if row.ref_bytes else "")
            writer.writerow((row.row, row.iid or "", row.prompt or "", row.src or "", row.tgt or "", ref))
            yield row
        fh.flush()
