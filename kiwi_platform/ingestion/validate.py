"""Check every manifest row and split the manifest into accepted pairs and quarantine records.

Counts in = accepted + quarantined, always: each row ends in exactly one of the two.
Rows stream through (`iter_validated`): what is kept across rows is small per row (a 16-byte
digest per row for duplicate detection) and a bounded cache of recently probed files, so a
clip shared by many adjacent rows is hashed and probed once and memory does not grow with the
files a huge manifest names.

Prompts go to a tokenizer, a parquet table and people's terminals: one with a NUL byte or other
control characters (`bad_prompt`) or longer than `MAX_PROMPT_CHARS` (`prompt_too_long`) is
quarantined. A file that exists but cannot be read (permission denied, I/O error) is
`unreadable_file`, not `missing_file`: the fix is chmod or the disk, not finding the file.
Quarantine records name a path the way the tables do (relative to the base folder), never the
machine's absolute location of a relative path.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kiwi_platform.engine import EngineSettings
from kiwi_platform.ingestion.file_facts import FileFacts, locate
from kiwi_platform.ingestion.manifest import REQUIRED_COLUMNS, Manifest, ManifestRow
from kiwi_platform.ingestion.paths import resolve_inside, stored_name
from kiwi_platform.ingestion.remote import is_url
from kiwi_platform.lib.files import sha256_bytes
from kiwi_platform.lib.quarantine import QuarantineRecord, RowRejected
from kiwi_platform.media.probe import media_kind, probe_image_bytes

MAX_PROMPT_CHARS = 10_000  # an edit instruction, not a document; longer is broken input
WINDOW = 1024  # rows whose files are probed ahead at once (<= FILE_CACHE_SIZE / 3 files per row)
_PROMPT_WHITESPACE = {"\t", "\n", "\r"}  # the only control characters a prompt may hold


@dataclass
class ValidationResult:
    accepted: list[dict] = field(default_factory=list)
    quarantined: list[QuarantineRecord] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.accepted) + len(self.quarantined)


def check_prompt(prompt: str) -> None:
    """Raise RowRejected for a prompt no model or table should receive."""
    for position, char in enumerate(prompt, start=1):
        if char not in _PROMPT_WHITESPACE and unicodedata.category(char) == "Cc":
            name = "a NUL byte" if char == "\0" else f"the control character U+{ord(char):04X}"
            raise RowRejected("bad_prompt", f"the prompt holds {name} at character {position}")
    if len(prompt) > MAX_PROMPT_CHARS:
        lines = prompt.count("\n") + 1
        hint = f" across {lines} lines: an unclosed quote?" if lines > 1 else ""
        raise RowRejected(
            "prompt_too_long", f"the prompt is {len(prompt):,} characters, the limit is {MAX_PROMPT_CHARS:,}{hint}"
        )


class _Seen:
    """Earlier rows by a 16-byte digest of a key: duplicate detection at ~100 bytes per row."""

    def __init__(self) -> None:
        self._rows: dict[bytes, int] = {}

    def first(self, key: tuple, row: int) -> int | None:
        digest = hashlib.blake2b("\x1f".join(map(str, key)).encode(), digest_size=16).digest()
        earlier = self._rows.get(digest)
        if earlier is None:
            self._rows[digest] = row
        return earlier


def iter_validated(
    rows: Iterable[ManifestRow],
    base: Path | str,
    *,
    columns: Iterable[str],
    min_frames: int,
    engine: EngineSettings | None = None,
) -> Iterator[dict | QuarantineRecord]:
    """For each row, in order: its accepted record (a dict) or its QuarantineRecord.

    `base` is a local folder or a URL prefix (`s3://bucket/data`) that relative media paths start from.
    With `engine`, each window of `WINDOW` rows has its files probed there first (file_facts.py);
    without, each file is probed here when a row first needs it. Same records either way.
    """
    missing = tuple(c for c in REQUIRED_COLUMNS if c not in tuple(columns))
    facts = FileFacts()
    state = (facts, _Seen(), _Seen(), _Seen())
    base = str(base).rstrip("/") if is_url(base) else Path(base).resolve()
    for window in _windows(rows, WINDOW):
        if engine is not None:
            facts.prefetch((path for row in window for path in _files(row, base)), engine)
        for row in window:
            try:
                yield _check_row(row, base, missing, state, min_frames=min_frames)
            except RowRejected as rej:
                yield QuarantineRecord(row=row.row, reason=rej.reason, message=rej.message, path=rej.path)


def _windows(rows: Iterable[ManifestRow], size: int) -> Iterator[list[ManifestRow]]:
    window: list[ManifestRow] = []
    for row in rows:
        window.append(row)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def _files(row: ManifestRow, base: Path | str) -> Iterator[Path | str]:
    """The files a row names, where they are (cells that cannot be located are left to `_check_row`)."""
    for cell in (row.src, row.tgt, row.ref):
        if cell:
            try:
                yield locate(base, cell)
            except RowRejected:
                continue


def validate_manifest(
    manifest: Manifest,
    *,
    min_frames: int,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationResult:
    """All rows of an in-memory manifest at once (small manifests and tests; assets stream)."""
    result = ValidationResult()
    items = iter_validated(manifest.rows, manifest.base_dir, columns=manifest.columns, min_frames=min_frames)
    for done, item in enumerate(items, start=1):
        (result.quarantined if isinstance(item, QuarantineRecord) else result.accepted).append(item)
        if progress:
            progress(done, len(manifest.rows))
    return result


def _name(base: Path | str, cell: str) -> str:
    """How the tables name a media cell: a URL as written, else the path relative to the base."""
    if is_url(cell):
        return cell
    if isinstance(base, str):
        return cell if os.path.isabs(cell) else PurePosixPath(os.path.normpath(cell)).as_posix()
    return stored_name(base, cell)


def _check_row(row: ManifestRow, base: Path | str, missing: tuple[str, ...], state: tuple, *, min_frames: int) -> dict:
    facts, seen_paths, seen_content, seen_iids = state
    for column in missing:
        raise RowRejected("missing_column", f"the manifest has no {column!r} column")
    if row.prompt is None or not row.prompt.strip():
        raise RowRejected("empty_prompt", "the prompt is empty")
    check_prompt(row.prompt.strip())
    for column, value in (("src_video", row.src), ("tgt_video", row.tgt)):
        if value is None:
            raise RowRejected("missing_column", f"{column} is empty in this row")
    prompt = row.prompt.strip()
    embedded_sha = sha256_bytes(row.ref_bytes) if row.ref_bytes else ""
    earlier = seen_paths.first((prompt, row.src, row.tgt, row.ref, embedded_sha), row.row)
    if earlier is not None:
        raise RowRejected("duplicate_row", f"repeats row {earlier}")
    if row.iid is not None and (earlier := seen_iids.first((row.iid,), row.row)) is not None:
        raise RowRejected("duplicate_row", f"iid {row.iid!r} was already used by row {earlier}")

    names = {"src": _name(base, row.src), "tgt": _name(base, row.tgt)}
    names["ref"] = _name(base, row.ref) if row.ref else ""
    src_path, tgt_path = locate(base, row.src), locate(base, row.tgt)
    ref_path = locate(base, row.ref) if row.ref else None
    src_sha, src = facts.get(src_path, names["src"])
    tgt_sha, tgt = facts.get(tgt_path, names["tgt"])
    ref_sha, ref_size, ref_suffix, ref_bytes = "", (0, 0), "", 0
    if ref_path:
        ref_sha, ref = facts.get(ref_path, names["ref"], want_image=True)
        ref_size, ref_suffix, ref_bytes = (
            (ref.width, ref.height),
            PurePosixPath(str(ref_path)).suffix.lower(),
            ref.size_bytes,
        )
    elif row.ref_embedded:
        ref_suffix, *ref_size = probe_image_bytes(row.ref_bytes)
        ref_sha, ref_bytes = embedded_sha, len(row.ref_bytes)

    if src.kind != tgt.kind:
        raise RowRejected("kind_mismatch", f"source is a {src.kind} but target is a {tgt.kind}", names["tgt"])
    if src.kind == "video":
        for info, path, role in ((src, src_path, "src"), (tgt, tgt_path, "tgt")):
            if info.frames < min_frames:
                raise RowRejected(
                    "too_few_frames",
                    f"{PurePosixPath(str(path)).name} has {info.frames} frames, {min_frames} needed",
                    names[role],
                )
    if (src.width, src.height) != (tgt.width, tgt.height):
        raise RowRejected(
            "size_mismatch", f"source is {src.width}x{src.height}, target is {tgt.width}x{tgt.height}", names["tgt"]
        )
    if src.frames != tgt.frames:
        raise RowRejected("frame_count_mismatch", f"source has {src.frames} frames, target {tgt.frames}", names["tgt"])

    earlier = seen_content.first((prompt, src_sha, tgt_sha, ref_sha), row.row)
    if earlier is not None:
        raise RowRejected("duplicate_row", f"same prompt and file contents as row {earlier}")

    return {
        "pair_id": row.iid or sha256_bytes(f"{src_sha}:{tgt_sha}:{ref_sha}:{prompt}".encode())[:16],
        "row": row.row,
        "iid": row.iid or "",
        "prompt": prompt,
        "media": src.kind,
        "src_rel": names["src"],
        "tgt_rel": names["tgt"],
        "ref_rel": names["ref"],
        "ref_embedded": ref_path is None and bool(ref_sha),
        "src_sha256": src_sha,
        "tgt_sha256": tgt_sha,
        "ref_sha256": ref_sha,
        **src.to_dict("src_"),
        **tgt.to_dict("tgt_"),
        "ref_width": int(ref_size[0]),
        "ref_height": int(ref_size[1]),
        "ref_size_bytes": int(ref_bytes),
        # transient, not table columns: where to copy each file from (raw_table.RawTableWriter)
        "_sources": {"src": src_path, "tgt": tgt_path, "ref": ref_path or row.ref_bytes},
        "_ref_suffix": ref_suffix,
    }


__all__ = ["ValidationResult", "iter_validated", "validate_manifest", "resolve_inside", "media_kind"]
