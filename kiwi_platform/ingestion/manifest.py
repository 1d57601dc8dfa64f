"""Read an upstream Kiwi-Edit manifest (`prompt, src_video, tgt_video[, ref_image][, iid]`).

Paths are relative to the batch's base folder (by default the manifest's folder). The file is
read as a stream: `scan_csv` checks it whole (encoding, CSV syntax, header) and counts its rows
without keeping them, then `iter_csv_rows` yields one row at a time, so a million-row manifest
costs no more memory than a small one. A manifest that cannot be read at all is a user
error (one line, non-zero exit); everything row-level is left to validation, which quarantines.
So a single huge cell (Python's csv refuses fields over 128 KiB by default) must not fail the
file: the field limit is lifted and validation quarantines the row (`prompt_too_long`). A
header naming a column twice is refused, since either reading would silently drop one column.
A path that is not a regular file is named for what it is (a FIFO would block a reader forever).
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.files import sha256_file

REQUIRED_COLUMNS = ("prompt", "src_video", "tgt_video")
OPTIONAL_COLUMNS = ("ref_image", "iid")
# Process-wide and only ever raised to this one value, so concurrent readers never race on it.
_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class ManifestRow:
    row: int  # 1-based data row (header excluded), the number users see in quarantine reports
    prompt: str | None
    src: str | None
    tgt: str | None
    ref: str | None
    iid: str | None = None  # the source's own pair id (RefVIE `iid`); becomes the pair id
    ref_bytes: bytes | None = None  # an embedded reference image (parquet `ref_image_bytes`)
    ref_embedded: bool = False  # the source carries references as bytes (None above = a null cell)


@dataclass(frozen=True)
class CsvScan:
    """What one streaming pass over a CSV manifest found: enough to plan, no rows kept."""

    path: Path
    sha256: str
    columns: tuple[str, ...]
    rows: int
    repaired_rows: int


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
    """Parse the whole CSV into memory (small manifests, tests); raises KiwiUserError when unusable."""
    scan = scan_csv(path)
    rows = tuple(iter_csv_rows(scan))
    return Manifest(
        path=scan.path, sha256=scan.sha256, columns=scan.columns, rows=rows, repaired_rows=scan.repaired_rows
    )


def scan_csv(path: Path) -> CsvScan:
    """Check a CSV manifest from end to end and count its rows, holding one row at a time."""
    path = Path(path).expanduser().resolve()
    _require_regular_file(path)
    header: tuple[str, ...] | None = None
    rows = repaired = 0
    for _index, fields in _records(path):
        if header is None:
            header = _check_header(path, fields)
            continue
        rows += 1
        repaired += len(fields) > len(header) and "prompt" in header
    if header is None:
        _check_header(path, [])
    return CsvScan(path, _sha256(path), header, rows, repaired)


def iter_csv_rows(scan: CsvScan) -> Iterator[ManifestRow]:
    """The data rows of a scanned manifest, one at a time (blank lines skipped, numbers kept)."""
    header = scan.columns
    records = _records(scan.path)
    next(records, None)  # the header
    for index, fields in records:
        if len(fields) > len(header) and "prompt" in header:
            fields = _rejoin_prompt(fields, header)
        clean = dict(zip(header, fields))
        yield ManifestRow(
            row=index,
            prompt=clean.get("prompt"),
            src=_cell(clean.get("src_video")),
            tgt=_cell(clean.get("tgt_video")),
            ref=_cell(clean.get("ref_image")),
            iid=_cell(clean.get("iid")),
        )


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(data row number, fields) for the header (number 0) and every non-blank row after it."""
    csv.field_size_limit(_FIELD_LIMIT)  # one huge cell is a row problem (prompt_too_long), not a file one
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for index, fields in enumerate(csv.reader(fh)):
                if index and not any(f.strip() for f in fields):
                    continue  # blank line, not a row
                yield index, fields
    except UnicodeDecodeError:
        raise KiwiUserError(f"manifest {path} is not UTF-8 text", code="manifest_unreadable") from None
    except csv.Error as exc:
        raise KiwiUserError(f"manifest {path} is not valid CSV: {exc}", code="manifest_unreadable") from None
    except OSError as exc:
        raise KiwiUserError(
            f"manifest {path} cannot be read ({exc.strerror or exc})", code="manifest_unreadable"
        ) from None


def _check_header(path: Path, fields: list[str]) -> tuple[str, ...]:
    header = tuple(name.strip() for name in fields)
    if not header or not any(col in header for col in REQUIRED_COLUMNS + OPTIONAL_COLUMNS):
        raise KiwiUserError(
            f"manifest {path} has no recognised header (expected columns {', '.join(REQUIRED_COLUMNS)}[, ref_image])",
            code="manifest_unreadable",
        )
    _refuse_repeated_columns(path, header)
    return header


def _sha256(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise KiwiUserError(
            f"manifest {path} cannot be read ({exc.strerror or exc})", code="manifest_unreadable"
        ) from None


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
