"""Shared fixtures: every test that touches platform state gets its own KIWI_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiwi_platform.settings import find_demo_dir

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    path = find_demo_dir()
    if not path.is_dir():
        pytest.fail(f"Kiwi-Edit demo data not found at {path}")
    return path


@pytest.fixture
def kiwi_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated KIWI_HOME (Dagster instance, data repo, DVC remote) for one test."""
    home = tmp_path / "kiwi-home"
    monkeypatch.setenv("KIWI_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    for var in ("KIWI_DATA_DIR", "KIWI_DVC_REMOTE", "KIWI_MLFLOW_TRACKING_URI", "KIWI_LAKEFS_ENABLED"):
        monkeypatch.delenv(var, raising=False)
    return home
