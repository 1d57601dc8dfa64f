"""A small but real platform record for reports: an MLflow sqlite store with three chained stage
versions carrying the lineage tags, a data repo with training manifests and a batch table, a real
`evaluate_checkpoint` result (tiny random checkpoint, fake judge server) logged with `log_evaluation`,
and a promotion recorded with `record_decision`. Version 3 is the evaluated champion; version 2 was
never evaluated.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from kiwi_platform.lib import mlflow_tags
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.resources.tracking import MlflowTracking

SIZE = {"frames": 5, "height": 64, "width": 96}
BATCH = "batch-a"
PROMOTION_REASON = "no champion yet: the first evaluated model is promoted"


@dataclass
class Store:
    tracking: MlflowTracking
    root: Path
    result: object  # EvalResult of version 3
    stage_runs: dict[int, str]
    manifest_md5: dict[int, str]
    raw_files: list[Path]


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 80), color).save(buf, format="PNG")
    return buf.getvalue()


def _data_repo(root: Path) -> tuple[Path, list[Path], dict[int, str]]:
    """Raw files, a batch table, DVC pointers and one training manifest per stage, as the walk expects."""
    repo = root / "data"
    raw_dir = root / "raw"
    raw_dir.mkdir(parents=True)
    files = []
    for name in ("clip_a.mp4", "clip_a_edit.mp4", "ref_a.jpg", "clip_b.mp4", "clip_b_edit.mp4", "clip_c.mp4"):
        path = raw_dir / name
        path.write_bytes(name.encode() * 50)
        files.append(path)
    manifest = raw_dir / "manifest.csv"
    manifest.write_text("prompt,src_video,tgt_video,ref_image\n")
    bdir = repo / "batches" / BATCH
    (bdir / "raw_edit_pairs").mkdir(parents=True)
    (bdir / "raw_edit_pairs" / "manifest.csv").write_text(manifest.read_text())
    rows = [
        {
            "pair_id": f"p{i}",
            "src_path": str(files[2 * i if i < 2 else 5]),
            "tgt_path": str(files[2 * i + 1 if i < 2 else 4]),
            "ref_path": str(files[2]) if i == 0 else "",
            "manifest_sha256": sha256_file(manifest),
        }
        for i in range(3)
    ]
    for r in rows:
        for role in ("src", "tgt", "ref"):
            r[f"{role}_sha256"] = sha256_file(r[f"{role}_path"]) if r[f"{role}_path"] else ""
    pd.DataFrame(rows).to_parquet(bdir / "raw_edit_pairs" / "table.parquet")
    for name, md5 in (
        ("quadruplets", "0a1b2c3d4e5f60718293a4b5c6d7e8f9.dir"),
        ("raw_edit_pairs", "99887766554433221100ffeeddccbbaa.dir"),
    ):
        (bdir / f"{name}.dvc").write_text(yaml.safe_dump({"outs": [{"md5": md5, "path": name}]}))
    md5 = {}
    for stage in (1, 2, 3):
        path = repo / "training" / "manifests" / f"stage{stage}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"batch": [BATCH] * 3, "pair_id": ["p0", "p1", "p2"]}).to_parquet(path)
        md5[stage] = f"{stage}{stage}f0c0ffee{stage}badc0de{stage}" + "0" * 12
    return repo, files, md5


def _register_stages(tracking: MlflowTracking, repo: Path, md5: dict[int, str]) -> dict[int, str]:
    import mlflow

    client = tracking.client()
    client.create_registered_model(tracking.registered_model)
    runs: dict[int, str] = {}
    for stage in (1, 2, 3):
        manifest = repo / "training" / "manifests" / f"stage{stage}.parquet"
        tags = {
            mlflow_tags.STAGE: str(stage),
            mlflow_tags.MANIFEST_PATH: f"training/manifests/stage{stage}.parquet",
            mlflow_tags.MANIFEST_SHA256: sha256_file(manifest),
            mlflow_tags.MANIFEST_DVC_MD5: md5[stage],
            mlflow_tags.DATA_REPO: str(repo),
            mlflow_tags.DATA_REPO_REV: "abcdef1234567890",
            mlflow_tags.CODE_GIT_SHA: "c0de5ha0000000000000",
            mlflow_tags.CONFIG_HASH: f"cfg{stage}hash0000",
            mlflow_tags.CHECKPOINT_DIR: f"/ckpt/stage{stage}",
            mlflow_tags.PARENT_MODEL_URI: f"models:/{tracking.registered_model}/{stage - 1}" if stage > 1 else "",
        }
        with tracking.start_run(f"stage{stage}", tags={**tags, "kiwi.role": "stage"}) as run:
            for step, loss in enumerate(np.linspace(1.0, 0.5, 5)):
                mlflow.log_metric("loss", float(loss) / stage, step=step)
            mlflow.log_image(Image.new("RGB", (100, 60), (40 * stage, 90, 160)), "plots/loss_curve.png")
            mlflow.log_image(Image.new("RGB", (100, 30), (200, 40 * stage, 60)), "samples/before_after.png")
        runs[stage] = run.info.run_id
        client.create_model_version(
            tracking.registered_model,
            source=run.info.artifact_uri,
            run_id=run.info.run_id,
            tags={k: v for k, v in tags.items() if v},
        )
    return runs


@pytest.fixture(scope="session")
def report_store(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Store:
    from kiwi_platform.evaluation import EvalSettings, build_synthetic_suite, evaluate_checkpoint, merge_suites
    from kiwi_platform.evaluation.mlflow_log import log_evaluation, record_decision
    from kiwi_platform.judge import Judge, JudgeCache, JudgeClient
    from model.build import init_checkpoint
    from tests.fakes.openai_server import run_fake_openai
    from tests.judge.upstream_answers import upstream_answer

    root = tmp_path_factory.mktemp("report-store")
    repo, raw_files, md5 = _data_repo(root)
    tracking = MlflowTracking(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", artifact_root=str(root / "artifacts"))
    runs = _register_stages(tracking, repo, md5)

    checkpoint = init_checkpoint("tiny", root / "ckpt", seed=0)
    suites = [
        build_synthetic_suite("openve", root / "suites" / "openve", n=2, demo_dir=demo_dir, **SIZE),
        build_synthetic_suite("refvie", root / "suites" / "refvie", n=2, seed=7, demo_dir=demo_dir, **SIZE),
    ]
    suite = merge_suites(suites, root / "suites" / "all", "report-test")

    def behaviour(req):
        if "Reference Image" in req.system:  # the RefVIE prompts; 3, 4, 5 is capped to 3, 3, 3
            return upstream_answer((3, 4, 5))
        return upstream_answer((5, 4, 2))

    with run_fake_openai(behaviour) as fake:
        judge = Judge(
            JudgeClient(
                fake.base_url,
                "fake-vlm-judge",
                fake.api_key,
                timeout_s=10.0,
                max_retries=1,
                backoff_s=0.01,
                max_concurrency=2,
            ),
            JudgeCache(root / "judge.sqlite"),
        )
        result = evaluate_checkpoint(checkpoint, suite, root / "eval", settings=EvalSettings.tiny(), judge=judge)
    log_evaluation(tracking, "3", result)
    record_decision(tracking, "3", None, True, [PROMOTION_REASON], "champion")
    return Store(tracking, root, result, runs, md5, raw_files)
