"""`kiwi suite add` and `kiwi evaluate` as a user runs them: real CLI processes, DVC data repo, MLflow, fake judge."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.evaluation.released_fixtures import openve_bench, refvie_bench
from tests.fakes.openai_server import run_fake_openai
from tests.judge.upstream_answers import upstream_answer

KIWI = [sys.executable, "-m", "kiwi_platform"]
TINY = ["--height", "64", "--width", "96", "--frames", "5", "--steps", "2"]


def kiwi(*args: str, home: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "KIWI_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "COLUMNS": "200"}
    for var in ("KIWI_DATA_DIR", "KIWI_MLFLOW_TRACKING_URI", "KIWI_JUDGE_BASE_URL", "KIWI_JUDGE_MODEL"):
        full.pop(var, None)
    full.update(env or {})
    return subprocess.run([*KIWI, *args], env=full, capture_output=True, text=True, timeout=600)


def _register_champion(home: Path, checkpoint: Path) -> None:
    """A registered kiwi-edit version with the champion alias, its checkpoint frozen with a manifest (as training does)."""
    from kiwi_platform.lib import mlflow_tags
    from kiwi_platform.lib.checkpoint_manifest import write_checkpoint_manifest
    from kiwi_platform.lib.files import sha256_file
    from kiwi_platform.resources.tracking import MlflowTracking

    manifest = write_checkpoint_manifest(checkpoint)
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{home / 'mlflow.db'}", artifact_root=str(home / "mlflow-artifacts")
    )
    client = tracking.client()
    run = client.create_run(tracking.experiment_id())
    client.create_registered_model(tracking.registered_model)
    mv = client.create_model_version(tracking.registered_model, str(checkpoint), run_id=run.info.run_id)
    client.set_model_version_tag(tracking.registered_model, mv.version, mlflow_tags.CHECKPOINT_DIR, str(checkpoint))
    client.set_model_version_tag(
        tracking.registered_model, mv.version, mlflow_tags.CHECKPOINT_MANIFEST_SHA256, sha256_file(manifest)
    )
    client.set_registered_model_alias(tracking.registered_model, "champion", mv.version)


def _runs(home: Path) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps, "tags.`kiwi.kind` = 'standalone_evaluation'", order_by=["attribute.start_time ASC"])


@pytest.mark.slow
def test_register_then_evaluate_resume_and_score_the_champion(
    kiwi_home: Path, demo_dir: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """A released OpenVE-Bench folder registers (skips counted, DVC-tracked); `kiwi evaluate` scores a checkpoint
    folder with the judge, prints the table beside the paper's rows, resumes with cached outputs and judge answers,
    records an MLflow run each time, and scores `models:/kiwi-edit@champion`, refusing it once its files change."""
    csv, root = openve_bench(demo_dir, tmp_path / "released")
    added = kiwi(
        "suite",
        "add",
        "openve-mini",
        "--format",
        "openve-bench",
        "--file",
        str(csv),
        "--root",
        str(root),
        home=kiwi_home,
    )
    assert added.returncode == 0, added.stderr[-2000:]
    assert "2 cases from 4 rows" in added.stdout and "creative_edit x1, subtitle_edit x1" in added.stdout
    data = kiwi_home / "data"
    assert (data / "benchmarks/registered/openve-mini.dvc").is_file()
    log = subprocess.run(["git", "log", "--oneline"], cwd=data, capture_output=True, text=True).stdout
    assert "kiwi suite add openve-mini" in log

    answers = upstream_answer((4, 3, 2))  # mean 3.0; obeys the cap
    with run_fake_openai(answers) as fake:
        judge_env = {
            "KIWI_JUDGE_BASE_URL": fake.base_url,
            "KIWI_JUDGE_MODEL": "fake-vlm",
            "KIWI_JUDGE_API_KEY": fake.api_key,
        }
        first = kiwi(
            "evaluate",
            str(tiny_checkpoint),
            "--suite",
            "openve-mini",
            "--judge",
            "--limit",
            "1",
            *TINY,
            home=kiwi_home,
            env=judge_env,
        )
        assert first.returncode == 0, first.stderr[-2000:]
        assert "1 of 2 cases; generated 1, reused 0; judge fake-vlm: 1 calls, 0 cached" in first.stdout
        assert (
            fake.calls == 1
            and "Editing instruction is: Apply the Watercolor style to this video." in fake.requests[0].system
        )
        rest = kiwi(
            "evaluate", str(tiny_checkpoint), "--suite", "openve-mini", "--judge", *TINY, home=kiwi_home, env=judge_env
        )
        assert rest.returncode == 0, rest.stderr[-2000:]
        assert "2 of 2 cases; generated 1, reused 1; judge fake-vlm: 1 calls, 1 cached" in rest.stdout
        assert fake.calls == 2  # only the case the first run did not reach
    assert "### openve vs the published rows" in rest.stdout
    assert "Kiwi-Edit (Stage-3 Instruct-Reference, released) (5B, 1280×704) | 3.02" in rest.stdout
    assert "gap to the released Kiwi-Edit: overall -0.02" in rest.stdout  # 3.00 - 3.02
    assert "skipped as upstream does: {'creative_edit': 1, 'subtitle_edit': 1}" in rest.stdout
    runs = _runs(kiwi_home)
    assert len(runs) == 2 and runs[-1].data.metrics["eval/openve/overall"] == pytest.approx(3.0)
    assert runs[-1].data.tags["kiwi.eval.suite"] == "openve-mini" and runs[-1].data.params["limit"] == "None"

    frozen = tmp_path / "frozen"
    shutil.copytree(tiny_checkpoint, frozen)
    _register_champion(kiwi_home, frozen)
    champ = kiwi("evaluate", "models:/kiwi-edit@champion", "--suite", "openve-mini", *TINY, home=kiwi_home)
    assert champ.returncode == 0, champ.stderr[-2000:]
    assert "2 of 2 cases" in champ.stdout and _runs(kiwi_home)[-1].data.tags["kiwi.model_version"] == "1"

    weight = next(p for p in sorted(frozen.rglob("*.safetensors")))
    weight.write_bytes(weight.read_bytes()[:-8] + b"\0" * 8)
    refused = kiwi("evaluate", "models:/kiwi-edit@champion", "--suite", "openve-mini", *TINY, home=kiwi_home)
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: checkpoint") and "was modified after it was registered" in refused.stderr


@pytest.mark.slow
def test_a_bad_suite_is_refused_whole_with_every_bad_row(kiwi_home: Path, demo_dir: Path, tmp_path: Path) -> None:
    """`kiwi suite add` on a RefVIE-Bench file with bad items exits non-zero with one line listing them all and
    registers nothing; an unknown suite for `kiwi evaluate` names the registered ones."""
    bad = [
        {
            "src_video": "videos/missing.mp4",
            "instruction": "Insert it.",
            "ref_img": "refs/stones.jpg",
            "edit_type": "subject",
        },
        {"src_video": "videos/forest.mp4", "instruction": "Swap the sky.", "edit_type": "background"},
    ]
    yml, root = refvie_bench(demo_dir, tmp_path / "released", extra_items=bad)
    proc = kiwi(
        "suite", "add", "refvie", "--format", "refvie-bench", "--file", str(yml), "--root", str(root), home=kiwi_home
    )
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1
    assert (
        "item 2: src_video 'videos/missing.mp4' does not exist" in proc.stderr and "item 3: no ref_img" in proc.stderr
    )
    assert not (kiwi_home / "data/benchmarks/registered/refvie").exists()
    unknown = kiwi("evaluate", str(tmp_path), "--suite", "nope", home=kiwi_home)
    assert unknown.returncode != 0 and "no registered suite 'nope' (registered: none yet)" in unknown.stderr
