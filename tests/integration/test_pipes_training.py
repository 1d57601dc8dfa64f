"""The training loop behind Dagster Pipes: the path a Kubernetes pod takes, run as a local subprocess."""

import sys

import dagster as dg


def test_training_stage_runs_through_dagster_pipes(tmp_path, demo_dir):
    """A Pipes launcher (here a subprocess, in production PipesK8sClient) runs the unchanged training
    loop from `extras`; Dagster receives the materialization with steps, losses and the checkpoint."""
    from kiwi_platform.training import TrainConfig
    from kiwi_platform.training.fixtures import make_training_manifest

    fixture = make_training_manifest(tmp_path / "data", 4, frames=5, demo_dir=demo_dir)
    config = TrainConfig(stage=1, max_steps=2, checkpoint_every=1, frames=5, seed=0)

    @dg.asset
    def stage1_via_pipes(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient):
        return pipes.run(
            context=context,
            command=[sys.executable, "-m", "kiwi_platform.pipes.train_pod"],
            extras={
                "train_config": config.model_dump(mode="json"),
                "manifest": str(fixture.manifest),
                "data_root": str(fixture.data_root),
                "output_dir": str(tmp_path / "out"),
            },
        ).get_materialize_result()

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([stage1_via_pipes], resources={"pipes": dg.PipesSubprocessClient()}, instance=instance)
    assert result.success
    mat = result.asset_materializations_for_node("stage1_via_pipes")[0]
    assert mat.metadata["steps"].value == 2
    assert (tmp_path / "out" / "final" / "model_index.json").exists()
    assert mat.metadata["checkpoint_dir"].value == str(tmp_path / "out" / "final")
