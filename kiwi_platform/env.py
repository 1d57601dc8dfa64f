"""Prepare local state before Dagster or DVC start: DAGSTER_HOME set, instance config in place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kiwi_platform.settings import PROJECT_ROOT, KiwiSettings


def prepare_environment() -> KiwiSettings:
    """Resolve settings, export DAGSTER_HOME, install the project's dagster.yaml there if it has none.

    An existing `$DAGSTER_HOME/dagster.yaml` is the team's (e.g. pointing at PostgreSQL) and is kept.
    """
    settings = KiwiSettings.from_env()
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    os.environ.setdefault("KIWI_HOME", str(settings.home))
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    template, target = PROJECT_ROOT / "dagster.yaml", settings.dagster_home / "dagster.yaml"
    if template.exists() and not target.exists():
        shutil.copyfile(template, target)
    return settings


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
