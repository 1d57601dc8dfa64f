"""`python -m kiwi_platform.training`: the launcher entry point (torchrun / accelerate launch / Pipes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kiwi_platform.training.fixtures import TrainingFixture

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kiwi_platform.training", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_cli_trains_and_prints_json_lines(training_data: TrainingFixture, tmp_path: Path) -> None:
    """A JSON config trains a stage; stdout is one JSON event per line ending with 'done'."""
    cfg = tmp_path / "stage1.json"
    cfg.write_text(json.dumps({"stage": 1, "frames": 5, "max_steps": 2, "lr": 1e-3}))
    proc = _run(str(cfg), str(training_data.manifest), str(training_data.data_root), str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events if e["event"] == "step"] == ["step", "step"]
    assert events[-1]["event"] == "done" and events[-1]["steps"] == 2
    assert (tmp_path / "out" / "final" / "transformer").is_dir()


def test_cli_user_errors_are_one_line(training_data: TrainingFixture, tmp_path: Path) -> None:
    """A bad config or a missing manifest prints `error: ...` on one line and exits 2, no traceback."""
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"stage": 1, "frames": 6}))
    proc = _run(str(cfg), str(training_data.manifest), str(training_data.data_root), str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: bad training config") and "frames" in proc.stderr
    assert "Traceback" not in proc.stderr
    cfg.write_text(json.dumps({"stage": 1, "frames": 5}))
    proc = _run(str(cfg), str(tmp_path / "missing.parquet"), str(training_data.data_root), str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr.strip().endswith("does not exist")
    assert len(proc.stderr.strip().splitlines()) == 1
