"""Score the newest model and the current champion on the same suite and settings.

The summary this returns is what promotion decides on; it travels as `benchmark_results`'
materialization metadata, so the decision's inputs are visible in the UI and in lineage.
Outputs and judge answers are cached, so re-scoring an unchanged champion is cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kiwi_platform.evaluation.result import EvalResult
from kiwi_platform.evaluation.run import evaluate_checkpoint
from kiwi_platform.evaluation.settings import EvalSettings
from kiwi_platform.evaluation.suites import Suite
from kiwi_platform.resources.tracking import MlflowTracking

Progress = Callable[[str, str, int, int], None]  # (model version, stage, done, total)


def _entry(version: str, result: EvalResult) -> dict:
    return {"version": version, "headline": result.headline, "results": str(result.results_path)}


def score_candidate(
    version: str,
    checkpoint_dir: str,
    suite: Suite,
    *,
    settings: EvalSettings,
    home: Path,
    tracking: MlflowTracking,
    judge=None,
    evaluate_champion: bool = True,
    progress: Progress | None = None,
) -> tuple[EvalResult, dict]:
    """Evaluate `version` (and the champion, or its logged scores); returns its result and the summary."""
    # imported here: mlflow costs ~1 s, and every run worker imports the code location before its first step
    from kiwi_platform.evaluation.mlflow_log import (
        champion_version,
        log_evaluation,
        logged_evaluation,
        model_version_info,
    )

    def evaluate(model_version: str, checkpoint: str) -> EvalResult:
        def report(stage: str, done: int, total: int) -> None:
            if progress:
                progress(model_version, stage, done, total)

        out = home / "evaluations" / f"v{model_version}-{settings.settings_key}"
        result = evaluate_checkpoint(checkpoint, suite, out, settings=settings, judge=judge, progress=report)
        log_evaluation(tracking, model_version, result)
        return result

    result = evaluate(version, checkpoint_dir)
    champion = champion_version(tracking)
    if champion == version:  # re-evaluating the champion itself: compare it with itself
        champion_summary = _entry(champion, result)
    elif champion and evaluate_champion:
        champion_summary = _entry(
            champion, evaluate(champion, model_version_info(tracking, champion)["checkpoint_dir"])
        )
    elif champion:  # not re-scored: only its logged scores on this very suite and settings count
        champion_summary = logged_evaluation(tracking, champion, suite.content_hash, settings.settings_key)
    else:
        champion_summary = None
    summary = {
        "candidate": _entry(version, result),
        "champion": champion_summary,
        "suite_hash": suite.content_hash,
        "settings": settings.model_dump(),
    }
    return result, json.loads(json.dumps(summary, default=str))  # plain JSON: it is recorded as metadata
