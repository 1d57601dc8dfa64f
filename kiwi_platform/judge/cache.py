"""A sqlite cache of judge answers, so re-evaluating a checkpoint costs zero judge calls.

Why sqlite: it is in the standard library, survives restarts, and with WAL journaling several
processes (parallel Dagster steps) can read while one writes. Each thread gets its own connection
(sqlite connections must not be shared across threads mid-statement); writes are single upserts,
so concurrent writers only wait on sqlite's busy timeout.

Keys are tuples of strings; the judge uses (case id, checkpoint id, judge model, rubric hash).
Values are JSON objects.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_cache (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class JudgeCache:
    """Persistent key -> JSON store; safe to use from many threads and processes at once."""

    def __init__(self, path: str | os.PathLike, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._initialise()

    def _initialise(self) -> None:
        """Switch to WAL and create the table. Switching the journal mode takes an exclusive lock and
        sqlite does not apply the busy timeout to it, so two processes opening a new cache at the
        same moment can see "database is locked": retry until the busy timeout instead."""
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                conn = self._conn()
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @staticmethod
    def _key(key: Sequence[str]) -> str:
        if isinstance(key, str) or not all(isinstance(part, str) for part in key):
            raise TypeError(f"cache keys are tuples of strings, got {key!r}")
        return json.dumps(list(key), ensure_ascii=False)

    def get(self, key: Sequence[str]) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT value FROM judge_cache WHERE key = ?", (self._key(key),)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: Sequence[str], value: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO judge_cache (key, value, created) VALUES (?, ?, ?)",
            (self._key(key), json.dumps(value, sort_keys=True, ensure_ascii=False), time.time()),
        )

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
