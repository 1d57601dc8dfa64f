"""What ingestion learns about one media file (sha256 + probe), remembered and fetched ahead on the engine.

Why ahead: reading, hashing and probing the files is the whole cost of validating a row (the rest
is string checks), and for remote originals it is mostly waiting on the network. The rows'
files are probed a window at a time through `kiwi_platform.engine.stream_rows` (in this process,
on a local Ray or on a cluster, as every per-row stage), and the ordered checks (duplicates,
counts) then read the remembered facts. A file's failure (missing, unreadable, not media) is
remembered as well and raised again for every row that names it, so quarantine records are those
of the sequential path, whatever probed the file. Two exceptions, both probed again here when a
row needs them: a local file a Ray worker found missing or unreadable (the worker may not see the
driver's disk; a whole batch must not be quarantined for that), and any failure that is not a
row's fault (network, decoder), which then surfaces in row order exactly as it did before.
"""

from __future__ import annotations

import errno
import os
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from kiwi_platform.engine import EngineSettings, stream_rows
from kiwi_platform.ingestion.paths import resolve_media_path
from kiwi_platform.ingestion.remote import fetched, is_url, join_url
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.lib.quarantine import RowRejected
from kiwi_platform.media.probe import MediaInfo, probe_media

FILE_CACHE_SIZE = 4096  # probed files remembered at once (LRU); a file seen again later is re-probed
# OSError numbers that mean "there is no such file here"; any other error reading it is unreadable_file.
_NOT_THERE = {errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP}

Facts = tuple[str, MediaInfo]


def locate(base: Path | str, cell: str) -> Path | str:
    """Where a media cell points: a URL (str) or a local file (Path); RowRejected for path_escape."""
    if is_url(cell):
        return cell
    if isinstance(base, str) and not os.path.isabs(cell):
        if cell.startswith("~"):
            raise RowRejected("path_escape", f"{cell!r} starts with '~', which is not expanded", cell)
        return join_url(base, cell)
    return resolve_media_path(base if isinstance(base, Path) else Path("/"), cell)


def remote_facts(url: str) -> Facts:
    with fetched(url) as (local, digest):
        try:
            return digest, probe_media(local)
        except RowRejected as rej:
            raise RowRejected(rej.reason, rej.message.replace(str(local), url), url) from None


def local_facts(path: Path) -> Facts:
    try:
        if not path.exists():
            raise RowRejected("missing_file", f"{path.name} does not exist")
        if not path.is_file():
            raise RowRejected("not_media", f"{path.name} is not a regular file")
        with open(path, "rb") as fh:  # permission denied shows here, before any decoder guesses
            fh.read(1)
        info = probe_media(path)
        return sha256_file(path), info
    except OSError as exc:  # ENAMETOOLONG, EACCES, EIO...: the row is unusable, the batch goes on
        reason = "missing_file" if exc.errno in _NOT_THERE else "unreadable_file"
        raise RowRejected(reason, f"{path.name} cannot be read ({exc.strerror or exc})") from None


def probe_file(path: Path | str) -> Facts:
    """One file's facts, or RowRejected for a file no row can use."""
    return remote_facts(path) if isinstance(path, str) else local_facts(path)


def probe_ahead(path: Path | str) -> Facts | None:
    """`probe_file` for the engine (module-level, so it pickles to Ray workers); None for any other
    failure (a network error, a decoder's surprise), which is then met again in row order, where
    the sequential path would have met it."""
    try:
        return probe_file(path)
    except RowRejected:
        raise
    except Exception:  # noqa: BLE001 - not decided here: the row that needs the file decides
        return None


# failures a worker may see only because it cannot reach the driver's disk: checked again here
_WORKER_BLIND = {"missing_file", "unreadable_file"}


class FileFacts:
    """Memoised sha256 + probe per file (LRU-bounded), so a clip used by 1,000 rows is read once."""

    def __init__(self, size: int = FILE_CACHE_SIZE) -> None:
        self._cache: OrderedDict[Path | str, Facts | RowRejected] = OrderedDict()
        self._size = size

    def get(self, path: Path | str, shown: str, want_image: bool = False) -> Facts:
        try:
            digest, info = self._get(path)
        except RowRejected as rej:  # name the file as the tables do, not by this machine's location
            raise RowRejected(rej.reason, rej.message.replace(str(path), shown), shown) from None
        if want_image and info.kind != "image":
            raise RowRejected(
                "unreadable_image",
                f"{PurePosixPath(str(path)).name} is not an image (reference images must be images)",
                shown,
            )
        return digest, info

    def prefetch(self, paths: Iterable[Path | str], engine: EngineSettings) -> int:
        """Probe the files not remembered yet on the engine, in order; returns how many were probed.
        Call it with at most `size` files (a window of rows), or the first would be forgotten."""
        todo = []
        for path in dict.fromkeys(paths):
            if path in self._cache:
                self._cache.move_to_end(path)  # needed again in this window: not the next to go
            else:
                todo.append(path)
        remote = engine.backend_for(len(todo)) == "ray"
        for path, outcome in zip(todo, stream_rows(probe_ahead, todo, settings=engine, rejects=(RowRejected,))):
            if outcome.ok:
                if outcome.value is not None:
                    self._put(path, outcome.value)
            elif not (remote and isinstance(path, Path) and outcome.rejection.reason in _WORKER_BLIND):
                r = outcome.rejection
                self._put(path, RowRejected(r.reason, r.message, r.path))
        return len(todo)

    def _put(self, path: Path | str, facts: Facts | RowRejected) -> None:
        self._cache[path] = facts
        self._cache.move_to_end(path)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)

    def _get(self, path: Path | str) -> Facts:
        if path in self._cache:
            self._cache.move_to_end(path)
            facts = self._cache[path]
        else:
            try:
                facts = probe_file(path)
            except RowRejected as rej:
                facts = rej
            self._put(path, facts)
        if isinstance(facts, RowRejected):
            raise RowRejected(facts.reason, facts.message, facts.path)
        return facts
