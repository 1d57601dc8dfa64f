"""Check every manifest row and split the manifest into accepted pairs and quarantine records.

Counts in = accepted + quarantined, always: each row ends in exactly one of the two lists.
Files referenced by many rows are hashed and probed once.

Prompts go to a tokenizer, a parquet table and people's terminals: one with a NUL byte or other
control characters (`bad_prompt`) or longer than `MAX_PROMPT_CHARS` (`prompt_too_long`) is
quarantined. A file that exists but cannot be read (permission denied, I/O error) is
`unreadable_file`, not `missing_file`: the fix is chmod or the disk, not finding the file.
"""

from __future__ import annotations

import errno
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kiwi_platform.ingestion.manifest import Manifest, ManifestRow
from kiwi_platform.lib.files import sha256_bytes, sha256_file
from kiwi_platform.lib.quarantine import QuarantineRecord, RowRejected
from kiwi_platform.media.probe import MediaInfo, media_kind, probe_media

MAX_PROMPT_CHARS = 10_000  # an edit instruction, not a document; longer is broken input
_PROMPT_WHITESPACE = {"\t", "\n", "\r"}  # the only control characters a prompt may hold
# OSError numbers that mean "there is no such file here"; any other error reading it is unreadable_file.
_NOT_THERE = {errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP}


@dataclass
class ValidationResult:
    accepted: list[dict] = field(default_factory=list)
    quarantined: list[QuarantineRecord] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.accepted) + len(self.quarantined)


def resolve_inside(base: Path, relative: str) -> Path:
    """Resolve a manifest path; reject absolute paths and anything (symlinks too) leaving `base`."""
    if os.path.isabs(relative) or relative.startswith("~"):
        raise RowRejected(
            "path_escape", f"absolute path {relative!r} is not allowed; paths are relative to the manifest", relative
        )
    base = base.resolve()
    candidate = base / relative
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loop, NUL byte, name too long
        raise RowRejected("missing_file", f"{relative!r} cannot be resolved to a file ({exc})", relative) from None
    if not resolved.is_relative_to(base):
        what = "a symlink that points" if candidate.is_symlink() or _has_symlink(base, relative) else "a path that goes"
        raise RowRejected("path_escape", f"{relative!r} is {what} outside the manifest folder {base}", relative)
    return resolved


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


def _has_symlink(base: Path, relative: str) -> bool:
    current = base
    for part in Path(relative).parts:
        current = current / part
        if current.is_symlink():
            return True
    return False


class _FileFacts:
    """Memoised sha256 + probe per file, so a clip used by 1,000 rows is read once."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[str, MediaInfo]] = {}

    def get(self, path: Path, want_image: bool = False) -> tuple[str, MediaInfo]:
        if path not in self._cache:
            try:
                if not path.exists():
                    raise RowRejected("missing_file", f"{path.name} does not exist", str(path))
                if not path.is_file():
                    raise RowRejected("not_media", f"{path} is not a regular file", str(path))
                with open(path, "rb") as fh:  # permission denied shows here, before any decoder guesses
                    fh.read(1)
                info = probe_media(path)
                self._cache[path] = (sha256_file(path), info)
            except OSError as exc:  # ENAMETOOLONG, EACCES, EIO...: the row is unusable, the batch goes on
                reason = "missing_file" if exc.errno in _NOT_THERE else "unreadable_file"
                raise RowRejected(reason, f"{path.name} cannot be read ({exc.strerror or exc})", str(path)) from None
        digest, info = self._cache[path]
        if want_image and info.kind != "image":
            raise RowRejected(
                "unreadable_image", f"{path.name} is not an image (reference images must be images)", str(path)
            )
        return digest, info


def validate_manifest(
    manifest: Manifest,
    *,
    min_frames: int,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationResult:
    """Quarantine unusable rows with a reason; return probed, hashed facts for the rest."""
    result = ValidationResult()
    facts = _FileFacts()
    seen_paths: dict[tuple, int] = {}
    seen_content: dict[tuple, int] = {}
    for done, row in enumerate(manifest.rows, start=1):
        try:
            result.accepted.append(_check_row(manifest, row, facts, seen_paths, seen_content, min_frames=min_frames))
        except RowRejected as rej:
            result.quarantined.append(
                QuarantineRecord(row=row.row, reason=rej.reason, message=rej.message, path=rej.path)
            )
        if progress:
            progress(done, len(manifest.rows))
    return result


def _check_row(
    manifest: Manifest,
    row: ManifestRow,
    facts: _FileFacts,
    seen_paths: dict[tuple, int],
    seen_content: dict[tuple, int],
    *,
    min_frames: int,
) -> dict:
    for column in manifest.missing_columns:
        raise RowRejected("missing_column", f"the manifest has no {column!r} column")
    if row.prompt is None or not row.prompt.strip():
        raise RowRejected("empty_prompt", "the prompt is empty")
    check_prompt(row.prompt.strip())
    for column, value in (("src_video", row.src), ("tgt_video", row.tgt)):
        if value is None:
            raise RowRejected("missing_column", f"{column} is empty in this row")
    prompt = row.prompt.strip()
    path_key = (prompt, row.src, row.tgt, row.ref)
    if path_key in seen_paths:
        raise RowRejected("duplicate_row", f"repeats row {seen_paths[path_key]}")
    seen_paths[path_key] = row.row

    base = manifest.base_dir
    src_path, tgt_path = resolve_inside(base, row.src), resolve_inside(base, row.tgt)
    ref_path = resolve_inside(base, row.ref) if row.ref else None
    src_sha, src = facts.get(src_path)
    tgt_sha, tgt = facts.get(tgt_path)
    ref_sha, ref = facts.get(ref_path, want_image=True) if ref_path else ("", None)

    if src.kind != tgt.kind:
        raise RowRejected("kind_mismatch", f"source is a {src.kind} but target is a {tgt.kind}", str(tgt_path))
    if src.kind == "video":
        for info, path in ((src, src_path), (tgt, tgt_path)):
            if info.frames < min_frames:
                raise RowRejected(
                    "too_few_frames", f"{path.name} has {info.frames} frames, {min_frames} needed", str(path)
                )
    if (src.width, src.height) != (tgt.width, tgt.height):
        raise RowRejected(
            "size_mismatch", f"source is {src.width}x{src.height}, target is {tgt.width}x{tgt.height}", str(tgt_path)
        )
    if src.frames != tgt.frames:
        raise RowRejected("frame_count_mismatch", f"source has {src.frames} frames, target {tgt.frames}", str(tgt_path))

    content_key = (prompt, src_sha, tgt_sha, ref_sha)
    if content_key in seen_content:
        raise RowRejected("duplicate_row", f"same prompt and file contents as row {seen_content[content_key]}")
    seen_content[content_key] = row.row

    pair_id = sha256_bytes(f"{src_sha}:{tgt_sha}:{ref_sha}:{prompt}".encode())[:16]
    record = {
        "pair_id": pair_id,
        "row": row.row,
        "prompt": prompt,
        "media": src.kind,
        "src_rel": row.src,
        "tgt_rel": row.tgt,
        "ref_rel": row.ref or "",
        "src_path": str(src_path),
        "tgt_path": str(tgt_path),
        "ref_path": str(ref_path) if ref_path else "",
        "src_sha256": src_sha,
        "tgt_sha256": tgt_sha,
        "ref_sha256": ref_sha,
        **src.to_dict("src_"),
        **tgt.to_dict("tgt_"),
        "ref_width": ref.width if ref else 0,
        "ref_height": ref.height if ref else 0,
    }
    return record


__all__ = ["ValidationResult", "validate_manifest", "resolve_inside", "media_kind"]
