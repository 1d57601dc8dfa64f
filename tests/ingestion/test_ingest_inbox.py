"""The inbox: manifests dropped into a folder become registered batches, once each, safely."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from kiwi_platform.ingestion.inbox import batch_name_for, plan_inbox
from kiwi_platform.resources.store import MediaStore
from tests.ingestion.ingest_media import Kit
from tests.ingestion.refvie_parquet import refvie_rows, write_chunks


def _aged(*paths: Path) -> None:
    """Set the modification time a minute back: the file has settled."""
    past = time.time() - 60
    for path in paths:
        os.utime(path, (past, past))


def test_batch_names_come_from_file_names() -> None:
    """File names that are not valid batch names are made valid, readable ones."""
    assert batch_name_for("RefVIE chunk 01") == "RefVIE-chunk-01"
    assert batch_name_for("__weird__name!!") == "weird__name"
    assert len(batch_name_for("x" * 100)) == 64


def test_new_csv_is_registered_once_and_a_fresh_file_waits(tmp_path: Path, kit: Kit) -> None:
    """A settled CSV becomes batch `<stem>` with its content hash; the next look (same cursor) requests
    nothing; a file still being written (modified just now) is left for a later look."""
    store = MediaStore(root=str(tmp_path / "data"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    manifest = inbox / "week 12.csv"
    manifest.write_text(f"prompt,src_video,tgt_video\np,{kit.root / 'a.mp4'},{kit.root / 'a_tgt.mp4'}\n")
    fresh = inbox / "fresh.csv"
    fresh.write_text(manifest.read_text())
    _aged(manifest)
    plan = plan_inbox(store, inbox, {}, time.time())
    assert [(r.batch, Path(r.spec).name) for r in plan.requests] == [("week-12", "week 12.csv")]
    assert store.registry_entry("week-12")["sha256"] == plan.requests[0].sha256
    assert store.registry_entry("fresh") is None
    again = plan_inbox(store, inbox, plan.seen, time.time())
    assert again.requests == [] and again.problems == []


def test_changed_manifest_under_a_taken_name_is_refused_not_replaced(tmp_path: Path, kit: Kit) -> None:
    """Another manifest under an existing batch name is reported in one line and the batch keeps its own."""
    store = MediaStore(root=str(tmp_path / "data"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    manifest = inbox / "b1.csv"
    manifest.write_text(f"prompt,src_video,tgt_video\np,{kit.root / 'a.mp4'},{kit.root / 'a_tgt.mp4'}\n")
    _aged(manifest)
    first = plan_inbox(store, inbox, {}, time.time())
    manifest.write_text(manifest.read_text() + f"q,{kit.root / 'b.mp4'},{kit.root / 'b_tgt.mp4'}\n")
    _aged(manifest)
    second = plan_inbox(store, inbox, first.seen, time.time())
    assert second.requests == [] and len(second.problems) == 1
    assert "already registered with a different manifest" in second.problems[0]
    assert store.registry_entry("b1")["sha256"] == first.requests[0].sha256


def test_folder_of_chunks_is_one_batch_with_its_base_path(tmp_path: Path, demo_dir: Path) -> None:
    """`inbox/NAME/chunk_*.parquet` with a `base_path` file registers one batch reading every chunk,
    media under that base; a folder with a truncated chunk registers nothing and says which chunk."""
    store = MediaStore(root=str(tmp_path / "data"))
    inbox = tmp_path / "inbox"
    chunks = write_chunks(inbox / "refvie", refvie_rows(demo_dir))
    (inbox / "refvie" / "base_path").write_text(f"{demo_dir}\n")
    shutil.copytree(inbox / "refvie", inbox / "broken")
    (inbox / "broken" / chunks[0].name).write_bytes(chunks[0].read_bytes()[:100])
    _aged(*(inbox / "refvie").iterdir(), *(inbox / "broken").iterdir())
    plan = plan_inbox(store, inbox, {}, time.time())
    assert [(r.batch, r.spec.endswith("refvie/*.parquet"), r.base_path) for r in plan.requests] == [
        ("refvie", True, str(demo_dir.resolve()))
    ]
    assert len(plan.problems) == 1 and "broken" in plan.problems[0] and chunks[0].name in plan.problems[0]
    assert store.registry_entry("broken") is None
