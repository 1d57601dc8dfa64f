"""A file in a model's lineage, the hash recorded for it, and re-hashing it for `--verify`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kiwi_platform.ingestion.remote import is_url, sha256_url
from kiwi_platform.lib.files import md5_file, sha256_file
from kiwi_platform.lib.quarantine import RowRejected


@dataclass
class FileRef:
    path: str
    sha256: str
    role: str
    status: str = "unchecked"  # unchecked | ok | mismatch | missing
    md5: str = ""  # DVC's md5 where no sha256 was recorded (a stage dependency)


def verify(ref: FileRef) -> None:
    """Re-hash `ref` (sha256 when recorded, else DVC's md5) and set its status; a URL (raw media
    kept by reference on S3 or another fsspec store) is re-hashed in place."""
    if is_url(ref.path):
        try:
            ref.status = "ok" if sha256_url(ref.path)[0] == ref.sha256 else "mismatch"
        except RowRejected:
            ref.status = "missing"
        return
    path = Path(ref.path)
    if not path.exists():
        ref.status = "missing"
    elif ref.sha256:
        ref.status = "ok" if sha256_file(path) == ref.sha256 else "mismatch"
    elif ref.md5 and path.is_file():
        ref.status = "ok" if md5_file(path) == ref.md5 else "mismatch"
    else:
        ref.status = "unchecked"
