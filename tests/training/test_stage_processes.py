"""A stage asset with `processes: N` launches torchrun from its own Dagster step (FSDP2 on gloo here)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from kiwi_platform.lib.materializations import latest_metadata
from kiwi_platform.training.fixtures import TrainingFixture

STEPS = 3
FSDP = {"distributed": "fsdp", "height": 32, "width": 32, "eval_every": 0, "register_model": False}


def _run_config(**fields) -> dict:
    return {"ops": {"stage1_checkpoint": {"config": {**FSDP, **fields}}}}


@pytest.mark.slow
def test_two_processes_from_the_stage_asset_match_one_process(
    stage_platform, training_data: TrainingFixture, tmp_path: Path
) -> None:
    """`processes: 2` in the Launchpad trains stage 1 on two torchrun ranks from the Dagster step: the step
    succeeds, MLflow gets every step's loss as from an in-process run, and the losses equal a one-process
    FSDP2 run of the same config and global batch (fp32, 1e-5)."""
    from assets.training import StageConfig
    from kiwi_platform.runner import materialize
    from kiwi_platform.training.sharded import train_sharded
    from kiwi_platform.training.stage_run import build_train_config

    defs, resources, instance = stage_platform
    fields = {"max_steps": STEPS, "checkpoint_every": STEPS, "global_batch": 2}
    [outcome] = materialize("stage1_checkpoint", defs=defs, run_config=_run_config(processes=2, **fields))
    assert outcome.ok, outcome.errors
    meta = latest_metadata(instance, "stage1_checkpoint")
    client = resources["tracking"].client()
    run = client.get_run(meta["mlflow_run_id"])
    two = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "loss"), key=lambda m: m.step)]
    assert len(two) == STEPS
    assert Path(str(meta["checkpoint_dir"]), "model_index.json").is_file()

    init = Path(run.data.tags["kiwi.init_checkpoint"])
    config = build_train_config(1, StageConfig(**FSDP, **fields), init)
    one = train_sharded(config, training_data.manifest, training_data.data_root, tmp_path / "one", global_batch=2)
    assert max(abs(a - b) for a, b in zip(two, one.losses, strict=True)) < 1e-5


@pytest.mark.slow
def test_a_failing_rank_fails_the_step_with_its_one_line(stage_platform) -> None:
    """A global batch the 2 ranks cannot split fails the Dagster step with the rank's own one-line reason
    (both numbers named), not torchrun's traceback, and registers nothing."""
    from kiwi_platform.runner import materialize

    defs, _, instance = stage_platform
    [outcome] = materialize(
        "stage1_checkpoint", defs=defs, run_config=_run_config(processes=2, max_steps=1, global_batch=3)
    )
    assert not outcome.ok
    message = " ".join(outcome.errors)
    assert "global batch 3" in message and "world size 2" in message
    assert "Traceback" not in message
    assert instance.get_latest_materialization_event(dg.AssetKey("stage1_checkpoint")) is None
