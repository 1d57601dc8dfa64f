"""Read an upstream Kiwi-Edit manifest (`prompt, src_video, tgt_video[, ref_image]`).

Paths are relative to the manifest's folder. A manifest that cannot be read at all is a user
error (one line, non-zero exit); everything row-level is left to validation, which quarantines.
So a single huge cell (Python's csv refuses fields over 128 KiB by default) must not fail the
file: the field limit is lifted and validation quarantines the row (`prompt_too_long`). A
header naming a column twice is refused, since either reading would silently drop one column.
A path that is not a regular file is named for what it is (a FIFO would block a reader forever).
"""

from __future__ import annotations

import csv
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.files import sha256_bytes

REQUIRED_COLUMNS = ("prompt", "src_video", "tgt_video")
OPTIONAL_COLUMNS = ("ref_image",)
# Process-wide and only ever raised to this one value, so concurrent readers never race on it.
_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class ManifestRow:
    row: int  # 1-based data row (header excluded), the number users see in quarantine reports
    prompt: str | None
    src: str | None
    tgt: str | None
    ref: str | None


@dataclass(frozen=True)
class Manifest:
    path: Path
    sha256: str
    columns: tuple[str, ...]
    rows: tuple[ManifestRow, ...]
    repaired_rows: int = 0  # rows whose unquoted commas in the prompt were re-joined

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def missing_columns(self) -> tuple[str, ...]:
        return tuple(c for c in REQUIRED_COLUMNS if c not in self.columns)


def read_manifest(path: Path) -> Manifest:
    """Parse the CSV; raises KiwiUserError when the file itself is unusable."""
    path = Path(path).expanduser().resolve()
    _require_regular_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KiwiUserError(
            f"manifest {path} cannot be read ({exc.strerror or exc})", code="manifest_unreadable"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise KiwiUserError(f"manifest {path} is not UTF-8 text", code="manifest_unreadable") from None
    csv.field_size_limit(_FIELD_LIMIT)  # the whole file is in memory already; the limit protects nothing
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise KiwiUserError(f"manifest {path} is not valid CSV: {exc}", code="manifest_unreadable") from None
    header = tuple(name.strip() for name in records[0]) if records else ()
    if not header or not any(col in header for col in REQUIRED_COLUMNS + OPTIONAL_COLUMNS):
        raise KiwiUserError(
            f"manifest {path} has no recognised header (expected columns {', '.join(REQUIRED_COLUMNS)}[, ref_image])",
            code="manifest_unreadable",
        )
    _refuse_repeated_columns(path, header)
    rows, repaired = [], 0
    for index, fields in enumerate(records[1:], start=1):
        if not any(f.strip() for f in fields):
            continue  # blank line, not a row
        if len(fields) > len(header) and "prompt" in header:
            fields, repaired = _rejoin_prompt(fields, header), repaired + 1
        clean = dict(zip(header, fields))
        rows.append(
            ManifestRow(
                row=index,
                prompt=clean.get("prompt"),
                src=_cell(clean.get("src_video")),
                tgt=_cell(clean.get("tgt_video")),
                ref=_cell(clean.get("ref_image")),
            )
        )
    return Manifest(path=path, sha256=sha256_bytes(raw), columns=header, rows=tuple(rows), repaired_rows=repaired)


_FILE_TYPES = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _require_regular_file(path: Path) -> None:
    """One line saying what the path is when it is not a CSV file we can read."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise KiwiUserError(f"manifest {path} does not exist", code="manifest_missing") from None
    except OSError as exc:
        raise KiwiUserError(
            f"manifest {path} cannot be read ({exc.strerror or exc})", code="manifest_unreadable"
        ) from None
    if stat.S_ISDIR(mode):
        raise KiwiUserError(f"manifest {path} is a folder; pass the CSV file inside it", code="manifest_missing")
    if not stat.S_ISREG(mode):
        what = _FILE_TYPES.get(stat.S_IFMT(mode), "a special file")
        raise KiwiUserError(
            f"manifest {path} is {what}, not a CSV file; pass a regular file", code="manifest_unreadable"
        )


def _refuse_repeated_columns(path: Path, header: tuple[str, ...]) -> None:
    """A column we read that appears twice is ambiguous: say which, and where, and stop."""
    for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
        positions = [i + 1 for i, col in enumerate(header) if col == name]
        if len(positions) > 1:
            raise KiwiUserError(
                f"manifest {path} names column {name!r} more than once (columns "
                f"{', '.join(map(str, positions))}); keep one",
                code="manifest_unreadable",
            )


def _rejoin_prompt(fields: list[str], header: tuple[str, ...]) -> list[str]:
    """Upstream manifests leave prompts with commas unquoted; the other columns are paths without
    commas, so the surplus fields belong to the prompt. Re-join them at the prompt's position."""
    at = header.index("prompt")
    surplus = len(fields) - len(header)
    return fields[:at] + [",".join(fields[at : at + surplus + 1])] + fields[at + surplus + 1 :]


def _cell(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None
