"""Content hashes and atomic writes: every output is whole or absent, and named by what it holds."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20
UMASK = os.umask(0)  # the process's umask, read once (reading it means setting it)
os.umask(UMASK)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, streamed so large videos don't fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def md5_file(path: str | os.PathLike) -> str:
    """Hex md5 of a file's bytes, streamed: what DVC and lakeFS (S3 ETags) name a file by."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it is renamed onto `target`, on error removed.

    The temp file keeps the target's suffix so libraries that pick a format by extension
    (PyAV, Pillow, pandas) still do the right thing.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=suffix or target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~UMASK)  # mkstemp makes 0600; outputs are shared like any file
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(target, text.encode("utf-8"))


def remove_stale(folder: Path, kept: set[Path], patterns: tuple[str, ...] | None = None) -> None:
    """Delete files an asset wrote on an earlier run but no longer produces (only inside its own folder).

    With `patterns` (globs such as "shard-*.zip"), only files matching one are candidates: what the
    asset itself names that way; anything else in the folder is left alone.
    """
    if not folder.is_dir():
        return
    if patterns is None:
        candidates = set(folder.iterdir())
    else:
        candidates = {p for pattern in patterns for p in folder.glob(pattern) if p.is_file()}
    for stale in candidates - kept:
        stale.unlink()


def save_image_atomic(image, target: str | os.PathLike, quality: int = 85) -> Path:
    """Save a PIL image as JPEG (temp file, then rename), so readers never see half an image."""
    with atomic_path(target) as tmp:
        image.save(tmp, format="JPEG", quality=quality)
    return Path(target)
