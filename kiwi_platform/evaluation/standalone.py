"""Score any checkpoint on one suite outside the training graph, record it as its own MLflow run.

Why outside the graph: a team checks the released weights (or a stage checkpoint, or the champion)
on a public benchmark before fine-tuning, without training anything and without touching the
promotion records (`benchmark_results` / `promoted_model` keep theirs). The run resumes: outputs
live under `$KIWI_HOME/evaluations/standalone/<suite>/<checkpoint id>-<settings key>/` and are
reused per case, judge answers come from the judge cache, so re-running after a kill (or with a
larger `--limit`) generates and judges only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiwi_platform.evaluation.identity import checkpoint_fingerprint
from kiwi_platform.evaluation.result import EvalResult, write_result
from kiwi_platform.evaluation.run import evaluate_checkpoint
from kiwi_platform.evaluation.settings import EvalSettings
from kiwi_platform.evaluation.suites import Suite, SuiteError
from kiwi_platform.lib.checkpoint_manifest import require_intact_checkpoint
from kiwi_platform.resources.tracking import MlflowTracking

RUN_KIND = "standalone_evaluation"


def limited(suite: Suite, limit: int | None) -> Suite:
    """The first `limit` cases in suite order (upstream's row order for registered suites)."""
    if limit is None:
        return suite
    if limit < 1:
        raise SuiteError(f"--limit must be at least 1, got {limit}")
    return Suite(suite.name, suite.root, suite.cases[:limit])


def evaluate_standalone(
    checkpoint_dir: Path,
    suite: Suite,
    *,
    home: Path,
    tracking: MlflowTracking,
    settings: EvalSettings,
    judge: Any = None,
    limit: int | None = None,
    source: str = "",
    model_version: str | None = None,
    context: dict[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[EvalResult, str]:
    """Verify the checkpoint, evaluate it on (the first `limit` cases of) `suite`, log an MLflow run; (result, run id)."""
    require_intact_checkpoint(checkpoint_dir)  # a kiwi-checkpoint.json whose files changed is refused here
    ckpt_id = checkpoint_fingerprint(checkpoint_dir)
    sub = limited(suite, limit)
    out = home / "evaluations" / "standalone" / suite.name / f"{ckpt_id}-{settings.settings_key}"
    result = evaluate_checkpoint(
        checkpoint_dir, sub, out, settings=settings, judge=judge, progress=progress, checkpoint_id=ckpt_id
    )
    result.context = {**(context or {}), "limit": limit, "suite_cases": len(suite.cases), "checkpoint": source}
    write_result(result)  # again, now with the context (reference rows are part of every summary)
    return result, log_standalone(tracking, result, source or str(checkpoint_dir), model_version)


def log_standalone(tracking: MlflowTracking, result: EvalResult, source: str, model_version: str | None) -> str:
    """One MLflow run: params (settings, suite, limit), `eval/...` metrics, results + tables + images as artifacts."""
    tags = {
        "kiwi.kind": RUN_KIND,
        "kiwi.eval.suite": result.suite_name,
        "kiwi.eval.suite_hash": result.suite_hash,
        "kiwi.eval.settings_key": result.settings.settings_key,
        "kiwi.eval.checkpoint_id": result.checkpoint_id,
        "kiwi.eval.checkpoint": source,
        "kiwi.eval.results": str(result.results_path),
    }
    if model_version:
        tags["kiwi.model_version"] = str(model_version)
    import mlflow

    with tracking.start_run(f"evaluate {result.suite_name} {result.checkpoint_id}", tags) as run:
        params = {f"settings.{k}": v for k, v in result.settings.model_dump().items()}
        params.update(
            cases=len(result.rows), limit=result.context.get("limit"), judge_model=result.judge_model or "none"
        )
        mlflow.log_params(params)
        metrics = {f"eval/{k}": float(v) for k, v in result.headline.items() if v == v}
        metrics.update(
            {
                "eval/judge_calls": result.judge_calls,
                "eval/judge_cached": result.judge_cached,
                "eval/reused": result.reused,
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(result.results_path), "evaluation")
        mlflow.log_artifact(str(result.out_dir / "cases.csv"), "evaluation")
        for sub in ("tables", "images"):
            if (result.out_dir / sub).is_dir():
                mlflow.log_artifacts(str(result.out_dir / sub), f"evaluation/{sub}")
        return run.info.run_id
