"""Run asset selections the way the UI's Materialize button does, from the command line.

Runs are recorded in the Dagster instance under DAGSTER_HOME (same run history, same asset
catalog as the UI). One run per batch partition; unpartitioned selections run once.

Each run is a run of the code location's asset job, created the way the UI's Launchpad creates
one (origin of the location, job snapshot, asset selection, partition tags), so the UI shows it
everywhere it shows its own runs: the Overview timeline, the job's runs, re-execution. It then
executes here, in this process (the in-process executor: logs stream to the terminal, no process
per step), not through the daemon's run queue: a `kiwi` command works without a daemon, its runs
count against the queue's `max_concurrent_runs`, and steps take their pools' slots like any run's.

Several `kiwi` processes may run at once: each run holds its batch's run lock (the unpartitioned
run a lock of its own), so two runs never write the same asset folders together; runs of
different batches go side by side.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import execute_run

from kiwi_platform.code_location import is_code_location, job_origins
from kiwi_platform.env import prepare_environment
from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.dead_runs import owner_tags, pool_waits, reap_dead_runs
from kiwi_platform.partitions import batches


@dataclass
class CheckOutcome:
    asset: str
    name: str
    passed: bool
    blocking: bool
    severity: str = "ERROR"  # "WARN" for a warning-only check (shown as warn, never as FAIL)


@dataclass
class RunOutcome:
    run_id: str
    partition: str | None
    success: bool
    materialized: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed_blocking_checks(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.blocking and not c.passed and c.severity != "WARN"]

    @property
    def ok(self) -> bool:
        return self.success and not self.failed_blocking_checks


def load_definitions() -> dg.Definitions:
    prepare_environment()
    from kiwi_platform.definitions import defs

    return defs


def register_batch(instance: dg.DagsterInstance, batch: str) -> None:
    """Add `batch` as a dynamic partition; idempotent, also when processes add the same one at once.

    Dagster checks then inserts, and the (definition, partition) index is unique: the loser of
    that race gets an IntegrityError although the partition it wanted now exists.
    """
    if instance.has_dynamic_partition(batches.name, batch):
        return
    try:
        instance.add_dynamic_partitions(batches.name, [batch])
    except Exception:
        if not instance.has_dynamic_partition(batches.name, batch):
            raise


def resolve_selection(defs: dg.Definitions, selection: str) -> set[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    try:
        keys = dg.AssetSelection.from_string(selection).resolve(graph)
    except Exception as exc:  # the parser raises several types; all mean "bad selection"
        raise KiwiUserError(
            f"cannot use asset selection {selection!r}: {exc}".splitlines()[0], code="bad_selection"
        ) from None
    if not keys:
        raise KiwiUserError(f"asset selection {selection!r} matches no asset", code="bad_selection")
    return keys


def materialize(
    selection: str,
    partitions: list[str] | None = None,
    *,
    run_config: dict | None = None,
    tags: dict[str, str] | None = None,
    defs: dg.Definitions | None = None,
) -> list[RunOutcome]:
    """Materialize `selection` (Dagster selection syntax); returns one outcome per run.

    Batch-partitioned assets run once per batch (all registered batches unless `partitions` names
    some); unpartitioned assets (training, evaluation) then run once, only if every batch run
    succeeded, since they read all batches.
    """
    defs = defs or load_definitions()
    keys = resolve_selection(defs, selection)
    instance = dg.DagsterInstance.get()
    reaped = reap_dead_runs(instance)  # runs of killed kiwi processes would hold pool slots forever
    for _, line in reaped:
        _say(line)
    if reaped:
        _end_mlflow_runs(defs, [run_id for run_id, _ in reaped])
    graph = defs.resolve_asset_graph()
    partitioned = {k for k in keys if graph.get(k).partitions_def is not None}
    unpartitioned = keys - partitioned
    wanted: list[str] = []
    if partitioned:
        known = instance.get_dynamic_partitions(batches.name)
        wanted = list(partitions or known)
        unknown = [p for p in wanted if p not in known]
        if unknown:
            raise KiwiUserError(
                f"unknown batch {unknown[0]!r}; known batches: {', '.join(known) or 'none (run kiwi ingest)'}"
            )
        if not wanted:
            raise KiwiUserError("no batches registered yet; run `kiwi ingest MANIFEST.csv --batch NAME` first")
    job = defs.resolve_implicit_global_asset_job_def()
    of_location = is_code_location(defs)
    config = {"loggers": {"kiwi_console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    config = _run_config(job, config)
    plan = [(p, partitioned) for p in wanted] + ([(None, unpartitioned)] if unpartitioned else [])
    outcomes: list[RunOutcome] = []
    for partition, run_keys in plan:
        if partition is None and outcomes and not all(o.ok for o in outcomes):
            break  # training/evaluation read every batch: not on top of a failed one
        ops = _ops_config(config, run_keys)
        with _run_lock(defs, partition):
            for line in pool_waits(instance, {p for k in run_keys if (p := defs.resolve_assets_def(k).op.pool)}):
                _say(line)
            run = _create_run(
                instance,
                job,
                run_keys,
                partition,
                ops,
                {"kiwi/source": "cli", **owner_tags(), **(tags or {})},
                of_location=of_location,
            )
            result = execute_run(InMemoryJob(job), run, instance)
        outcomes.append(_summarise(result, partition, graph))
    return outcomes


def _create_run(
    instance: dg.DagsterInstance,
    job: dg.JobDefinition,
    keys: set[dg.AssetKey],
    partition: str | None,
    run_config: dict,
    tags: dict[str, str],
    *,
    of_location: bool,
) -> dg.DagsterRun:
    """A NOT_STARTED run of `job` on `keys` (and their checks), as the Launchpad creates it.

    With `of_location` it carries the code location's origins (see kiwi_platform.code_location);
    the partition becomes the run's partition tag after Dagster validated it.
    """
    from dagster._core.execution.execute_in_process import merge_run_tags

    selection = sorted(keys, key=lambda k: k.to_user_string())
    run_tags = merge_run_tags(job, partition, tags, selection, instance, run_config)
    remote_origin, code_origin = job_origins(job.name) if of_location else (None, None)
    try:
        return instance.create_run_for_job(
            job_def=job,
            run_config=run_config,
            tags=run_tags,
            asset_selection=frozenset(selection),
            remote_job_origin=remote_origin,
            job_code_origin=code_origin,
        )
    except dg.DagsterInvalidConfigError as exc:  # a --config file or run_config the assets do not take
        first = exc.errors[0].message if exc.errors else str(exc).splitlines()[0]
        raise KiwiUserError(f"run config: {first}", code="bad_arguments") from None


def _run_config(job: dg.JobDefinition, config: dict) -> dict:
    """The run config with the in-process executor chosen where the job's executor leaves a choice.

    The default executor (`multi_or_in_process`) starts one process per step under the UI; the CLI
    runs every step in its own process, as it always has. A job whose executor is already in-process
    needs nothing; an explicit `execution` section in `config` wins.
    """
    if job.executor_def.name == "multi_or_in_process_executor" and "execution" not in config:
        return {**config, "execution": {"config": {"in_process": {}}}}
    return config


def _end_mlflow_runs(defs: dg.Definitions, dagster_run_ids: list[str]) -> None:
    """A killed training stage leaves its MLflow run RUNNING forever: mark those of reaped runs KILLED."""
    from kiwi_platform.resources.tracking import MlflowTracking

    tracking = (getattr(defs, "resources", None) or {}).get("tracking")
    if isinstance(tracking, MlflowTracking):
        for line in tracking.end_runs_of(dagster_run_ids):
            _say(line)


def _say(line: str) -> None:
    """One line for the person at the terminal (stderr, so `--json` output stays clean)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _run_lock(defs: dg.Definitions, partition: str | None) -> contextlib.AbstractContextManager:
    """The store's run lock for this partition (see MediaStore.run_lock); none without a store."""
    from kiwi_platform.resources.store import MediaStore

    store = (getattr(defs, "resources", None) or {}).get("store")
    return store.run_lock(partition) if isinstance(store, MediaStore) else contextlib.nullcontext()


def _ops_config(config: dict, keys: set[dg.AssetKey]) -> dict:
    """Keep only the op configs of the assets in this run (Dagster rejects config for absent ops)."""
    names = {k.to_python_identifier() for k in keys}
    ops = {name: value for name, value in config.get("ops", {}).items() if name in names}
    return {**{k: v for k, v in config.items() if k != "ops"}, **({"ops": ops} if ops else {})}


def _summarise(result, partition: str | None, graph) -> RunOutcome:
    outcome = RunOutcome(run_id=result.run_id, partition=partition, success=result.success)
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            outcome.materialized.append(event.asset_key.to_user_string())
        elif event.event_type_value == "STEP_FAILURE":
            outcome.failed_steps.append(event.step_key)
            info = event.step_failure_data.error
            if info is not None:
                outcome.errors.append(f"{event.step_key}: {_one_line(info)}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            spec = graph.get_check_spec(evaluation.asset_check_key) if hasattr(graph, "get_check_spec") else None
            blocking = (
                bool(getattr(spec, "blocking", False)) if spec else _is_blocking(graph, evaluation.asset_check_key)
            )
            outcome.checks.append(
                CheckOutcome(
                    evaluation.asset_key.to_user_string(),
                    evaluation.check_name,
                    evaluation.passed,
                    blocking,
                    getattr(evaluation.severity, "value", "ERROR"),
                )
            )
    return outcome


def _is_blocking(graph, check_key) -> bool:
    for spec in graph.get_checks_def(check_key).check_specs if hasattr(graph, "get_checks_def") else []:
        if spec.key == check_key:
            return spec.blocking
    return True


def _one_line(info) -> str:
    """The user-facing part of a step error: a dg.Failure's description, else the exception message."""
    message = (info.message or "").strip()
    if info.cause is not None and "Failure" not in (info.cls_name or ""):
        message = (info.cause.message or message).strip()
    line = message.splitlines()[-1] if message else (info.cls_name or "error")
    for prefix in ("dagster._core.definitions.events.Failure: ", "Failure: "):
        line = line.removeprefix(prefix)
    return line
