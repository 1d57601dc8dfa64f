"""Shared fixtures: every test that touches platform state gets its own KIWI_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.demo_data import DEMO_REF, DEMO_VIDEO, require_demo_dir

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    """The Kiwi-Edit demo media folder, the one way every test gets it (see tests/demo_data.py).

    Missing or incomplete, it fails the requesting test with a clear message; it never skips.
    """
    return require_demo_dir()


@pytest.fixture(scope="session")
def demo_video(demo_dir: Path) -> Path:
    """The real 832x480 demo clip."""
    return demo_dir / DEMO_VIDEO


@pytest.fixture(scope="session")
def demo_ref(demo_dir: Path) -> Path:
    """The demo reference still."""
    return demo_dir / DEMO_REF


@pytest.fixture
def kiwi_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated KIWI_HOME (Dagster instance, data repo, DVC remote) for one test."""
    home = tmp_path / "kiwi-home"
    monkeypatch.setenv("KIWI_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    for var in ("KIWI_DATA_DIR", "KIWI_DVC_REMOTE", "KIWI_MLFLOW_TRACKING_URI", "KIWI_LAKEFS_ENABLED"):
        monkeypatch.delenv(var, raising=False)
    return home
