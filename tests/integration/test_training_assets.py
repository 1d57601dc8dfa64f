"""Three-stage training assets materialized for real (tiny model, CPU, two steps per stage): MLflow
runs nested under one pipeline run, `kiwi-edit` model versions with lineage tags, loadable
checkpoints, metadata that links back, and a clear failure when the previous stage is gone."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml

from kiwi_platform.lib import mlflow_tags, shards
from kiwi_platform.runner import materialize
from tests.integration.test_refvie_assets import FULL_RUN_CONFIG, STAGE_CONFIG, entered, graph_metadata, shared_graph

STAGES = (1, 2, 3)


@pytest.fixture(scope="module")
def graph(tmp_path_factory, small_synth):
    g = shared_graph(tmp_path_factory, small_synth)
    with entered(g) as instance:
        yield g, instance


def _versions(g) -> dict[int, object]:
    """Model versions of the graph run by stage, read from the registry (not from the assets)."""
    client = g.resources["tracking"].client()
    run_id = g.global_outcome.run_id
    found = client.search_model_versions("name='kiwi-edit'")
    by_stage = {}
    for mv in found:
        if mv.tags.get(mlflow_tags.DAGSTER_RUN_ID) == run_id:
            stage = int(mv.tags[mlflow_tags.STAGE])
            assert stage not in by_stage, f"stage {stage} registered twice by one run"
            by_stage[stage] = mv
    return by_stage


@pytest.mark.slow
def test_stages_materialize_and_register_models_with_lineage_tags(graph):
    """training_manifests and stage1..3 materialize in one run; each stage registers a `kiwi-edit`
    version tagged with its stage, Dagster run id, asset key, the manifests' DVC md5, the code git
    sha, its checkpoint folder, and (stages 2-3) the previous stage's model URI."""
    g, instance = graph
    outcome = g.global_outcome
    assert outcome.ok, outcome.errors
    assert {"training_manifests", *(f"stage{s}_checkpoint" for s in STAGES)} <= set(outcome.materialized)
    manifests = graph_metadata(instance, g, "training_manifests")
    pointer = g.resources["store"].root_path / f"{manifests['dvc_path']}.dvc"
    assert yaml.safe_load(pointer.read_text())["outs"][0]["md5"] == manifests["dvc_md5"]
    versions = _versions(g)
    assert sorted(versions) == list(STAGES)
    for stage, mv in versions.items():
        tags = mv.tags
        assert tags[mlflow_tags.ASSET_KEY] == f"stage{stage}_checkpoint"
        assert tags[mlflow_tags.MANIFEST_DVC_MD5] == manifests["dvc_md5"]
        # a content-addressed snapshot: stageN.parquet is rebuilt by every training_manifests run
        assert (
            tags[mlflow_tags.MANIFEST_PATH]
            == f"training/manifests/history/stage{stage}-{tags[mlflow_tags.MANIFEST_SHA256][:16]}.parquet"
        )
        assert _is_commit(tags[mlflow_tags.CODE_GIT_SHA]), tags[mlflow_tags.CODE_GIT_SHA]
        assert tags[mlflow_tags.CODE_DIRTY] in ("true", "false")
        assert Path(tags[mlflow_tags.CHECKPOINT_DIR]).is_dir()
        assert tags[mlflow_tags.RUN_ID] == mv.run_id
        if stage == 1:
            assert not tags.get(mlflow_tags.PARENT_MODEL_URI)
        else:
            parent = versions[stage - 1]
            assert tags[mlflow_tags.PARENT_MODEL_URI] == f"models:/kiwi-edit/{parent.version}"
            assert tags[mlflow_tags.PARENT_RUN_ID] == parent.run_id
            assert tags["kiwi.init_checkpoint"] == parent.tags[mlflow_tags.CHECKPOINT_DIR]
    assert len({mv.tags[mlflow_tags.CHECKPOINT_DIR] for mv in versions.values()}) == 3


def _is_commit(sha: str) -> bool:
    """A full sha of a commit in this checkout (HEAD may have moved on since training)."""
    import re
    import subprocess

    root = Path(__file__).parents[2]
    ok = subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=root, capture_output=True)
    return bool(re.fullmatch(r"[0-9a-f]{40}", sha)) and ok.returncode == 0


@pytest.mark.slow
def test_stage_runs_are_nested_under_one_pipeline_run_and_log_loss_per_step(graph):
    """The three stage runs share one MLflow parent run tagged with the Dagster run id, and each logs
    `loss` at every training step (1..max_steps) plus its parameters and code sha."""
    g, _ = graph
    client = g.resources["tracking"].client()
    versions = _versions(g)
    runs = {s: client.get_run(mv.run_id) for s, mv in versions.items()}
    parents = {r.data.tags.get("mlflow.parentRunId") for r in runs.values()}
    assert len(parents) == 1 and None not in parents
    pipeline = client.get_run(parents.pop())
    assert pipeline.data.tags[mlflow_tags.DAGSTER_RUN_ID] == g.global_outcome.run_id
    assert pipeline.data.tags.get("kiwi.role") == "pipeline"
    for stage, run in runs.items():
        assert run.data.tags.get("kiwi.role") == "stage" and run.info.run_name == f"stage{stage}"
        history = client.get_metric_history(run.info.run_id, "loss")
        assert sorted(m.step for m in history) == list(range(1, STAGE_CONFIG["max_steps"] + 1)), stage
        assert all(m.value == m.value and m.value > 0 for m in history)
        assert run.data.params["stage"] == str(stage)
        assert run.data.params["max_steps"] == str(STAGE_CONFIG["max_steps"])
        assert run.data.params["code_git_sha"] == versions[stage].tags[mlflow_tags.CODE_GIT_SHA]


@pytest.mark.slow
def test_checkpoints_load_and_metadata_links_to_mlflow(graph):
    """Each stage's materialization names its MLflow run and model version; the checkpoint folder
    loads with KiwiEditPipeline.from_pretrained; stage 1 leaves the DiT frozen and stage 2 trains it."""
    import torch

    from model import KiwiEditPipeline

    g, instance = graph
    versions = _versions(g)
    pipes = {}
    for stage in STAGES:
        meta = graph_metadata(instance, g, f"stage{stage}_checkpoint")
        mv = versions[stage]
        assert meta["mlflow_run_id"] == mv.run_id
        assert meta["model_version"] == str(mv.version)
        assert meta["model_uri"] == f"models:/kiwi-edit/{mv.version}"
        assert meta["steps"] == STAGE_CONFIG["max_steps"]
        assert str(meta["checkpoint_dir"]) == mv.tags[mlflow_tags.CHECKPOINT_DIR]
        assert meta["mlflow_run"].endswith(mv.run_id)
        pipes[stage] = KiwiEditPipeline.from_pretrained(meta["checkpoint_dir"])
    base = KiwiEditPipeline.from_pretrained(versions[1].tags["kiwi.init_checkpoint"])

    def dit(p):
        return {k: v.detach().clone() for k, v in p.transformer.state_dict().items()}

    b, s1, s2 = dit(base), dit(pipes[1]), dit(pipes[2])
    assert all(torch.equal(b[k], s1[k]) for k in b), "stage 1 changed the frozen DiT"
    assert any(not torch.equal(s1[k], s2[k]) for k in s1), "stage 2 did not train the DiT"


@pytest.mark.slow
def test_stage2_without_stage1_checkpoint_fails_with_a_clear_message(graph):
    """If stage 1's checkpoint folder is gone, re-materializing stage 2 fails with one readable line
    naming the folder and the fix; no MLflow run or model version is created."""
    g, _ = graph
    client = g.resources["tracking"].client()
    folder = Path(_versions(g)[1].tags[mlflow_tags.CHECKPOINT_DIR])
    before_versions = len(client.search_model_versions("name='kiwi-edit'"))
    exp = g.resources["tracking"].experiment_id()
    before_runs = len(client.search_runs([exp]))
    moved = folder.with_name(folder.name + ".moved-by-test")
    folder.rename(moved)
    try:
        [outcome] = materialize("stage2_checkpoint", defs=g.defs, run_config=FULL_RUN_CONFIG)
    finally:
        moved.rename(folder)
    assert not outcome.ok and outcome.materialized == []
    assert outcome.failed_steps == ["stage2_checkpoint"]
    [error] = outcome.errors
    last = error.splitlines()[-1]
    assert "stage 1 checkpoint folder" in last and str(folder) in last and "stage1_checkpoint" in last, last
    assert "Traceback" not in error and 'File "' not in error
    assert len(client.search_model_versions("name='kiwi-edit'")) == before_versions
    assert len(client.search_runs([exp])) == before_runs


def _tree_digest(folder: Path) -> dict[str, str]:
    import hashlib

    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.slow
def test_training_a_stage_longer_keeps_the_registered_checkpoint_intact(graph):
    """Re-materializing stage 3 with one more step registers a new version without changing the files
    behind the version registered before (a registered model's checkpoint folder is immutable; the
    champion is re-scored from it)."""
    g, instance = graph
    old = _versions(g)[3]
    folder = Path(old.tags[mlflow_tags.CHECKPOINT_DIR])
    before = _tree_digest(folder)
    longer = {"ops": {"stage3_checkpoint": {"config": {**STAGE_CONFIG, "max_steps": STAGE_CONFIG["max_steps"] + 1}}}}
    [outcome] = materialize("stage3_checkpoint", defs=g.defs, run_config=longer)
    assert outcome.ok, outcome.errors
    client = g.resources["tracking"].client()
    new = max(client.search_model_versions("name='kiwi-edit'"), key=lambda mv: int(mv.version))
    assert new.version != old.version and new.tags[mlflow_tags.STAGE] == "3"
    assert _tree_digest(folder) == before, (
        f"registered v{old.version}'s checkpoint {folder} was rewritten by v{new.version}"
    )
    assert new.tags[mlflow_tags.CHECKPOINT_DIR] != old.tags[mlflow_tags.CHECKPOINT_DIR]


@contextlib.contextmanager
def _manifests_restored(g):
    """Put the graph's training manifests back (rebuilt from the batch, bytes checked) when the block ends."""
    import shutil

    folder = g.resources["store"].root_path / "training" / "manifests"
    backup = folder.with_name("manifests.backup-by-test")
    shutil.copytree(folder, backup)
    try:
        yield folder
    finally:  # the exact folder (history snapshots included), then its DVC version again
        shutil.rmtree(folder)
        shutil.copytree(backup, folder)
        [restored] = materialize("training_manifests", defs=g.defs)
        assert restored.ok, restored.errors
        shutil.rmtree(backup)


@pytest.mark.slow
def test_changed_clip_stops_training_manifests_and_keeps_the_old_ones(graph):
    """If a clip a quadruplet points at changed after QC, training_manifests fails naming the file and
    the fix, and the stage manifests already on disk are left as they were."""
    from tests.integration.test_refvie_assets import BATCH, sha256

    g, _ = graph
    store = g.resources["store"]
    clip = store.read_table(BATCH, "quadruplets")["tgt_clip"].iloc[0]
    path = shards.holder(store.root_path / clip)  # the clip is a member of a shard: change one of its bytes
    member = shards.read_bytes(store.root_path / clip)
    folder = store.root_path / "training" / "manifests"
    before = {p.name: sha256(p) for p in folder.glob("*.parquet")}
    original = path.read_bytes()
    at = original.index(member) + len(member) // 2
    path.write_bytes(original[:at] + bytes([original[at] ^ 0xFF]) + original[at + 1 :])
    try:
        [outcome] = materialize("training_manifests", defs=g.defs)
    finally:
        path.write_bytes(original)
    assert not outcome.ok and outcome.failed_steps == ["training_manifests"]
    [error] = outcome.errors
    assert clip in error and "re-materialize quadruplets" in error and "Traceback" not in error, error
    assert {p.name: sha256(p) for p in folder.glob("*.parquet")} == before


@pytest.mark.slow
def test_stage1_on_an_empty_manifest_fails_clearly_without_registering(graph):
    """Training on a manifest with no samples (no batch selected) stops with one readable line and
    registers no model version."""
    g, _ = graph
    client = g.resources["tracking"].client()
    versions_before = len(client.search_model_versions("name='kiwi-edit'"))
    empty = {"ops": {"training_manifests": {"config": {"batches": ["no-such-batch"]}}, **FULL_RUN_CONFIG["ops"]}}
    with _manifests_restored(g):
        [built] = materialize("training_manifests", defs=g.defs, run_config=empty)
        assert built.ok, built.errors
        [outcome] = materialize("stage1_checkpoint", defs=g.defs, run_config=FULL_RUN_CONFIG)
    assert not outcome.ok and outcome.failed_steps == ["stage1_checkpoint"]
    [error] = outcome.errors
    assert "stage 1" in error and ("no rows" in error or "empty" in error.lower()) and "Traceback" not in error, error
    assert len(client.search_model_versions("name='kiwi-edit'")) == versions_before


@pytest.mark.slow
def test_rematerializing_unchanged_training_reuses_the_registered_versions(graph):
    """Running the training stages again with the same config, data and start point retrains nothing
    and registers no duplicate versions: each stage points at the version it registered before."""
    g, instance = graph
    client = g.resources["tracking"].client()
    before = {mv.version for mv in client.search_model_versions("name='kiwi-edit'")}
    [outcome] = materialize(
        "key:stage1_checkpoint or key:stage2_checkpoint or key:stage3_checkpoint",
        defs=g.defs,
        run_config=FULL_RUN_CONFIG,
    )
    assert outcome.ok, outcome.errors
    assert {mv.version for mv in client.search_model_versions("name='kiwi-edit'")} == before
    first = _versions(g)
    import dagster as dg

    for stage in STAGES:
        event = instance.get_latest_materialization_event(dg.AssetKey(f"stage{stage}_checkpoint"))
        assert event.run_id == outcome.run_id
        meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        assert meta["reused_existing_version"] is True
        assert meta["model_version"] == str(first[stage].version)
