"""Gather a model version's report data from MLflow and the files its tags point at.

Sources: the lineage walk (stages, manifests, batches, raw files), the version tags
`kiwi.eval.results` (path of `results.json`) and `kiwi.promotion*`, and the stage runs'
artifacts `plots/loss_curve.png` and `samples/before_after.png`. When `results.json` is gone
locally, the copy `log_evaluation` put in the run's artifacts (`evaluation/<settings key>/`) is used.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from kiwi_platform.lineage.walk import Lineage, build_lineage
from kiwi_platform.report.data import Evaluation, ReportData, StageArtifacts
from kiwi_platform.resources.tracking import MlflowTracking

RESULTS_TAG = "kiwi.eval.results"
PROMOTION_TAG = "kiwi.promotion"
DECISION_TAG = "kiwi.promotion_decision"
STAGE_PICTURES = {"loss_curve": "plots/loss_curve.png", "before_after": "samples/before_after.png"}


def collect_report(tracking: MlflowTracking, ref: str, workdir: str | Path) -> ReportData:
    """Everything the report shows for `ref`; downloads land in `workdir`. Raises KiwiUserError if `ref` is unknown."""
    work = Path(workdir)
    lineage = build_lineage(tracking, ref, verify=False)
    client = tracking.client()
    mv = client.get_model_version(lineage.registered_model, lineage.version)
    tags = dict(mv.tags)
    evaluation, note = _evaluation(client, mv.run_id, tags, work / "evaluation")
    stages = [
        _stage_artifacts(client, st.stage, st.run_id, work / f"stage{st.stage}-{st.run_id[:8]}")
        for st in sorted(lineage.stages, key=lambda s: s.stage)
    ]
    return ReportData(
        ref=ref,
        lineage=lineage,
        version_tags=tags,
        run_id=mv.run_id,
        evaluation=evaluation,
        evaluation_note=note,
        promotion=_promotion(tags),
        stages=stages,
        stage_batches=_stage_batches(lineage),
        generated_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )


def _evaluation(client: Any, run_id: str, tags: dict[str, str], work: Path) -> tuple[Evaluation | None, str]:
    """(evaluation, "") or (None, a sentence saying why there is none)."""
    recorded = tags.get(RESULTS_TAG, "")
    if not recorded:
        return None, "This model version has not been evaluated yet (no kiwi.eval.results tag)."
    path = Path(recorded)
    if not path.is_file():
        path = _download_results(client, run_id, work) or path
    if not path.is_file():
        return None, f"Evaluation results were recorded at {recorded}, but that file is gone and the run has no copy."
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"Evaluation results at {path} cannot be read: {exc}"
    folder = path.parent
    tables = {p.stem: pd.read_csv(p, index_col=0) for p in sorted((folder / "tables").glob("*.csv"))}
    images = {key: folder / rel for key, rel in (summary.get("images") or {}).items() if (folder / rel).is_file()}
    cases = pd.read_csv(folder / "cases.csv") if (folder / "cases.csv").is_file() else None
    return Evaluation(path, summary, tables, images, cases), ""


def _download_results(client: Any, run_id: str, work: Path) -> Path | None:
    """The newest `evaluation/<key>/results.json` logged on the run, downloaded with its tables and images."""
    from mlflow.exceptions import MlflowException

    try:
        folders = [f.path for f in client.list_artifacts(run_id, "evaluation") if f.is_dir]
        for folder in reversed(sorted(folders)):
            if any(f.path.endswith("results.json") for f in client.list_artifacts(run_id, folder)):
                local = Path(client.download_artifacts(run_id, folder, str(_fresh(work))))
                return local / "results.json"
    except (MlflowException, OSError):
        return None
    return None


def _stage_artifacts(client: Any, stage: int, run_id: str, work: Path) -> StageArtifacts:
    from mlflow.exceptions import MlflowException

    out = StageArtifacts(stage=stage, run_id=run_id)
    for attr, artifact in STAGE_PICTURES.items():
        try:
            setattr(out, attr, Path(client.download_artifacts(run_id, artifact, str(_fresh(work)))))
        except (MlflowException, OSError):
            pass  # the stage logged no such picture: the report says so
    try:
        out.metrics = dict(client.get_run(run_id).data.metrics)
    except MlflowException:
        pass
    return out


def _promotion(tags: dict[str, str]) -> dict[str, Any] | None:
    status = tags.get(PROMOTION_TAG, "")
    raw = tags.get(DECISION_TAG, "")
    if not status and not raw:
        return None
    try:
        decision = json.loads(raw) if raw else {}
    except ValueError:
        decision = {"reasons": [f"unreadable decision record: {raw[:120]}"]}
    decision.setdefault("promoted", status == "promoted")
    decision["status"] = status or ("promoted" if decision.get("promoted") else "refused")
    if tags.get("kiwi.replaced_by"):
        decision["replaced_by"] = tags["kiwi.replaced_by"]
    return decision


def _stage_batches(lineage: Lineage) -> dict[int, list[str]]:
    """Which batches each stage's training manifest drew from (empty when the manifest is not readable)."""
    out: dict[int, list[str]] = {}
    for st in lineage.stages:
        try:
            out[st.stage] = sorted(set(pd.read_parquet(st.manifest.path, columns=["batch"])["batch"].astype(str)))
        except (OSError, ValueError, KeyError):
            out[st.stage] = []
    return out


def _fresh(base: Path) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=base))
