"""The ZIP container every clip layout shares: fixed member fields, a canonical header, hashed as written.

Byte-identical output: the same frames and header give the same file, on any day and in any
KIWI_HOME, so a table hash or DVC md5 only changes when the data does. Every member's fields are
fixed (`lib/zip_member.py`, shared with the shards); the header JSON has sorted keys and fixed
separators. The file is written to a temp path, hashed on the way and renamed, so a clip is never
read back to learn its sha256 and never seen half-written.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kiwi_platform.lib.files import atomic_path

HEADER = "meta.json"


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
