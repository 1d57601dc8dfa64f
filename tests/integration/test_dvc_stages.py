"""The synthetic demo set as a DVC stage with its real inputs, and lineage through it.

Real DVC repo, real Dagster ingestion and a real MLflow registry in a temp KIWI_HOME; the demo
folder is copied so a test can change a clip.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kiwi_platform.lib import mlflow_tags
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.runner import materialize
from kiwi_platform.synth.stage import SYNTH_DIR, SYNTH_STAGE, reproduce_demo_set
from tests.integration.conftest import add_batch
from tests.integration.test_cli import kiwi

TINY = {"n": 3, "frames": 9, "height": 64, "width": 96}
RAW_ONLY = {"ops": {"raw_edit_pairs": {"config": {"min_frames": 9}}}}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_dvc_status_in_a_home_that_never_made_the_synthetic_set_reports_nothing_deleted(platform):
    """`kiwi dvc status` in a fresh home exits 0 and does not report `synth_demo` or a deleted
    output: the home never made that set, so the stage is not installed until it is made."""
    _, resources, _ = platform
    resources["dvc"].ensure()
    proc = kiwi("dvc", "status", home=resources["dvc"].root_path.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "deleted" not in proc.stdout and SYNTH_STAGE not in proc.stdout, proc.stdout


@pytest.fixture
def demo_copy(tmp_path: Path, demo_dir: Path) -> Path:
    """A writable copy of the demo folder (the shared one is read-only)."""
    copy = tmp_path / "kiwi_demo"
    shutil.copytree(demo_dir, copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


@pytest.mark.slow
def test_synth_stage_declares_clips_code_and_params_and_is_stale_when_a_clip_changes(platform, demo_copy):
    """After the demo set is made through its DVC stage, dvc.lock lists every demo clip and the
    generator's code as deps (md5 of the files as they are) and the generator params; `dvc status`
    is clean, a second reproduce changes nothing, and after one clip changes `dvc status` names it."""
    _, resources, _ = platform
    dvc = resources["dvc"]
    manifest = reproduce_demo_set(dvc, demo_copy, "test: synthetic pairs", TINY)
    assert manifest == dvc.root_path / SYNTH_DIR / "manifest.csv" and manifest.exists()
    locked = yaml.safe_load((dvc.root_path / "dvc.lock").read_text())["stages"][SYNTH_STAGE]
    deps = {Path(d["path"]): d["md5"] for d in locked["deps"]}
    clips = sorted((demo_copy / "video" / "source").glob("*.mp4"))
    assert clips and all(deps[c] == _md5(c) for c in clips)
    assert any(p.name == "writer.py" and p.parent.name == "synth" for p in deps)
    assert locked["params"]["params.yaml"][SYNTH_STAGE] == {
        **{"seed": 0, "image_share": 0.25},
        **TINY,
        "demo_dir": str(demo_copy.resolve()),
    }
    assert "--n 3" in locked["cmd"] and str(demo_copy.resolve()) in locked["cmd"]
    assert "up to date" in dvc.dvc("status").stdout
    rev = dvc.git("rev-parse", "HEAD").stdout
    reproduce_demo_set(dvc, demo_copy, "test: again", TINY)
    assert dvc.git("rev-parse", "HEAD").stdout == rev  # nothing changed, nothing rebuilt or committed
    with open(clips[0], "ab") as fh:
        fh.write(b"\0")
    status = dvc.dvc("status").stdout
    assert SYNTH_STAGE in status and str(clips[0]) in status and "modified" in status, status


def _register_model_trained_on(tracking, repo: Path, batch: str, pair_ids: list[str]) -> None:
    """A registered `kiwi-edit` version (alias champion) tagged as a training stage tags it: the
    training manifest it read (batch + pair ids, in the data repo) and the data repo."""
    manifest = repo / "training" / "manifests" / "history" / "stage1-test.parquet"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"batch": [batch] * len(pair_ids), "pair_id": pair_ids}).to_parquet(manifest)
    tags = {
        mlflow_tags.STAGE: "1",
        mlflow_tags.DATA_REPO: str(repo),
        mlflow_tags.MANIFEST_PATH: str(manifest.relative_to(repo)),
        mlflow_tags.MANIFEST_SHA256: sha256_file(manifest),
    }
    client = tracking.client()
    with tracking.start_run("stage1", tags=tags) as run:
        run_id = run.info.run_id
    client.create_registered_model(tracking.registered_model)
    version = client.create_model_version(tracking.registered_model, f"runs:/{run_id}/model", run_id, tags=tags)
    client.set_registered_model_alias(tracking.registered_model, "champion", version.version)


@pytest.mark.slow
def test_lineage_of_a_model_trained_on_the_synthetic_set_reaches_the_demo_clips(platform, demo_copy):
    """A model trained on the DVC-made synthetic batch: `kiwi lineage --json --verify` lists, under
    that batch, the `synth_demo` stage (command, params, output md5) and every demo clip it read
    with the clip's sha256, all verified ok; after one demo clip changes, `--verify` exits 1 and
    names that clip (the tree output shows the stage too)."""
    defs, resources, _ = platform
    dvc = resources["dvc"]
    manifest = reproduce_demo_set(dvc, demo_copy, "test: synthetic pairs", TINY)
    add_batch(platform, "synth-demo", manifest)
    [outcome] = materialize("raw_edit_pairs", ["synth-demo"], defs=defs, run_config=RAW_ONLY)
    assert outcome.ok, outcome.errors
    raw = resources["store"].read_table("synth-demo", "raw_edit_pairs")
    assert len(raw) == TINY["n"]
    _register_model_trained_on(resources["tracking"], dvc.root_path, "synth-demo", list(raw["pair_id"]))
    home = dvc.root_path.parent

    proc = kiwi("lineage", "models:/kiwi-edit@champion", "--json", "--verify", home=home)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    [batch] = data["batches"]
    [stage] = batch["generated_by"]
    locked = yaml.safe_load((dvc.root_path / "dvc.lock").read_text())["stages"][SYNTH_STAGE]
    assert stage["stage"] == SYNTH_STAGE and stage["cmd"] == locked["cmd"]
    assert stage["out_md5"] == locked["outs"][0]["md5"] and stage["params"][f"{SYNTH_STAGE}.n"] == TINY["n"]
    inputs = {Path(f["path"]): f for f in stage["inputs"]}
    clips = sorted((demo_copy / "video" / "source").glob("*.mp4"))
    for clip in clips:
        assert inputs[clip]["sha256"] == sha256_file(clip) and inputs[clip]["status"] == "ok"
    assert {f["status"] for f in stage["inputs"]} == {"ok"}  # code files verified by their DVC md5
    assert data["mismatches"] == []

    tree = kiwi("lineage", "models:/kiwi-edit@champion", home=home)
    assert f"made by DVC stage {SYNTH_STAGE}" in tree.stdout and clips[0].name in tree.stdout, tree.stdout

    with open(clips[0], "ab") as fh:
        fh.write(b"\0")
    proc = kiwi("lineage", "models:/kiwi-edit@champion", "--json", "--verify", home=home)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["mismatches"] == [str(clips[0])]
