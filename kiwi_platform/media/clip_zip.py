"""The ZIP container every clip layout shares: fixed member fields, a canonical header, hashed as written.

Byte-identical output: the same frames and header give the same file, on any day and in any
KIWI_HOME, so a table hash or DVC md5 only changes when the data does. Every member gets a fixed
date (1980-01-01, the earliest ZIP can store), fixed Unix permissions (0644) and creator system;
the header JSON has sorted keys and fixed separators. The file is written to a temp path, hashed
on the way and renamed, so a clip is never read back to learn its sha256 and never seen half-written.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kiwi_platform.lib.files import atomic_path

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # a timestamp would make every write a new version
_ZIP_MODE = 0o100644 << 16  # regular file, rw-r--r--, whatever the umask or platform
HEADER = "meta.json"


def member(name: str) -> zipfile.ZipInfo:
    """A ZIP entry whose every field is fixed, so only the data decides the archive's bytes."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # Unix; ZipInfo picks 0 on Windows
    info.external_attr = _ZIP_MODE
    return info


def header_json(header: dict) -> bytes:
    """The header as stored: sorted keys, fixed separators, ASCII only."""
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class HashingFile:
    """What zipfile needs of a file (write/tell/flush), hashing every byte on the way."""

    def __init__(self, fh) -> None:
        self.fh, self.digest, self.pos = fh, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.digest.update(data)
        self.pos += len(data)
        return self.fh.write(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        self.fh.flush()


@contextmanager
def clip_archive(path: Path) -> Iterator[tuple[zipfile.ZipFile, HashingFile]]:
    """An uncompressed ZIP written atomically to `path`; the file's sha256 is `out.digest` once
    the `with` block has closed it."""
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        out = HashingFile(raw)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
            yield zf, out
