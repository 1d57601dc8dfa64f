"""The `normalized_clips` table: every accepted pair decoded, sampled and resized into clip files.

Raw media recorded by reference are read where they are (a URL through a temp copy that is
deleted after use) and re-hashed first: a changed or vanished original is quarantined.

Clips are named by source hash and settings, so a re-run reuses a clip made from the same bytes
with the same settings and rebuilds a corrupt or outdated one (including one made by an older
normalizer version). Clips are byte-reproducible, so a rebuild gives the same hash. They are
stored as members of a few shard files (docs/shards.md), not one file per clip, and the table
refers to each as `<shard>#<clip name>`; a reused clip is read from the shard that held it.

A local original, or one copied into the batch, gets a reference clip instead of a copy
(`reference_originals`, on by default; `media/clip_reference.py`): its pixels are not stored a
second time. That includes originals above the area cap (`reference_resized`, on by default),
whose readers then decode and resize them on every read.

Clip builds run through `kiwi_platform.engine.stream_rows` (this process or Ray workers, which
need the batch folder on a shared file system); planning and packing stay in the driver, so the
shards are the same bytes whichever engine ran. The driver keeps per pair only the raw columns
the table needs and per clip the four header fields the rows read (`_KEPT`), not the whole raw
record and header: at 10,000 pairs that was most of the stage's growth with N.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kiwi_platform.engine import EngineSettings, Rejection, stream_rows
from kiwi_platform.ingestion.clip_reuse import References, clip_sizes, reusable_header
from kiwi_platform.ingestion.origins import original_bytes, with_source_paths
from kiwi_platform.lib import shards
from kiwi_platform.lib.batch_origin import batch_dir_of
from kiwi_platform.lib.files import remove_stale
from kiwi_platform.lib.quarantine import QuarantineRecord, RowRejected
from kiwi_platform.media.clips import SUFFIX
from kiwi_platform.media.normalize import normalize_media
from kiwi_platform.resources.store import MediaStore

CLIPS_PER_SHARD = shards.MAX_MEMBERS
_KEPT = ("frames", "height", "width", "fps", "sha256")  # header fields the rows and packing read
# raw columns the plan and the rows read (`with_source_paths` adds `<role>_path`)
_RAW = ("pair_id", "row", "prompt", "media", "ref_file", "ref_sha256") + tuple(
    f"{role}_{f}" for role in ("src", "tgt") for f in ("sha256", "file", "path", "rel", "fps")
)
STAGING = shards.STAGING  # new clips wait here, inside the asset's folder, until they are packed
STALE_PATTERNS = (*shards.STALE_PATTERNS, f"*{SUFFIX}")  # shards, and loose clips of the layout before shards

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


@dataclass(frozen=True)
class NormalizeClip:
    """One clip to build -> its header; the clip is written to `staging/<name>` (the driver packs it).

    Runs through `kiwi_platform.engine.map_rows`, in this process or on a Ray worker, so it holds
    only plain config; a job carries the few fields of its pair that say where the original is.
    A vanished or changed original raises `RowRejected` (a quarantine record upstream).
    """

    root: str  # the store's root: stored copies (`<role>_file`) are relative to it
    staging: str
    settings: tuple[tuple[str, int | str], ...]  # normalize_media's settings (sizes, storage), sorted
    reference_resized: bool = False  # an original that needs a resize gets a reference clip too

    def __call__(self, job: dict) -> dict:
        settings, role, rec = dict(self.settings), job["role"], job["rec"]
        meta = {"source_sha256": rec[f"{role}_sha256"], **clip_sizes(settings)}
        dst = Path(self.staging) / job["name"]
        with original_bytes(Path(self.root), rec, role) as source:
            return normalize_media(
                source,
                dst,
                fps=float(rec[f"{role}_fps"]),
                **settings,
                meta=meta,
                original=job.get("original"),
                reference_resized=self.reference_resized,
            )


def normalize_batch(
    raw: pd.DataFrame,
    store: MediaStore,
    batch: str,
    clip_dir: Path,
    settings: dict,
    progress: Callable[[int, int, int, int], None] | None = None,
    *,
    engine: EngineSettings | None = None,
    log: Callable[[str], None] | None = None,
    reference_originals: bool = True,
    reference_resized: bool = True,
) -> ClipTable:
    """Normalize every row of `raw` into shards in `clip_dir`; `settings` are normalize_media's size settings.

    With `reference_originals`, a local original (or one copied into the batch) gets a reference
    clip instead of a copy of its pixels (`media/clip_reference.py`): one that needs no resize
    always, one that does only with `reference_resized` (its readers then resize it every time).

    The driver plans the batch (which clips the rows need, which an earlier run or an earlier row
    already made), the engine builds each missing clip once (`NormalizeClip`, in this process or
    on Ray workers, into `clip_dir/.staging/`), and the driver packs every clip an accepted row
    uses into `shard-NNNNN.zip` files; the table refers to each as `<shard>#<clip name>`. The
    shards are the same bytes whichever engine built the clips. `progress(done, total, decoded,
    reused)` is called as clips are built; `log` gets the engine line.
    """
    out = ClipTable(table=pd.DataFrame(columns=NORMALIZED_COLUMNS))
    staging = clip_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # what a killed run left
    located = with_source_paths(raw, store.batch_dir(batch))  # originals kept by reference
    located = located[[c for c in _RAW if c in located]].to_dict("records")
    batch_dir = store.batch_dir(batch)
    # a reference clip finds its original from the batch folder holding it (its origin file)
    inside = reference_originals and batch_dir_of(clip_dir / SUFFIX) == batch_dir.absolute()
    where_from = References(str(store.root_path), str(batch_dir) if inside else "", reference_resized)
    headers, jobs, needs = _plan(located, settings, _existing_clips(clip_dir), where_from)
    fn = NormalizeClip(str(store.root_path), str(staging), tuple(sorted(settings.items())), reference_resized)
    out.reused = sum(len(n) for n in needs) - len(jobs)
    engine = engine or EngineSettings()
    if log:
        log(engine.describe(len(jobs)))
    report = (lambda done, total: progress(done, total, done, out.reused)) if progress else None
    failed: dict[str, Rejection] = {}
    for job, outcome in zip(jobs, stream_rows(fn, jobs, settings=engine, rejects=(RowRejected,), progress=report)):
        if outcome.ok:
            headers[job["name"]] = (str(staging / job["name"]), _slim(outcome.value))
        else:
            failed[job["name"]] = outcome.rejection
    out.decoded = len(jobs) - len(failed)
    if progress and not jobs:
        progress(0, 0, 0, out.reused)
    rows = []
    for rec, names in zip(located, needs):
        try:
            for role in ("src", "tgt"):
                if names[role] in failed:  # every pair needing a clip that could not be built
                    rej = failed[names[role]]
                    raise RowRejected(rej.reason, rej.message, rej.path)
            rows.append(_row(batch, rec, {role: (name, headers[name][1]) for role, name in names.items()}))
        except RowRejected as rej:
            out.rejected.append(
                QuarantineRecord(
                    int(rec["row"]), rej.reason, rej.message, rej.path, "normalized_clips", pair_id=rec["pair_id"]
                )
            )
    out.table = pd.DataFrame(_pack(rows, headers, store, clip_dir), columns=NORMALIZED_COLUMNS)
    return out


def _plan(
    records: list[dict], settings: dict, found: dict[str, str], where_from: References
) -> tuple[dict[str, tuple[str, dict]], list[dict], list[dict[str, str]]]:
    """(reusable clips: name -> (where, header), clips to build, each row's clip names by role).

    A clip is named by its source's hash and the settings, so two rows with the same bytes share
    one clip, built once (for the first row needing it); an intact clip an earlier run left is reused.
    """
    headers: dict[str, tuple[str, dict]] = {}
    jobs: dict[str, dict] = {}
    needs = []
    for rec in records:
        names = {}
        for role in ("src", "tgt"):
            sha = rec[f"{role}_sha256"]
            name = names[role] = clip_name(sha, settings)
            if name in headers or name in jobs:
                continue
            where, original = found.get(name), where_from.original(rec, role)
            header = reusable_header(where, sha, settings, original, where_from.resized) if where is not None else None
            if header is not None:
                headers[name] = (where, _slim(header))
                continue
            fields = ("sha256", "file", "path", "rel", "fps")
            rec_fields = {f"{role}_{f}": rec.get(f"{role}_{f}") for f in fields}
            jobs[name] = {"name": name, "role": role, "rec": rec_fields, "original": original}
        needs.append(names)
    return headers, list(jobs.values()), needs


def _pack(rows: list[dict], headers: dict[str, tuple[str, dict]], store: MediaStore, clip_dir: Path) -> list[dict]:
    """Pack the clips the accepted rows use into shards (driver only, member-name order) and point
    the rows at them; leftovers of earlier runs and of this one's staging are removed."""
    used = {row[f"{role}_clip"] for row in rows for role in ("src", "tgt")}
    placed = shards.write_shards(clip_dir, {name: headers[name][0] for name in sorted(used)}, CLIPS_PER_SHARD)
    shutil.rmtree(clip_dir / STAGING, ignore_errors=True)
    remove_stale(clip_dir, set(placed.values()), STALE_PATTERNS)
    digests: dict[str, str] = {}  # a new clip's hash came with it; a reused one is hashed once, in its new shard
    for row in rows:
        for role in ("src", "tgt"):
            name = row[f"{role}_clip"]
            if name not in digests:
                digests[name] = headers[name][1].get("sha256") or shards.sha256(shards.member_ref(placed[name], name))
            row[f"{role}_clip"] = shards.member_ref(store.rel(placed[name]), name)
            row[f"{role}_clip_sha256"] = digests[name]
    return rows


def _slim(header: dict) -> dict:
    """The header fields the driver still needs once a clip is built or found."""
    return {k: header[k] for k in _KEPT if k in header}


def clip_name(sha: str, settings: dict) -> str:
    """A clip's member name: its source's hash and the settings, so equal inputs share one clip."""
    return f"{sha[:20]}-{settings['num_frames']}f-{settings['max_area']}a-{settings['multiple']}m{SUFFIX}"


def _existing_clips(clip_dir: Path) -> dict[str, str]:
    """Clips an earlier run left: shard members, and loose `.kclip` files of the layout before shards."""
    loose = {p.name: str(p) for p in clip_dir.glob(f"*{SUFFIX}")} if clip_dir.is_dir() else {}
    return {**loose, **shards.index(clip_dir)}


def _row(batch: str, rec: dict, clips: dict) -> dict:
    """The table row; `*_clip` hold clip names until the clips are packed (then shard references)."""
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
        "src_clip": src_clip,
        "tgt_clip": tgt_clip,
        "ref_file": rec["ref_file"],
        "frames": src_h["frames"],
        "height": src_h["height"],
        "width": src_h["width"],
        "fps": src_h["fps"],
        "src_clip_sha256": "",
        "tgt_clip_sha256": "",
        "src_sha256": rec["src_sha256"],
        "tgt_sha256": rec["tgt_sha256"],
        "ref_sha256": rec["ref_sha256"],
    }
