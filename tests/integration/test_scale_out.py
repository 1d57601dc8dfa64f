"""The distributed column of the architecture: same code, other configuration.

A real PostgreSQL (pgserver, from PyPI) holds the Dagster instance, and a real `mlflow server`
on loopback tracks and serves a registered model.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

from kiwi_platform.env import prepare_environment
from kiwi_platform.resources import build_resources
from kiwi_platform.runner import materialize, register_batch
from tests.integration.conftest import SMALL_RUN_CONFIG


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    # SQLAlchemy 2.1 defaults postgresql:// to psycopg 3; dagster-postgres ships psycopg2
    yield server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)
    server.cleanup()


def test_dagster_instance_on_postgresql_runs_the_pipeline(kiwi_home: Path, postgres_url: str, small_synth: Path):
    """With `storage: postgres` in DAGSTER_HOME/dagster.yaml (the scale-out profile), `kiwi`
    materializes a batch and the run, its events and the dynamic partition live in PostgreSQL."""
    import psycopg2

    dagster_home = kiwi_home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(
        f'storage:\n  postgres:\n    postgres_url: "{postgres_url}"\ntelemetry:\n  enabled: false\n'
    )
    settings = prepare_environment()
    assert "postgres" in (dagster_home / "dagster.yaml").read_text()  # the team's config is kept
    from kiwi_platform.definitions import build_definitions

    defs = build_definitions()
    instance = dg.DagsterInstance.get()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    build_resources(settings)["store"].register_batch("pg", small_synth)
    register_batch(instance, "pg")
    [outcome] = materialize("group:ingestion", ["pg"], defs=defs, run_config=SMALL_RUN_CONFIG)
    assert outcome.ok, outcome.errors
    with psycopg2.connect(postgres_url.replace("+psycopg2", "")) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from runs where run_id = %s", (outcome.run_id,))
        assert cur.fetchone()[0] == 1
        cur.execute("select count(*) from dynamic_partitions where partition = 'pg'")
        assert cur.fetchone()[0] == 1
    instance.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not come up on loopback within 60 s")
        yield url, tmp_path / "server-artifacts"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_stage_model_logs_and_loads_through_an_mlflow_server(mlflow_server, tmp_path):
    """Pointing KIWI_MLFLOW_TRACKING_URI at a tracking server is all it takes: the stage's model is
    logged with its lineage tags, registered, stored by the server, and loads back as a pyfunc."""
    import mlflow

    from kiwi_platform.lib import mlflow_tags
    from kiwi_platform.resources.tracking import MlflowTracking
    from kiwi_platform.training.registration import log_model
    from model.build import init_checkpoint

    url, server_artifacts = mlflow_server
    tracking = MlflowTracking(tracking_uri=url, artifact_root=str(tmp_path / "unused"))
    ckpt = init_checkpoint("tiny", tmp_path / "ckpt", seed=0)
    with tracking.start_run("stage1", tags={mlflow_tags.STAGE: "1"}):
        mlflow.log_metric("loss", 0.5, step=1)
        version, uri, _ = log_model(tracking, ckpt, {mlflow_tags.STAGE: "1", mlflow_tags.CHECKPOINT_DIR: str(ckpt)})
    mv = tracking.client().get_model_version("kiwi-edit", version)
    assert mv.tags[mlflow_tags.STAGE] == "1" and mv.tags[mlflow_tags.CHECKPOINT_DIR] == str(ckpt)
    assert not (tmp_path / "unused").exists()  # the server, not the client, chose the artifact store
    assert any(server_artifacts.rglob("model_index.json"))
    loaded = mlflow.pyfunc.load_model(uri)
    assert type(loaded.unwrap_python_model().pipeline).__name__ == "KiwiEditPipeline"
