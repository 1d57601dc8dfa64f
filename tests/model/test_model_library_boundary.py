"""`model` is a plain library: importing and using it never pulls in the platform's orchestration stack."""

from __future__ import annotations

import subprocess
import sys


def test_model_does_not_import_platform_packages():
    """Building a tiny pipeline imports no dagster, mlflow, dvc, lakefs, kiwi_platform or assets module."""
    code = (
        "import sys\n"
        "import model\n"
        "from model.build import build_pipeline\n"
        "from model.training import compute_loss\n"
        "build_pipeline('tiny')\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'mlflow', 'dvc', 'lakefs', 'kiwi_platform', 'assets'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
