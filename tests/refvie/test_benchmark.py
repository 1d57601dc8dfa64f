"""The fidelity benchmark runs end to end and reports every edit type and every target."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_writes_results(tmp_path):
    """`benchmarks/refvie_pipeline.py` on a tiny set prints its table and writes the JSON with all metrics."""
    out = tmp_path / "refvie.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "refvie_pipeline.py"),
            "--n",
            "12",
            "--frames",
            "5",
            "--height",
            "96",
            "--width",
            "160",
            "--factor-n",
            "0",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "pairs/min" in proc.stdout
    result = json.loads(out.read_text())
    assert set(result["per_type"]) == {
        "local_add",
        "local_replace",
        "local_remove",
        "recolor",
        "background_change",
        "global_style",
    }
    for row in result["per_type"].values():
        assert 0.0 <= row["mask_iou"] <= 1.0 and 0.0 <= row["type_correct"] <= 1.0
    assert result["summary"]["local_mask_iou_mean"] >= 0.8
    assert result["summary"]["duplicate_recall"] >= 0.9
    assert result["summary"]["pairs_per_min"] > 0
