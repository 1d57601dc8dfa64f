"""The Ray Data back end of `map_rows`: connect (or start a local Ray), run, collect by row index.

Why rows travel pickled: a row is a dict of mixed Python values and a row's result may hold
anything; letting Arrow infer a schema would change types (ints to floats beside a None, tuples to
lists) and the in-process and Ray back ends would no longer write the same bytes. So each Ray row
is just `(i, pickled row)` and each result `(i, pickled RowOutcome)`; the driver puts results back
in input order and proves every index came back exactly once.

Faults: a worker process that dies (kill -9, OOM) fails its task; Ray reruns that task
(`max_retries`), and since a task's output only counts once it has finished, the rerun neither
loses nor duplicates a row. Row functions write their files with temp-then-rename, so a rerun
rewrites the same bytes. An address that does not answer is one `KiwiUserError` naming it, raised
before any row runs (so nothing is written or registered).
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from kiwi_platform.engine.rows import (
    ActorPool,
    EngineSettings,
    Progress,
    RowOutcome,
    prepare,
    run_row,
)
from kiwi_platform.errors import KiwiUserError

_state: dict[str, str] = {}  # "address": what this process's ray.init connected to ("" = a local Ray)


def connect(settings: EngineSettings) -> None:
    """Connect this process to `settings.ray_address`, or start a local Ray sized to the machine."""
    import ray

    address = settings.ray_address.strip()
    if ray.is_initialized() and _state.get("address") == address:
        return
    if address:
        _check_reachable(address)  # before leaving any Ray this process is on
    if ray.is_initialized():
        ray.shutdown()
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, namespace="kiwi")
        except Exception as exc:  # noqa: BLE001 - any failure to join is the user's address or cluster
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise KiwiUserError(
                f"cannot connect to the Ray cluster at KIWI_RAY_ADDRESS={address}: {first}",
                code="ray_unreachable",
                exit_code=1,
            ) from None
    else:
        ray.init(
            address="local",  # never join a cluster named by RAY_ADDRESS by accident
            num_cpus=settings.num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
            namespace="kiwi",
        )
    _state["address"] = address
    _quiet_ray_data()


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """A TCP connect to the address's host:port, so a wrong address fails in seconds, not minutes."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise KiwiUserError(
            f"KIWI_RAY_ADDRESS={address} is not host:port or ray://host:port", code="ray_bad_address", exit_code=2
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise KiwiUserError(
            f"the Ray cluster at KIWI_RAY_ADDRESS={address} is unreachable ({exc.strerror or exc}); "
            "start it or unset KIWI_RAY_ADDRESS to run on this machine",
            code="ray_unreachable",
            exit_code=1,
        ) from None


def _quiet_ray_data() -> None:
    """Progress goes to the caller's callback (Dagster logs), not to tqdm bars on stderr."""
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False


def _apply(batch: pd.DataFrame, fn: Callable, rejects: tuple) -> pd.DataFrame:
    """Task mode: one block of rows through `fn` (module-level so Ray ships it by reference)."""
    prepare(fn)
    return _outcomes(batch, fn, rejects)


@dataclass(frozen=True)
class _UserFailure:
    """A KiwiUserError raised in a worker, carried back as data (Ray's wrapping would bury its one line)."""

    message: str
    code: str
    exit_code: int


def _outcomes(batch: pd.DataFrame, fn: Callable, rejects: tuple) -> pd.DataFrame:
    index = [int(i) for i in batch["i"]]
    out = []
    for i, blob in zip(index, batch["row"]):
        try:
            outcome: RowOutcome | _UserFailure = run_row(fn, i, pickle.loads(blob), rejects)
        except KiwiUserError as exc:
            outcome = _UserFailure(exc.message, exc.code, exc.exit_code)
        out.append(pickle.dumps(outcome))
    return pd.DataFrame({"i": pd.Series(index, dtype="int64"), "out": pd.Series(out, dtype=object)})


class _RowActor:
    """Actor-pool mode: `fn.setup()` once per actor (load the model), then rows as they come."""

    def __init__(self, fn: Callable, rejects: tuple) -> None:
        self.fn, self.rejects = prepare(fn), rejects

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return _outcomes(batch, self.fn, self.rejects)


def stream_on_ray(
    fn: Callable,
    rows: Sequence[Any],
    start: int = 0,
    *,
    settings: EngineSettings,
    rejects: tuple[type[BaseException], ...],
    progress: Progress | None,
    pool: ActorPool | None,
) -> Iterator[RowOutcome]:
    """`fn` over `rows[start:]` as a Ray Data pipeline, each row exactly once, yielded (with its index
    in `rows`) as soon as it and every row before it are back.

    Rows are read one index at a time and pickled as they go into Ray's blocks (a `TableRows` never
    becomes a list of dicts here). Results that arrive early wait in a buffer keyed by row index (at
    most Ray Data's in-flight window), so the caller sees input order and can write and drop each
    result at once. Progress counts the rows done before `start` as done.
    """
    connect(settings)
    import ray.data

    total = len(rows)
    per_task = settings.rows_per_task_for(total - start)
    ds = ray.data.from_items(
        [{"i": i, "row": pickle.dumps(rows[i])} for i in range(start, total)],
        override_num_blocks=-(-(total - start) // per_task),
    )
    with warnings.catch_warnings():
        # retry limits have no named parameter yet in Ray 2.60; they still go as remote args
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        ds = _map(ds, fn, rejects, settings, pool, per_task)
    waiting: dict[int, RowOutcome] = {}
    seen: set[int] = set()
    following = start  # the next index to hand out
    for rec in ds.iter_rows():
        i = int(rec["i"])
        if i in seen:
            continue  # cannot happen with finished-task outputs; never count a row twice
        outcome = pickle.loads(rec["out"])
        if isinstance(outcome, _UserFailure):
            raise KiwiUserError(outcome.message, code=outcome.code, exit_code=outcome.exit_code)
        seen.add(i)
        waiting[i] = outcome
        if progress:
            progress(start + len(seen), total)
        while following in waiting:
            yield waiting.pop(following)
            following += 1
    missing = sorted(set(range(start, total)) - seen)
    if missing:
        raise RuntimeError(f"Ray returned no result for rows {missing[:10]} of {total}")


def _map(ds: Any, fn: Callable, rejects: tuple, settings: EngineSettings, pool: ActorPool | None, per_task: int) -> Any:
    """The Ray Data map step: a task per block, or a fixed pool of actors that load once."""
    if pool is not None:
        return ds.map_batches(
            _RowActor,
            fn_constructor_args=(fn, rejects),
            batch_size=per_task,
            batch_format="pandas",
            concurrency=_pool_size(pool),
            num_cpus=pool.num_cpus,
            num_gpus=_gpus_per_actor(pool) or None,
            max_restarts=pool.max_restarts,
            max_task_retries=settings.max_retries,
        )
    return ds.map_batches(
        _apply,
        fn_kwargs={"fn": fn, "rejects": rejects},
        batch_size=None,
        batch_format="pandas",
        num_cpus=1,
        max_retries=settings.max_retries,
        retry_exceptions=False,
    )


def _pool_size(pool: ActorPool) -> int:
    """The pool's actor count; 0 (auto) = one per GPU of the connected cluster, 1 without GPUs."""
    if pool.size > 0:
        return pool.size
    import ray

    gpus, per_actor = ray.cluster_resources().get("GPU", 0), _gpus_per_actor(pool)
    return max(1, int(gpus // per_actor)) if gpus and per_actor else 1


def _gpus_per_actor(pool: ActorPool) -> float:
    """The pool's GPUs per actor; `None` (auto) = 1 when the connected Ray cluster has a GPU, else 0."""
    if pool.num_gpus is not None:
        return pool.num_gpus
    import ray

    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
