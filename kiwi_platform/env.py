"""Prepare local state before Dagster or DVC start: DAGSTER_HOME set, instance config in place.

Several `kiwi` commands may start at once on a fresh KIWI_HOME. Dagster creates its SQLite
databases (and stamps their alembic revision) the first time an instance opens them, with no
guard against a second process doing the same: two creators crash with `table ... already
exists` or leave two alembic heads behind, which breaks the instance for good. So the first
opening happens here, under an inter-process lock; once the databases exist, opening them
concurrently is safe (Dagster only reads their revision), so the lock is held only for that.
"""

from __future__ import annotations

import os
from pathlib import Path

from kiwi_platform.settings import PROJECT_ROOT, KiwiSettings

INIT_LOCK_TIMEOUT_S = 600.0  # creating the instance takes seconds; minutes means a hung process
_initialised: set[Path] = set()  # DAGSTER_HOMEs this process has opened under the lock


def prepare_environment() -> KiwiSettings:
    """Resolve settings, export DAGSTER_HOME, install the project's dagster.yaml there if it has none,
    and create the instance's databases (once per process, under the init lock).

    An existing `$DAGSTER_HOME/dagster.yaml` is the team's (e.g. pointing at PostgreSQL) and is kept.
    """
    settings = KiwiSettings.from_env()
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    os.environ.setdefault("KIWI_HOME", str(settings.home))
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    if settings.dagster_home not in _initialised:
        initialise_instance(settings.dagster_home)
        _initialised.add(settings.dagster_home)
    return settings


def init_lock_path(dagster_home: Path) -> Path:
    return dagster_home / ".kiwi-init.lock"


def initialise_instance(dagster_home: Path) -> None:
    """Install dagster.yaml and open the instance once, holding `$DAGSTER_HOME/.kiwi-init.lock`.

    Idempotent and cheap when the databases exist (about 50 ms); after a crash half-way through,
    the next process simply does it again (the lock died with the crashed process).
    """
    import dagster as dg

    from kiwi_platform.lib.files import write_bytes_atomic
    from kiwi_platform.lib.locks import file_lock

    dagster_home.mkdir(parents=True, exist_ok=True)
    what = f"the Dagster instance at {dagster_home} (setting it up)"
    with file_lock(init_lock_path(dagster_home), what=what, timeout=INIT_LOCK_TIMEOUT_S):
        template, target = PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml"
        if template.exists() and not target.exists():
            write_bytes_atomic(target, template.read_bytes())  # a reader never sees half a config
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        instance.dispose()


def require_state(need: str = "data") -> KiwiSettings:
    """For commands that only read: refuse (instead of creating an empty state) when there is none.

    `need`: "data" (the data repo: quarantine, export, dvc) or "tracking" (the MLflow store:
    lineage, report; a tracking server is always assumed to exist).
    """
    from kiwi_platform.errors import KiwiUserError

    settings = KiwiSettings.from_env()
    uri = settings.mlflow_tracking_uri
    if need == "tracking":
        present = not uri.startswith("sqlite:///") or Path(uri[len("sqlite:///") :]).exists()
        where = uri
    else:
        present, where = settings.data_dir.is_dir(), str(settings.data_dir)
    if not present:
        raise KiwiUserError(
            f"no Kiwi state at {where} (set KIWI_HOME, or run `kiwi demo` / `kiwi ingest` first)", code="no_state"
        )
    return prepare_environment()
