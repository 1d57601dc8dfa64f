"""Many small per-pair files in a few shard files, each member readable by name without unpacking.

Why: a batch used to leave a few files per pair (clips, masks), and DVC, git status and every
file system walk cost grows with the file count. A shard is an uncompressed ZIP of the member
files exactly as they were (a `.kclip`, itself a stored ZIP, is one member; a mask `.npz` another):

- random access: the central directory gives each member's offset, and a stored member is a byte
  range of the shard, so reading one frame of one clip reads that frame, not the shard;
- any tool opens it (`unzip -l shard-00000.zip`), and a member's sha256 is the sha256 of the bytes
  the per-pair file had, so every `*_sha256` column keeps its meaning;
- deterministic: members sorted by name, fixed dates and permissions, so the same members give a
  byte-identical shard (and the same DVC md5) on any machine;
- written to a temp file and renamed: a reader never sees half a shard.

A table refers to a member as `<shard path>#<member name>` (the shard path relative to the data
repo, like any path in a table). Every reader here also takes a plain path, so old batches, tests
and other callers keep working: `open_member`, `read_bytes`, `exists`, `sha256`, `members`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import shutil
import struct
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from kiwi_platform.lib.files import atomic_path, remove_stale
from kiwi_platform.lib.zip_member import member

SEP = "#"
PREFIX = "shard-"
SUFFIX = ".zip"
MAX_BYTES = 2 << 30  # a shard stops growing at 2 GiB: DVC moves whole files, so keep them moderate
# ...and at 16,384 members: every reader loads a shard's directory once (about 80 bytes a member), and
# ZIP64's 65,535-entry switch stays far away. At real sizes the byte limit cuts first (a 720p clip is
# ~10 MB); at the tiny size the count does, and 10,000 pairs still fit in two clip shards.
MAX_MEMBERS = 16384
_MARK = SUFFIX + SEP
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # ZIP local file header, 30 bytes


def member_ref(shard: str | os.PathLike, member: str) -> str:
    """The reference a table stores for `member` of `shard` (a relative or absolute shard path)."""
    return f"{os.fspath(shard)}{SEP}{member}"


def split(path: str | os.PathLike) -> tuple[Path, str] | None:
    """(shard file, member) for a shard reference, None for a plain path (an existing file wins)."""
    text = os.fspath(path)
    at = text.find(_MARK)
    if at < 0 or os.path.lexists(text):
        return None
    return Path(text[: at + len(SUFFIX)]), text[at + len(_MARK) :]


def holder(path: str | os.PathLike) -> Path:
    """The file that holds the bytes: the shard of a reference, the path itself otherwise."""
    loc = split(path)
    return loc[0] if loc else Path(path)


@functools.lru_cache(maxsize=64)
def _directory(shard: str, inode: int, mtime_ns: int, size: int) -> dict[str, tuple[int, int, int]]:
    """name -> (local header offset, size, compression) of a shard, cached while the file is unchanged."""
    with zipfile.ZipFile(shard) as zf:
        return {i.filename: (i.header_offset, i.file_size, i.compress_type) for i in zf.infolist()}


def _listing(shard: Path) -> dict[str, tuple[int, int, int]]:
    st = os.stat(shard)
    return _directory(os.fspath(shard), st.st_ino, st.st_mtime_ns, st.st_size)


def members(shard: str | os.PathLike) -> list[str]:
    """Member names of a shard, in stored (sorted) order."""
    return list(_listing(Path(shard)))


class _Window(io.RawIOBase):
    """A read-only, seekable view of bytes [start, start + size) of an open file."""

    def __init__(self, fh: BinaryIO, start: int, size: int) -> None:
        super().__init__()
        self._fh, self._start, self._size, self._pos = fh, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        self._fh.seek(self._start + self._pos)
        got = self._fh.readinto(memoryview(buffer)[:want])
        self._pos += got
        return got


@contextlib.contextmanager
def open_member(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A seekable binary file of a shard member (or of a plain file), closed on exit.

    A missing shard or member raises FileNotFoundError naming it.
    """
    loc = split(path)
    if loc is None:
        with open(path, "rb") as fh:
            yield fh
        return
    shard, member = loc
    listing = _listing(shard)
    if member not in listing:
        raise FileNotFoundError(2, f"no member {member!r} in shard", os.fspath(shard))
    offset, size, method = listing[member]
    if method != zipfile.ZIP_STORED:
        raise ValueError(f"{shard}: member {member!r} is compressed; shards store members as they are")
    with open(shard, "rb") as fh:
        fh.seek(offset)
        head = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
        if head[0] != b"PK\x03\x04":
            raise ValueError(f"{shard}: bad local header for member {member!r}")
        start = offset + _LOCAL_HEADER.size + head[-2] + head[-1]  # + name length + extra length
        with io.BufferedReader(_Window(fh, start, size), buffer_size=1 << 16) as view:
            yield view


def read_bytes(path: str | os.PathLike) -> bytes:
    with open_member(path) as fh:
        return fh.read()


def exists(path: str | os.PathLike) -> bool:
    """Is there a plain file, or a shard holding this member, at `path`?"""
    loc = split(path)
    if loc is None:
        return os.path.isfile(path)
    try:
        return loc[1] in _listing(loc[0])
    except (OSError, zipfile.BadZipFile):
        return False


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a member's bytes (the bytes of the per-pair file), or of a plain file."""
    digest = hashlib.sha256()
    with open_member(path) as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def index(folder: Path) -> dict[str, str]:
    """member name -> reference (absolute) of every member in the shards of `folder`; a broken shard is skipped."""
    found: dict[str, str] = {}
    for shard in sorted(folder.glob(f"{PREFIX}*{SUFFIX}")) if folder.is_dir() else []:
        try:
            names = members(shard)
        except (OSError, zipfile.BadZipFile):
            continue
        found.update((name, member_ref(shard, name)) for name in names if name not in found)
    return found


def _size(source: str | os.PathLike) -> int:
    loc = split(source)
    return os.path.getsize(source) if loc is None else _listing(loc[0])[loc[1]][1]


def write_shards(
    folder: Path, sources: Mapping[str, str | os.PathLike], per_shard: int, max_bytes: int = MAX_BYTES
) -> dict[str, Path]:
    """Pack `sources` (member name -> plain file or shard reference) into `folder/shard-NNNNN.zip`.

    Members go in name order, at most `per_shard` (and about `max_bytes`) per shard. Every shard is
    written to a temp file first; all are renamed into place only once all are complete, so the
    sources may be members of the shards being replaced. Returns member name -> its shard.
    """
    if per_shard < 1:
        raise ValueError("per_shard must be at least 1")
    sizes = {name: _size(sources[name]) for name in sorted(sources)}
    chunks: list[list[str]] = []
    used = 0
    for name, size in sizes.items():
        if not chunks or len(chunks[-1]) >= per_shard or used + size > max_bytes:
            chunks.append([])
            used = 0
        chunks[-1].append(name)
        used += size
    placed: dict[str, Path] = {}
    with contextlib.ExitStack() as stack:
        for number, chunk in enumerate(chunks):
            shard = folder / f"{PREFIX}{number:05d}{SUFFIX}"
            tmp = stack.enter_context(atomic_path(shard))
            with open(tmp, "wb") as raw, zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
                for name in chunk:
                    with open_member(sources[name]) as src, zf.open(member(name, sizes[name]), "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            placed.update((name, shard) for name in chunk)
    return placed


STALE_PATTERNS = (f"{PREFIX}*{SUFFIX}", f".{PREFIX}*{SUFFIX}")  # shards, and temp shards a killed run left
STAGING = ".staging"  # per-row outputs wait here, inside the shard folder, until the driver packs them


def pack_rows(
    rows: list[dict],
    column: str,
    member_of: Callable[[dict], str],
    root: Path,
    folder: Path,
    per_shard: int,
    loose: str,
) -> None:
    """Pack the staged file each row names in `column` (relative to `root`) into `folder`'s shards and
    point the row at its member instead.

    Runs on the driver after every row is back, so shards are written by one process, in member-name
    order, and are the same bytes whichever engine ran the rows. The staging folder, and shards and
    loose per-row files (`loose`, e.g. "*.npz") an earlier run left that this one did not write, are
    removed; other files in the folder are not touched.
    """
    staged = {member_of(row): root / row[column] for row in rows}
    placed = write_shards(folder, staged, per_shard)
    shutil.rmtree(folder / STAGING, ignore_errors=True)
    remove_stale(folder, set(placed.values()), (*STALE_PATTERNS, loose))
    for row in rows:
        member = member_of(row)
        row[column] = member_ref(os.path.relpath(placed[member], root), member)
