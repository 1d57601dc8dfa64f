"""MLflow, and nothing else: local SQLite + artifact folder by default, a server when the URI says so.

MLflow 3 wants a database backend (not a bare file store), hence `sqlite:///$KIWI_HOME/mlflow.db`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg


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
        return mlflow

    def client(self):
        from mlflow import MlflowClient

        self._mlflow()
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

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
