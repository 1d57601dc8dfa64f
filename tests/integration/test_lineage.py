"""`kiwi lineage` on the champion the real graph produced: the chain down to raw files, and
`--verify` catching a raw source file changed after training."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.test_cli import kiwi
from tests.integration.test_refvie_assets import BATCH, entered, graph_metadata, latest_metadata, sha256, shared_graph

CHAMPION = "models:/kiwi-edit@champion"


@pytest.fixture(scope="module")
def graph(tmp_path_factory, small_synth):
    g = shared_graph(tmp_path_factory, small_synth)
    with entered(g) as instance:
        yield g, instance


def _lineage(g, *args: str) -> tuple[int, dict, str]:
    proc = kiwi("lineage", CHAMPION, "--json", *args, home=g.home)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout), proc.stderr


@pytest.mark.slow
def test_lineage_json_walks_champion_down_to_raw_files(graph):
    """`kiwi lineage models:/kiwi-edit@champion --json` names stages 3, 2, 1 with their model versions
    and MLflow runs, each stage's training manifest with its DVC md5, the synthetic batch, and the
    raw source/target files with their sha256."""
    g, instance = graph
    assert g.global_outcome.ok, g.global_outcome.errors
    code, data, err = _lineage(g)
    assert code == 0, err[-2000:]
    stage_meta = {s: graph_metadata(instance, g, f"stage{s}_checkpoint") for s in (1, 2, 3)}
    manifests = graph_metadata(instance, g, "training_manifests")
    assert data["version"] == stage_meta[3]["model_version"] and "champion" in data["aliases"]
    assert data["promotion"] == "promoted"
    assert [s["stage"] for s in data["stages"]] == [3, 2, 1]
    for st in data["stages"]:
        meta = stage_meta[st["stage"]]
        assert st["model_version"] == meta["model_version"] and st["run_id"] == meta["mlflow_run_id"]
        assert st["checkpoint_dir"] == str(meta["checkpoint_dir"])
        assert st["manifest_dvc_md5"] == manifests["dvc_md5"] and st["data_repo_rev"]
        # the content-addressed snapshot of the manifest the stage trained on (stageN.parquet gets rebuilt)
        assert re.search(
            rf"training/manifests/history/stage{st['stage']}-[0-9a-f]{{16}}\.parquet$", st["manifest"]["path"]
        )
        assert st["manifest"]["sha256"] == sha256(Path(st["manifest"]["path"]))
        assert len(st["code_git_sha"]) == 40 and st["params"]["stage"] == str(st["stage"])
    assert data["evaluation"], "the champion's eval metrics are part of its lineage"
    [batch] = data["batches"]
    assert batch["batch"] == BATCH
    store = g.resources["store"]
    assert batch["quadruplets_dvc_md5"] == latest_metadata(instance, "quadruplets")["dvc_md5"]
    assert batch["raw_dvc_md5"] == latest_metadata(instance, "raw_edit_pairs")["dvc_md5"]
    used = set()
    for s in (1, 2, 3):
        used |= set(pd.read_parquet(store.root_path / f"training/manifests/stage{s}.parquet")["pair_id"])
    assert batch["samples_used"] == len(used)
    raw = store.read_table(BATCH, "raw_edit_pairs")
    if "src_path" not in raw:  # the table names files relative to the batch's base folder
        from kiwi_platform.ingestion.origins import with_source_paths

        raw = with_source_paths(raw, store.batch_dir(BATCH))
    raw = raw[raw["pair_id"].isin(used)]
    listed = {f["path"]: f for f in batch["files"]}
    for rec in raw.to_dict("records"):
        for role in ("src", "tgt"):
            entry = listed[rec[f"{role}_path"]]
            assert entry["role"] == f"raw {role}" and entry["sha256"] == rec[f"{role}_sha256"]
            assert entry["sha256"] == sha256(Path(rec[f"{role}_path"]))
            assert entry["path"].startswith(str(g.media))  # the user's original files, not only our copies
    assert any(f["role"] == "raw manifest" for f in batch["files"])
    assert data["mismatches"] == []


@pytest.mark.slow
def test_verify_passes_on_intact_data_and_names_a_corrupted_raw_file(graph):
    """`kiwi lineage --verify` exits 0 when every reachable file matches its recorded sha256; after one
    original source file gets an extra byte it exits 1 and names exactly that file as a mismatch."""
    g, _ = graph
    code, data, err = _lineage(g, "--verify")
    assert code == 0, (data.get("mismatches"), err[-2000:])
    statuses = [f["status"] for b in data["batches"] for f in b["files"]] + [
        s["manifest"]["status"] for s in data["stages"]
    ]
    assert statuses and set(statuses) == {"ok"}
    victim = next(f["path"] for f in data["batches"][0]["files"] if f["role"] == "raw src")
    with open(victim, "rb") as fh:
        original = fh.read()
    with open(victim, "ab") as fh:
        fh.write(b"\0")
    try:
        code, data, err = _lineage(g, "--verify")
    finally:
        with open(victim, "wb") as fh:
            fh.write(original)
    assert code == 1, err[-2000:]
    assert data["mismatches"] == [victim]
    [entry] = [f for f in data["batches"][0]["files"] if f["path"] == victim]
    assert entry["status"] == "mismatch"


@pytest.mark.slow
def test_a_changed_checkpoint_file_fails_verify_and_is_refused_by_kiwi_edit(graph, demo_video, tmp_path):
    """Every file of each stage's checkpoint is listed with its sha256 and verified; after one weight file
    of the champion changes, `--verify` exits 1 naming it and `kiwi edit` refuses that checkpoint in one line."""
    g, _ = graph
    code, data, err = _lineage(g, "--verify")
    assert code == 0, (data.get("mismatches"), err[-2000:])
    for stage in data["stages"]:
        roles = [f["role"] for f in stage["checkpoint_files"]]
        assert roles[0] == "checkpoint manifest" and roles.count("checkpoint file") >= 5, roles
        assert {f["status"] for f in stage["checkpoint_files"]} == {"ok"}
    champion = data["stages"][0]
    victim = next(f["path"] for f in champion["checkpoint_files"] if f["path"].endswith(".safetensors"))
    original = Path(victim).read_bytes()
    Path(victim).write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # same size, one bit flipped
    try:
        code, data, err = _lineage(g, "--verify")
        edit = kiwi(
            "edit",
            "--checkpoint",
            champion["checkpoint_dir"],
            "--video",
            str(demo_video),
            "--prompt",
            "make it red",
            "--out",
            str(tmp_path / "out.mp4"),
            home=g.home,
        )
    finally:
        Path(victim).write_bytes(original)
    assert code == 1 and victim in data["mismatches"], err[-2000:]
    assert edit.returncode != 0 and "Traceback" not in edit.stderr
    assert "modified after it was registered" in edit.stderr and Path(victim).name in edit.stderr
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
def test_lineage_tree_output_for_people(graph):
    """Without --json the chain prints as a tree a person can read: model, stages, manifest, batch."""
    g, _ = graph
    proc = kiwi("lineage", CHAMPION, home=g.home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for needle in (
        "models:/kiwi-edit/",
        "champion",
        "stage 3:",
        "stage 2:",
        "stage 1:",
        "training manifest",
        "DVC md5",
        f"batch {BATCH}:",
        "raw src:",
    ):
        assert needle in out, needle
    assert out.index("stage 3:") < out.index("stage 2:") < out.index("stage 1:")


@pytest.mark.slow
def test_lineage_accepts_a_version_or_a_run_id(graph):
    """The same chain comes back for `models:/kiwi-edit/N` and for the stage's MLflow run id; a
    stage-1 model's lineage stops at stage 1."""
    from kiwi_platform.lineage.walk import build_lineage

    g, instance = graph
    tracking = g.resources["tracking"]
    meta3 = graph_metadata(instance, g, "stage3_checkpoint")
    by_uri = build_lineage(tracking, f"models:/kiwi-edit/{meta3['model_version']}")
    by_run = build_lineage(tracking, meta3["mlflow_run_id"])
    assert by_uri.version == by_run.version == meta3["model_version"]
    assert [s.run_id for s in by_uri.stages] == [s.run_id for s in by_run.stages]
    meta1 = graph_metadata(instance, g, "stage1_checkpoint")
    first = build_lineage(tracking, f"models:/kiwi-edit/{meta1['model_version']}")
    assert [s.stage for s in first.stages] == [1] and [b.batch for b in first.batches] == [BATCH]
    stage1_pairs = set(pd.read_parquet(g.resources["store"].root_path / "training/manifests/stage1.parquet")["pair_id"])
    assert first.batches[0].samples_used == len(stage1_pairs)


def test_unknown_model_is_a_one_line_error(kiwi_home):
    """An alias that does not exist gives `error: ...` and exit 2, not a traceback."""
    from kiwi_platform.resources.tracking import MlflowTracking

    kiwi_home.mkdir(parents=True, exist_ok=True)  # a tracking store that exists but has no such model
    MlflowTracking(
        tracking_uri=f"sqlite:///{kiwi_home / 'mlflow.db'}", artifact_root=str(kiwi_home / "a")
    ).experiment_id()
    proc = kiwi("lineage", "models:/kiwi-edit@nope", home=kiwi_home)
    assert proc.returncode == 2, (proc.stdout, proc.stderr[-2000:])
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "models:/kiwi-edit@nope" in last, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_champion_lineage_survives_a_rebuild_of_the_training_manifests(graph):
    """After training_manifests is materialized again with other data (here: no batch at all), the
    champion's lineage still names the batch and pairs it was trained on."""
    import shutil

    from kiwi_platform.lineage.walk import build_lineage
    from kiwi_platform.runner import materialize

    g, _ = graph
    tracking = g.resources["tracking"]
    before = build_lineage(tracking, CHAMPION)
    assert [b.batch for b in before.batches] == [BATCH]
    folder = g.resources["store"].root_path / "training" / "manifests"
    backup = folder.with_name("manifests.backup-by-test")
    shutil.copytree(folder, backup)
    try:
        no_batch = {"ops": {"training_manifests": {"config": {"batches": ["no-such-batch"]}}}}
        [outcome] = materialize("training_manifests", defs=g.defs, run_config=no_batch)
        assert outcome.ok, outcome.errors
        after = build_lineage(tracking, CHAMPION)
    finally:  # put the manifests (and their DVC version) back as the champion's training saw them
        shutil.rmtree(folder)
        shutil.copytree(backup, folder)
        [restored] = materialize("training_manifests", defs=g.defs)
        assert restored.ok, restored.errors
        shutil.rmtree(backup)
    assert [(b.batch, b.samples_used) for b in after.batches] == [(b.batch, b.samples_used) for b in before.batches]
