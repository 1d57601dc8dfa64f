"""Exact resume: a crash, a corrupt checkpoint or SIGTERM, then `train` again = the uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiwi_platform.training import ResumeMismatch, train
from kiwi_platform.training.checkpoint import MANIFEST, verify
from kiwi_platform.training.fixtures import TrainingFixture

from .conftest import fast_config

STEPS = 6


class CrashAt:
    """Raises inside the step callback, after the step ran but before any later checkpoint."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, step: int, metrics: dict) -> None:
        if step == self.step:
            raise RuntimeError(f"simulated crash at step {step}")


@pytest.fixture(scope="module")
def straight(training_data: TrainingFixture, tmp_path_factory: pytest.TempPathFactory):
    """The uninterrupted reference run (6 steps, checkpoints every 2)."""
    out = tmp_path_factory.mktemp("straight")
    return train(fast_config(max_steps=STEPS), training_data.manifest, training_data.data_root, out)


def test_crash_then_resume_reproduces_the_loss_curve(straight, training_data: TrainingFixture, tmp_path: Path) -> None:
    """Crash after step 3 (checkpoint at 2), train again: losses and final weights equal the straight run."""
    cfg = fast_config(max_steps=STEPS)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, training_data.manifest, training_data.data_root, tmp_path, callbacks=CrashAt(3))
    assert not (tmp_path / "final").exists()
    resumed = train(cfg, training_data.manifest, training_data.data_root, tmp_path)
    assert resumed.resumed_from and resumed.resumed_from.endswith("step-2")
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-6, abs=1e-8)
    assert resumed.trainable_sha256 == straight.trainable_sha256
    assert len(set(round(x, 6) for x in straight.losses)) > 1  # the curve is not constant


def test_corrupt_checkpoint_is_skipped_with_a_message(straight, training_data: TrainingFixture, tmp_path: Path) -> None:
    """A damaged newest checkpoint is reported and skipped; training resumes from the one before it."""
    cfg = fast_config(max_steps=STEPS, keep_checkpoints=3)
    with pytest.raises(RuntimeError):
        train(cfg, training_data.manifest, training_data.data_root, tmp_path, callbacks=CrashAt(5))
    newest = tmp_path / "checkpoints" / "step-4"
    assert verify(newest) is None
    blob = newest / "optimizer.pt"
    blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 2])  # a partial write
    partial = tmp_path / "checkpoints" / "step-9"  # a folder that never got its manifest
    partial.mkdir()
    (partial / "state.json").write_text("{}")
    warnings: list[str] = []

    class Warn:
        def on_warning(self, message: str) -> None:
            warnings.append(message)

    resumed = train(cfg, training_data.manifest, training_data.data_root, tmp_path, callbacks=Warn())
    assert any("step-4" in w and "optimizer.pt" in w for w in warnings)
    assert any("step-9" in w and MANIFEST in w for w in warnings)
    assert resumed.resumed_from.endswith("step-2")
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-6, abs=1e-8)


def test_finished_run_is_not_retrained_and_other_configs_are_refused(straight, training_data: TrainingFixture) -> None:
    """Calling train again on a finished folder returns at once; a different LR into it is refused."""
    out = straight.final_dir.parent
    again = train(fast_config(max_steps=STEPS), training_data.manifest, training_data.data_root, out)
    assert again.steps == STEPS and again.losses == straight.losses and again.resumed_from
    with pytest.raises(ResumeMismatch, match="another config"):
        train(fast_config(max_steps=STEPS, lr=5e-4), training_data.manifest, training_data.data_root, out)


_CHILD = """
import json, sys, time
from pathlib import Path
from kiwi_platform.training import TrainConfig, TrainingInterrupted, train
cfg = TrainConfig(**json.loads(sys.argv[1]))
out = Path(sys.argv[4])
class Slow:
    def on_step(self, step, metrics):
        (out / f"step{step}.done").touch()
        time.sleep(0.3)  # leave the parent time to signal while a run is in flight
try:
    train(cfg, sys.argv[2], sys.argv[3], out, callbacks=Slow())
except TrainingInterrupted as exc:
    print("INTERRUPTED", exc.step, exc.checkpoint, flush=True)
    sys.exit(0)
print("FINISHED", flush=True)
"""


@pytest.mark.slow
def test_sigterm_finishes_the_step_saves_and_resumes_exactly(
    straight, training_data: TrainingFixture, tmp_path: Path
) -> None:
    """SIGTERM mid-run: the child checkpoints the step it was on and exits 0; resuming matches the straight run."""
    cfg = fast_config(max_steps=STEPS, checkpoint_every=100)  # only the signal triggers a mid-run checkpoint
    out = tmp_path / "run"
    out.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CHILD,
            json.dumps(cfg.model_dump(mode="json")),
            str(training_data.manifest),
            str(training_data.data_root),
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    deadline = time.time() + 120
    while not (out / "step2.done").exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline, "child never reached step 2"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-2000:]
    assert "INTERRUPTED" in stdout, stdout + stderr[-2000:]
    stopped_at = int(stdout.split("INTERRUPTED")[1].split()[0])
    assert 2 <= stopped_at < STEPS
    assert (out / "checkpoints" / f"step-{stopped_at}").is_dir()
    assert not list((out / "checkpoints").glob(".tmp-*"))
    resumed = train(cfg, training_data.manifest, training_data.data_root, out)
    assert resumed.resumed_from.endswith(f"step-{stopped_at}")
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5, abs=1e-7)
