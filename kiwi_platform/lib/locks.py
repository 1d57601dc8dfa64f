"""Inter-process locks on files (fcntl.flock): several `kiwi` processes share one KIWI_HOME.

Why flock: the kernel drops the lock when its holder exits, however it exits (crash, kill -9),
so there is never a stale lock to clean up by hand. The lock file is only a name to lock; it
holds the last holder's pid so that a waiting process can say whom it waits for.

Locks are re-entrant within one process: a command that holds a lock (the ingest of a batch)
can call code that takes it again (the run of that batch) without deadlocking on itself. They
are not thread locks: every thread of the process shares the holding.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from kiwi_platform.errors import KiwiUserError

_POLL_S = 0.1
_depth: dict[str, int] = {}  # lock file -> how many `with` blocks of this process hold it
_guard = threading.Lock()


def holder_pid(path: str | os.PathLike) -> str:
    """The pid the holder wrote into the lock file, or '?' when unknown."""
    try:
        return Path(path).read_text().strip() or "?"
    except OSError:
        return "?"


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike,
    *,
    what: str,
    timeout: float | None = None,
    announce_after: float | None = 2.0,
) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created with its folder if absent) for the `with` block.

    `what` names the protected thing in messages ("the Dagster instance at ..."). A busy lock is
    waited for; after `announce_after` seconds one line says so on stderr (None: routine waits,
    not announced). With a `timeout` (seconds) it gives up with a one-line KiwiUserError naming
    the holder's pid.
    """
    key = os.path.abspath(path)
    with _guard:
        nested = key in _depth
        if nested:
            _depth[key] += 1
    if nested:
        try:
            yield
        finally:
            with _guard:
                _depth[key] -= 1
        return

    Path(key).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _acquire(fd, key, what=what, timeout=timeout, announce_after=announce_after)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        with _guard:
            _depth[key] = 1
        try:
            yield
        finally:
            with _guard:
                del _depth[key]
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _acquire(fd: int, key: str, *, what: str, timeout: float | None, announce_after: float | None) -> None:
    """Poll with LOCK_NB (so that the wait can be announced and bounded), then block if unbounded."""
    started = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - started
        if announce_after is not None and waited >= announce_after:
            sys.stderr.write(f"waiting for another kiwi process (pid {holder_pid(key)}) using {what}\n")
            sys.stderr.flush()
            announce_after = None
        if timeout is not None and waited >= timeout:
            raise KiwiUserError(
                f"gave up after {timeout:.0f} s waiting for another kiwi process (pid {holder_pid(key)}) "
                f"using {what}; try again when it has finished (lock file {key})",
                code="lock_timeout",
            )
        if timeout is None and announce_after is None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # nothing left to say or to bound: let the kernel wake us
            return
        time.sleep(_POLL_S)
