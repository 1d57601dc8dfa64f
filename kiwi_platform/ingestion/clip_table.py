"""The `normalized_clips` table: every accepted pair decoded, sampled and resized into clip files.

Raw media recorded by reference are read where they are (a URL through a temp copy that is
deleted after use) and re-hashed first: a changed or vanished original is quarantined.

Clip files are named by source hash and settings, so a re-run reuses a clip made from the same
bytes with the same settings and rebuilds a corrupt or outdated one (including one made by an
older normalizer version). Clip files are byte-reproducible, so a rebuild gives the same hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kiwi_platform.ingestion.origins import with_source_paths
from kiwi_platform.ingestion.remote import CHANGED_REASON, fetched, is_url
from kiwi_platform.lib.files import remove_stale, sha256_file
from kiwi_platform.lib.quarantine import QuarantineRecord, RowRejected
from kiwi_platform.media.clips import SUFFIX, clip_header
from kiwi_platform.media.normalize import NORMALIZER_VERSION, normalize_media
from kiwi_platform.resources.store import MediaStore

NORMALIZED_COLUMNS = [
    "batch",
    "pair_id",
    "row",
    "prompt",
    "media",
    "src_clip",
    "tgt_clip",
    "ref_file",
    "frames",
    "height",
    "width",
    "fps",
    "src_clip_sha256",
    "tgt_clip_sha256",
    "src_sha256",
    "tgt_sha256",
    "ref_sha256",
]


@dataclass
class ClipTable:
    """What normalizing a batch produced: the table, the rejected rows and how much work it took."""

    table: pd.DataFrame
    rejected: list[QuarantineRecord] = field(default_factory=list)
    decoded: int = 0
    reused: int = 0


def normalize_batch(
    raw: pd.DataFrame,
    store: MediaStore,
    batch: str,
    clip_dir: Path,
    settings: dict,
    progress: Callable[[int, int, int, int], None] | None = None,
) -> ClipTable:
    """Normalize every row of `raw` into `clip_dir`; `settings` are normalize_media's size settings.

    `progress(done, total, decoded, reused)` is called after each row.
    """
    out = ClipTable(table=pd.DataFrame(columns=NORMALIZED_COLUMNS))
    rows, kept = [], set()
    located = with_source_paths(raw, store.batch_dir(batch))  # where originals kept by reference are
    for i, rec in enumerate(located.to_dict("records"), start=1):
        try:
            clips = {}
            for role in ("src", "tgt"):
                clip, header, reused = _clip_for(store, rec, role, clip_dir, settings)
                out.reused += reused
                out.decoded += not reused
                kept.add(clip)
                clips[role] = (clip, header)
            rows.append(_row(batch, rec, clips, store))
        except RowRejected as rej:
            out.rejected.append(
                QuarantineRecord(
                    int(rec["row"]), rej.reason, rej.message, rej.path, "normalized_clips", pair_id=rec["pair_id"]
                )
            )
        if progress:
            progress(i, len(raw), out.decoded, out.reused)
    remove_stale(clip_dir, kept)
    out.table = pd.DataFrame(rows, columns=NORMALIZED_COLUMNS)
    return out


def _clip_for(store: MediaStore, rec: dict, role: str, clip_dir: Path, settings: dict) -> tuple[Path, dict, bool]:
    """The clip of one side of a pair: reused when an identical one exists, else decoded now."""
    sha = rec[f"{role}_sha256"]
    name = f"{sha[:20]}-{settings['num_frames']}f-{settings['max_area']}a-{settings['multiple']}m{SUFFIX}"
    dst = clip_dir / name
    if dst.exists() and _clip_matches(dst, sha, settings):
        return dst, clip_header(dst), True
    meta = {"source_sha256": sha, **settings}
    with _original(store, rec, role) as source:
        return dst, normalize_media(source, dst, fps=float(rec[f"{role}_fps"]), **settings, meta=meta), False


@contextmanager
def _original(store: MediaStore, rec: dict, role: str) -> Iterator[Path]:
    """A local path holding the bytes ingestion hashed as `<role>_sha256`.

    A stored copy (`<role>_file`, store-relative) is used as is: DVC versions it. An original read
    in place (`<role>_path`: a local path, or a URL fetched to a temp file for the decoder) is
    re-hashed first, so a file that vanished or changed since ingestion is quarantined instead of
    being normalized under the old hash.
    """
    sha = rec[f"{role}_sha256"]
    if rec.get(f"{role}_file"):
        yield store.root_path / rec[f"{role}_file"]
        return
    where = rec.get(f"{role}_path") or ""
    if not where:
        name = rec.get(f"{role}_rel") or role
        raise RowRejected("missing_file", f"{name}: where the original lives is unknown; re-ingest the batch", name)
    if is_url(where):
        with fetched(where) as (local, digest):
            _same(digest, sha, where)
            yield local
        return
    path = Path(where)
    if not path.is_file():
        raise RowRejected("missing_file", f"{path.name} vanished since ingestion ({path})", where)
    _same(sha256_file(path), sha, where)
    yield path


def _same(digest: str, sha: str, where: str) -> None:
    if digest != sha:
        raise RowRejected(
            CHANGED_REASON, f"{where} changed since ingestion (sha256 {digest[:16]}, ingested {sha[:16]})", where
        )


def _row(batch: str, rec: dict, clips: dict, store: MediaStore) -> dict:
    (src_clip, src_h), (tgt_clip, tgt_h) = clips["src"], clips["tgt"]
    src_shape = (src_h["frames"], src_h["height"], src_h["width"])
    tgt_shape = (tgt_h["frames"], tgt_h["height"], tgt_h["width"])
    if src_shape != tgt_shape:
        raise RowRejected(
            "size_mismatch",
            f"normalized source {'x'.join(map(str, src_shape))} != target {'x'.join(map(str, tgt_shape))}",
        )
    return {
        "batch": batch,
        "pair_id": rec["pair_id"],
        "row": int(rec["row"]),
        "prompt": rec["prompt"],
        "media": rec["media"],
        "src_clip": store.rel(src_clip),
        "tgt_clip": store.rel(tgt_clip),
        "ref_file": rec["ref_file"],
        "frames": src_h["frames"],
        "height": src_h["height"],
        "width": src_h["width"],
        "fps": src_h["fps"],
        "src_clip_sha256": sha256_file(src_clip),
        "tgt_clip_sha256": sha256_file(tgt_clip),
        "src_sha256": rec["src_sha256"],
        "tgt_sha256": rec["tgt_sha256"],
        "ref_sha256": rec["ref_sha256"],
    }


def _clip_matches(path: Path, source_sha: str, settings: dict) -> bool:
    """Reuse a clip only if it was made from the same bytes with the same settings and normalizer."""
    try:
        header = clip_header(path)
    except Exception:  # a corrupt clip is simply rebuilt
        return False
    if header.get("normalizer") != NORMALIZER_VERSION:
        return False
    return header.get("source_sha256") == source_sha and all(header.get(k) == v for k, v in settings.items())
