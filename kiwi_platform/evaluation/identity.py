"""A checkpoint's identity for caching: a fingerprint of its files' bytes.

Why not the folder path: the same weights copied elsewhere must reuse outputs and judge scores,
and a retrained checkpoint written to the same path must not. Small files (configs, tiny weights)
are hashed whole; files over 64 MiB (the 5B model's shards) contribute their size and the sha256
of their first and last MiB, which changes whenever training changes the weights, and keeps
fingerprinting a 20 GB folder to seconds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from kiwi_platform.lib.files import sha256_file

_WHOLE_LIMIT = 64 << 20
_EDGE = 1 << 20


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    if size <= _WHOLE_LIMIT:
        return sha256_file(path)
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(_EDGE))
        fh.seek(size - _EDGE)
        digest.update(fh.read(_EDGE))
    return "edges:" + digest.hexdigest()


def checkpoint_fingerprint(checkpoint_dir: str | Path) -> str:
    """`ckpt-` + 16 hex chars over (relative path, digest) of every file, hidden files excluded."""
    root = Path(checkpoint_dir)
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\0{_file_digest(path)}\n".encode())
    return "ckpt-" + digest.hexdigest()[:16]
