"""The evaluation library stays a plain library: importing and using it never pulls in Dagster or MLflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_evaluation_package_imports_neither_dagster_nor_mlflow() -> None:
    """Assets wrap the library; the library must not depend on the orchestrator or the tracker (or load torch eagerly)."""
    code = (
        "import sys, importlib, pkgutil, kiwi_platform.evaluation as e\n"
        "for m in pkgutil.iter_modules(e.__path__): importlib.import_module(f'kiwi_platform.evaluation.{m.name}')\n"
        "print(','.join(sorted(m for m in ('dagster', 'mlflow', 'torch') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
