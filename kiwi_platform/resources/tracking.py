"""MLflow, and nothing else: local SQLite + artifact folder by default, a server when the URI says so.

MLflow 3 wants a database backend (not a bare file store), hence `sqlite:///$KIWI_HOME/mlflow.db`.
MLflow creates and migrates that database (alembic) the first time a store opens it, with no
guard against a second process doing the same at once; so each process opens it first under an
inter-process lock beside the database (`mlflow.db.lock`). Once the tables exist MLflow only
checks their revision, which is safe to do concurrently.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

INIT_LOCK_TIMEOUT_S = 600.0
_opened: set[str] = set()  # sqlite URIs this process has opened under the lock
_opened_guard = threading.Lock()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///...` URI, else None (a server or another database)."""
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


class MlflowTracking(dg.ConfigurableResource):
    tracking_uri: str
    artifact_root: str
    experiment: str = "kiwi-edit"
    registered_model: str = "kiwi-edit"
    ui_url: str = "http://127.0.0.1:5000"  # where `mlflow ui` serves; used for links in Dagster metadata

    def _mlflow(self):
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        self._open_store_once()
        return mlflow

    def client(self):
        from mlflow import MlflowClient

        self._mlflow()
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def end_runs_of(self, dagster_run_ids: list[str]) -> list[str]:
        """Mark KILLED the MLflow runs still RUNNING that the given (dead) Dagster runs started; one line each."""
        from kiwi_platform.lib.mlflow_tags import DAGSTER_RUN_ID

        client, lines = self.client(), []
        experiments = [e.experiment_id for e in client.search_experiments()]
        for dagster_run in dagster_run_ids:
            query = f"tags.`{DAGSTER_RUN_ID}` = '{dagster_run}' and attributes.status = 'RUNNING'"
            for run in client.search_runs(experiments, filter_string=query) if experiments else []:
                client.set_terminated(run.info.run_id, status="KILLED")
                lines.append(f"MLflow run {run.info.run_id[:8]} of run {dagster_run[:8]}: marked KILLED")
        return lines

    def _open_store_once(self) -> None:
        """Open the tracking and registry stores of a local SQLite URI under the init lock, once per process.

        That first opening creates and migrates the database when it is new; done by two processes
        at once it crashes or leaves two alembic heads, so it is serialised here.
        """
        db = sqlite_path(self.tracking_uri)
        if db is None or self.tracking_uri in _opened:
            return
        from mlflow import MlflowClient

        from kiwi_platform.lib.locks import file_lock

        db.parent.mkdir(parents=True, exist_ok=True)
        with (
            _opened_guard,
            file_lock(
                db.with_name(db.name + ".lock"),
                what=f"the MLflow database {db} (setting it up)",
                timeout=INIT_LOCK_TIMEOUT_S,
            ),
        ):
            if self.tracking_uri in _opened:
                return
            client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            client.search_experiments(max_results=1)  # the tracking store: tables, migrations, default experiment
            client.search_registered_models(max_results=1)  # the model registry store on the same database
            _opened.add(self.tracking_uri)

    def experiment_id(self) -> str:
        mlflow = self._mlflow()
        found = mlflow.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if not self.tracking_uri.startswith(("http://", "https://")):  # a server decides where artifacts go
            Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
            location = Path(self.artifact_root).resolve().as_uri()
        try:
            return mlflow.create_experiment(self.experiment, artifact_location=location)
        except Exception:  # created concurrently by another process
            return mlflow.get_experiment_by_name(self.experiment).experiment_id

    @contextlib.contextmanager
    def start_run(self, name: str, tags: dict[str, str], parent_run_id: str | None = None) -> Iterator[object]:
        """A run in the platform's experiment, nested under `parent_run_id` when given."""
        mlflow = self._mlflow()
        experiment_id = self.experiment_id()
        all_tags = dict(tags)
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        with mlflow.start_run(run_name=name, experiment_id=experiment_id, tags=all_tags) as run:
            yield run

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{self.experiment_id()}/runs/{run_id}"

    def model_url(self, version: str | int) -> str:
        return f"{self.ui_url}/#/models/{self.registered_model}/versions/{version}"
