"""Per-row work in input order: `map_rows(fn, rows)` in this process or on Ray Data.

Why one entry point: every per-pair stage (grounding, references, later QC and features) has the
same shape (a pure-ish function of one row, some rows rejected with a reason) and the same
contract (rows in = accepted + quarantined, results in input order, same bytes whatever ran
them). The stage says what to do with one row; `EngineSettings` says where it runs, so moving a
stage from one process to a Ray cluster is configuration, not code.

A row function raising one of `rejects` becomes a `Rejection` (reason, message, score) in that
row's slot: never dropped, never duplicated. Any other exception is a bug and fails the batch.
The function travels to Ray workers by pickle, so it must be a module-level function or an
instance of a module-level class whose fields are plain config (backends named, not built).
An optional `setup()` method on it runs once per copy before its first row: once per actor in
actor-pool mode (`ActorPool`, for GPU stages that load a model), once per task otherwise.

Memory: the in-process loop reads `rows` one index at a time and `stream_rows` yields each
outcome as it is made, so a stage that writes or slims each outcome as it arrives holds a window
of rows, not the batch (`engine.frames` reads a DataFrame's rows that way and builds the result
table from the columns a stage adds). Every `TRIM_EVERY` rows
the loop hands freed heap pages back to the OS (`release_heap`): decoded frames are freed each
row, but glibc keeps the pages they lived in when a small long-lived object sits beside them, and
that alone grew a stage's RSS by ~25 KB per row (benchmarks/measured/memory_2026-12-02.md).
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Progress = Callable[[int, int], None]
TRIM_EVERY = 64  # rows between two `release_heap` calls in the in-process loop (a trim took 0.2 ms)
EngineName = Literal["auto", "local", "ray"]


@dataclass(frozen=True)
class EngineSettings:
    """Where per-row work runs; built by `EngineResource` (see docs/ray.md). Picklable, no Dagster."""

    engine: EngineName = "local"
    ray_address: str = ""  # KIWI_RAY_ADDRESS: "host:port" or "ray://host:port"; "" = local Ray
    ray_min_rows: int = 64  # auto: use Ray for batches of at least this many rows
    num_cpus: int = 0  # local Ray size; 0 = every core of this machine
    rows_per_task: int = 1  # rows per Ray task at least: the unit a crashed worker's retry redoes
    # a batch runs as at most this many Ray tasks (more rows per task beyond it): Ray Data's driver
    # keeps ~7 KB per task until the batch ends, which grew grounding's RSS with the batch
    max_tasks: int = 1024
    max_retries: int = 3  # Ray task retries after a worker process dies (system failures only)
    probe_s: float = 5.0  # auto + local Ray: time the first rows in process for about this long ...
    ray_worth_s: float = 120.0  # ... and start a local Ray only if the rest would take longer than this
    # ... and a row costs enough that the other cores gain more than a Ray task costs the driver:
    # row x (cores - 1) >= this. Measured on 2 cores: 0.02-0.05 s rows ran 1.7-2.4x slower on a
    # local Ray, 0.2 s rows 1.4x faster (benchmarks/measured/scale_2026-12-02.md)
    ray_task_overhead_s: float = 0.1

    def adaptive(self, n_rows: int) -> bool:
        """auto, no cluster, a large batch: measure the row cost first, start a local Ray only if it pays."""
        return self.engine == "auto" and not self.ray_address and n_rows >= self.ray_min_rows

    def backend_for(self, n_rows: int) -> Literal["local", "ray"]:
        """`local` or `ray` for a batch of `n_rows` (auto = Ray on a cluster address or a large batch)."""
        if self.engine != "auto":
            return self.engine
        return "ray" if self.ray_address or n_rows >= self.ray_min_rows else "local"

    def rows_per_task_for(self, n_rows: int) -> int:
        """Rows per Ray task for a batch of `n_rows`: `rows_per_task`, or more when that would exceed `max_tasks`."""
        return max(1, self.rows_per_task, -(-n_rows // max(1, self.max_tasks)))

    def describe(self, n_rows: int) -> str:
        """One line for the logs: where a batch of `n_rows` runs."""
        if self.backend_for(n_rows) == "local":
            return f"engine: in-process loop ({n_rows} rows)"
        if self.adaptive(n_rows):
            return (
                f"engine: in-process loop ({n_rows} rows); the rest moves to a local Ray if, after "
                f"{self.probe_s:g} s, it would take more than {self.ray_worth_s:g} s and the other cores "
                "would gain more than Ray's per-row cost"
            )
        where = f"Ray cluster at {self.ray_address}" if self.ray_address else "local Ray"
        return f"engine: Ray Data on {where} ({n_rows} rows, {self.rows_per_task_for(n_rows)} per task)"


@dataclass(frozen=True)
class ActorPool:
    """Run the row function in `size` long-lived Ray actors (each calls `fn.setup()` once: load the model).

    `size` 0 = one actor per GPU of the Ray cluster (1 without GPUs); `num_gpus` None = 1 per actor
    when the cluster has a GPU, else 0. The in-process loop ignores the pool (one copy, one load).
    """

    size: int = 1
    num_gpus: float | None = 0.0  # per actor; None = 1 when the Ray cluster has a GPU, else 0
    num_cpus: float = 1.0
    max_restarts: int = 3  # an actor whose process dies is restarted up to this many times


@dataclass(frozen=True)
class Rejection:
    """A row the stage refused, with its reason code (becomes a quarantine record upstream)."""

    reason: str
    message: str
    score: float | None = None
    path: str = ""  # the file the rejection names, when the exception carries one (`RowRejected.path`)

    @classmethod
    def of(cls, exc: BaseException) -> Rejection:
        score = getattr(exc, "score", None)
        return cls(
            str(getattr(exc, "reason", type(exc).__name__)),
            str(getattr(exc, "message", exc)),
            None if score is None else float(score),
            str(getattr(exc, "path", "") or ""),
        )


@dataclass(frozen=True)
class RowOutcome:
    """What one row became: `value` when accepted, `rejection` when refused."""

    index: int
    value: Any = None
    rejection: Rejection | None = None

    @property
    def ok(self) -> bool:
        return self.rejection is None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def release_heap() -> None:
    """Give the heap pages freed since the last call back to the OS (glibc `malloc_trim`; elsewhere a no-op).

    Why: a row decodes frames of 0.1-3 MB and frees them; glibc serves such sizes from its heap
    once it has seen one freed (its mmap threshold adapts upward), and a freed page stays counted in
    RSS while anything small and long-lived sits on it. The peak then grows with the rows done.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def prepare(fn: Callable) -> Callable:
    """Call the function's `setup()` (load models) if it has one; returns the function."""
    setup = getattr(fn, "setup", None)
    if callable(setup):
        setup()
    return fn


def run_row(fn: Callable, index: int, row: Any, rejects: tuple[type[BaseException], ...]) -> RowOutcome:
    """One row through `fn`: its value, or its Rejection when `fn` raised one of `rejects`."""
    try:
        return RowOutcome(index, fn(row))
    except rejects as exc:
        return RowOutcome(index, rejection=Rejection.of(exc))


def map_rows(
    fn: Callable[[Any], Any],
    rows: Sequence[Any],
    *,
    settings: EngineSettings | None = None,
    rejects: tuple[type[BaseException], ...] = (),
    progress: Progress | None = None,
    pool: ActorPool | None = None,
) -> list[RowOutcome]:
    """`fn` over every row, one `RowOutcome` per row in input order (see the module docstring)."""
    return list(stream_rows(fn, rows, settings=settings, rejects=rejects, progress=progress, pool=pool))


def stream_rows(
    fn: Callable[[Any], Any],
    rows: Sequence[Any],
    *,
    settings: EngineSettings | None = None,
    rejects: tuple[type[BaseException], ...] = (),
    progress: Progress | None = None,
    pool: ActorPool | None = None,
) -> Iterator[RowOutcome]:
    """`map_rows` as a generator: outcomes in input order as they arrive, for results too big to hold
    all at once (feature tensors). The driver writes each one and drops it; Ray Data's back-pressure
    keeps only a window of results in flight, so memory does not grow with the batch."""
    settings = settings or EngineSettings()
    rows = rows if isinstance(rows, Sequence) else list(rows)  # a Sequence is read one index at a time
    if not len(rows):
        return
    start = 0
    if settings.adaptive(len(rows)):
        start = yield from _probe(fn, rows, settings, rejects, progress)
        if start == len(rows):
            return
    if settings.backend_for(len(rows)) == "ray":
        from kiwi_platform.engine.ray_runner import stream_on_ray

        yield from stream_on_ray(fn, rows, start, settings=settings, rejects=rejects, progress=progress, pool=pool)
        return
    prepare(fn)
    for i in range(len(rows)):
        outcome = run_row(fn, i, rows[i], rejects)
        if (i + 1) % TRIM_EVERY == 0:
            release_heap()
        if progress:
            progress(i + 1, len(rows))
        yield outcome


def _probe(fn, rows: list, settings: EngineSettings, rejects, progress: Progress | None):
    """Run rows in this process for about `probe_s`; return how many ran, or all of them when the
    rest would not take `ray_worth_s` (a local Ray's start would not pay back) or a row is too cheap
    for the machine's other cores to win back Ray's per-row cost (`ray_task_overhead_s`).

    Why: a row's cost decides whether Ray helps, and it varies 100x between stages and sizes (a
    17-frame 128x224 clip normalizes in 0.05 s, a 720p one in seconds). Same outputs either way.
    """
    local = prepare(copy.copy(fn))  # its loaded state stays here; `fn` travels to Ray as plain config
    began, done = time.perf_counter(), 0
    while done < len(rows):
        yield run_row(local, done, rows[done], rejects)
        done += 1
        if done % TRIM_EVERY == 0:
            release_heap()
        if progress:
            progress(done, len(rows))
        spent = time.perf_counter() - began
        if spent >= settings.probe_s:
            per_row = spent / done
            rest = per_row * (len(rows) - done)
            cores = settings.num_cpus or os.cpu_count() or 1
            if rest > settings.ray_worth_s and per_row * (cores - 1) >= settings.ray_task_overhead_s:
                return done
    return done
