"""Where Kiwi keeps its local state.

Everything the platform writes on one machine lives under KIWI_HOME (default `./.kiwi`), so two
checkouts or two tests never share state. Each location can be moved on its own by an env var;
the distributed setups (PostgreSQL for Dagster, an MLflow server, an object-store DVC remote)
are the same code with different values here.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


class KiwiSettings(BaseModel):
    """Resolved locations of all local state (read from the environment once, then passed around)."""

    home: Path
    data_dir: Path
    dagster_home: Path
    mlflow_tracking_uri: str
    mlflow_artifacts: Path
    dvc_remote: str
    demo_dir: Path

    @classmethod
    def from_env(cls) -> KiwiSettings:
        home = _env_path("KIWI_HOME", (Path.cwd() / ".kiwi").resolve())
        data_dir = _env_path("KIWI_DATA_DIR", home / "data")
        return cls(
            home=home,
            data_dir=data_dir,
            dagster_home=_env_path("DAGSTER_HOME", home / "dagster"),
            mlflow_tracking_uri=os.environ.get("KIWI_MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}"),
            mlflow_artifacts=_env_path("KIWI_MLFLOW_ARTIFACTS", home / "mlflow-artifacts"),
            dvc_remote=os.environ.get("KIWI_DVC_REMOTE", str(home / "dvc-remote")),
            demo_dir=_env_path("KIWI_DEMO_DIR", find_demo_dir()),
        )


def find_demo_dir() -> Path:
    """The Kiwi-Edit demo files: a copy shipped in the repo wins, else the shared folder beside it."""
    for candidate in (PROJECT_ROOT / "data" / "kiwi_demo", PROJECT_ROOT.parent / "shared" / "data" / "kiwi_demo"):
        if candidate.is_dir():
            return candidate
    return PROJECT_ROOT / "data" / "kiwi_demo"
