"""One ingestion of a batch, start to end, without Dagster: source rows -> validated -> stored.

The asset (`assets/ingestion.py`) and the memory benchmark (`benchmarks/ingest.py`) both call
`ingest_source`. Rows stream from the source through validation into the table writer; only the
quarantine records (small, needed whole for the quarantine table) accumulate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kiwi_platform.engine import EngineSettings
from kiwi_platform.ingestion.manifest_copy import copied_rows
from kiwi_platform.ingestion.origins import write_origin
from kiwi_platform.ingestion.raw_table import RawTableWriter
from kiwi_platform.ingestion.sources import Source
from kiwi_platform.ingestion.validate import iter_validated
from kiwi_platform.lib.quarantine import QuarantineRecord, RowRejected
from kiwi_platform.resources.store import MediaStore, StagedTable


@dataclass
class IngestOutcome:
    table: StagedTable
    rows_in: int
    quarantined: list[QuarantineRecord] = field(default_factory=list)
    videos: int = 0
    images: int = 0
    embedded_refs: int = 0


def ingest_source(
    source: Source,
    store: MediaStore,
    batch: str,
    *,
    min_frames: int,
    copy_raw: bool = True,
    progress: Callable[[int, int], None] | None = None,
    engine: EngineSettings | None = None,
) -> IngestOutcome:
    """Validate every row of `source`, store (`copy_raw`) or record in place accepted media, stage
    the table; rows in = accepted + quarantined.

    The asset passes its run config (by reference unless `copy_raw: true`, docs/raw-media.md); the
    function's own default keeps copying, which direct callers written before that rely on.
    With `engine`, the files are hashed and probed there a window of rows at a time (as every other
    per-row stage); without, one by one in this process.
    """
    folder = store.asset_dir(batch, "raw_edit_pairs")
    folder.mkdir(parents=True, exist_ok=True)
    writer = RawTableWriter(store, batch, source.sha256, copy_raw=copy_raw)
    quarantined: list[QuarantineRecord] = []
    done = 0
    rows = copied_rows(source, source.iter_rows(), folder / "manifest.csv")
    try:
        items = iter_validated(rows, source.base_dir, columns=source.columns, min_frames=min_frames, engine=engine)
        for done, item in enumerate(items, start=1):
            if isinstance(item, QuarantineRecord):
                quarantined.append(item)
            else:
                try:
                    writer.add(item)
                except RowRejected as rej:  # a remote original changed between probing and copying
                    quarantined.append(
                        QuarantineRecord(row=item["row"], reason=rej.reason, message=rej.message, path=rej.path)
                    )
            if progress:
                progress(done, source.rows)
        table = writer.close()
    except BaseException:
        writer.abort()
        raise
    write_origin(
        store.batch_dir(batch),
        kind=source.kind,
        manifest=source.spec,
        base_path=source.base_dir,
        files=[str(p) for p in source.files],
        copy_raw=copy_raw,
    )
    outcome = IngestOutcome(table, done, quarantined)
    outcome.videos, outcome.images, outcome.embedded_refs = writer.videos, writer.images, writer.embedded_refs
    return outcome
