"""The evaluation library stays a plain library: scoring never pulls in Dagster or MLflow.

Only the modules that record runs and compare model versions in MLflow (`mlflow_log`,
`candidate`, and `standalone`, which logs `kiwi evaluate` runs) talk to the tracker; everything that generates and scores does not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRACKED = ("candidate", "mlflow_log", "standalone")  # the modules that record to MLflow, allowed to import it


def test_evaluation_package_imports_neither_dagster_nor_mlflow() -> None:
    """Assets wrap the library; its scoring modules must not depend on the orchestrator or the tracker (or load torch eagerly)."""
    code = (
        "import sys, importlib, pkgutil, kiwi_platform.evaluation as e\n"
        f"names = [m.name for m in pkgutil.iter_modules(e.__path__) if m.name not in {TRACKED!r}]\n"
        "assert len(names) > 10, names\n"
        "for name in names: importlib.import_module(f'kiwi_platform.evaluation.{name}')\n"
        "print(','.join(sorted(m for m in ('dagster', 'mlflow', 'torch') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_tracked_modules_exist() -> None:
    """The exemption list names real modules, so a renamed module cannot slip past the boundary check."""
    import pkgutil

    import kiwi_platform.evaluation as e

    assert set(TRACKED) <= {m.name for m in pkgutil.iter_modules(e.__path__)}
