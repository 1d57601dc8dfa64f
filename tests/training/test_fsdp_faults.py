"""Faults of a 2-process FSDP2 job (gloo on CPU) that only a multi-rank run can show."""

import json
import subprocess
from pathlib import Path

import pytest

from kiwi_platform.training.checkpoint import checkpoints, verify
from kiwi_platform.training.fixtures import TrainingFixture
from tests.training.launch import dist_env, torchrun
from tests.training.test_fsdp_training import REPO, sharded_config


@pytest.mark.slow
def test_nan_on_one_rank_stops_every_rank_and_keeps_the_last_good_checkpoint(
    training_data: TrainingFixture, tmp_path: Path
) -> None:
    """A loss that turns NaN on rank 1 alone (at step 5) stops both ranks at that step instead of letting
    rank 0 train on or hang: the job exits 2 with one `error:` line naming the step and the kept
    checkpoint, step-3 stays visible and intact, and nothing newer or final is published."""
    out = tmp_path / "nan"
    cfg = sharded_config(max_steps=8, checkpoint_every=3)
    cfg_file = tmp_path / "config.json"
    cfg_file.write_text(json.dumps(cfg.model_dump(mode="json")))
    cmd = torchrun(
        str(Path(__file__).with_name("nan_rank.py")),
        str(cfg_file),
        str(training_data.manifest),
        str(training_data.data_root),
        str(out),
        "--global-batch",
        "2",
    )
    # one mix cycle is 2 forwards per rank per step: the 9th training forward is step 5's first
    env = {**dist_env(), "KIWI_TEST_NAN_RANK": "1", "KIWI_TEST_NAN_FROM": "9"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]  # printed once, by rank 0, though rank 1 saw the NaN
    assert "diverged at step 5" in errors[0] and "step-3" in errors[0]
    visible = checkpoints(out / "checkpoints")
    assert [c.name for c in visible] == ["step-3"]
    assert verify(visible[0]) is None
    assert not (out / "final").exists()
