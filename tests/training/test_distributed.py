"""Data parallel training with 2 CPU processes (gloo) under torchrun keeps the replicas identical."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kiwi_platform.training import train
from kiwi_platform.training.fixtures import TrainingFixture
from tests.training.launch import dist_env, torchrun

from .conftest import fast_config


@pytest.mark.slow
def test_two_gloo_processes_stay_in_sync(training_data: TrainingFixture, tmp_path: Path) -> None:
    """Both ranks end with the same trainable weights after 2 steps, and those differ from a 1-process run
    (each rank trained on its own samples and the gradients were averaged)."""
    cfg = fast_config(stage=2, max_steps=2, checkpoint_every=1)
    out = tmp_path / "ddp"
    proc = subprocess.run(
        torchrun(
            str(Path(__file__).with_name("dist_worker.py")),
            json.dumps(cfg.model_dump(mode="json")),
            str(training_data.manifest),
            str(training_data.data_root),
            str(out),
        ),
        capture_output=True,
        text=True,
        timeout=300,
        env=dist_env(),
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["sha"] == ranks[1]["sha"]
    assert ranks[0]["samples_seen"] == 2 * 2 * 2  # steps x mix cycle x processes
    ckpt = out / "checkpoints" / "step-2"
    assert (ckpt / "rng-rank0.pt").is_file() and (ckpt / "rng-rank1.pt").is_file()
    single = train(cfg, training_data.manifest, training_data.data_root, tmp_path / "single")
    assert single.trainable_sha256 != ranks[0]["sha"]
