"""One entry point: evaluate a checkpoint on a suite -> per-case rows, tables, headline metrics, pictures.

Order of work: generate (or reuse) every output, then score: offline metrics in this thread while
the judge (if any) scores in a background thread, since judge calls wait on the network and
metrics on the CPU. Files written under `out_dir` (all atomically):

    outputs/<checkpoint id>_<settings key>/   generated media + sidecars (reused next time)
    cases.csv                                 one row per case: ids, metrics, judge scores/error reason
    tables/<suite>_<judge|offline>.md|.csv    per-category tables with the overall row
    images/grid_<suite>_<category>.png        before/after grid per category
    images/chart_<table>.png                  per-category bar chart per table
    results.json                              headline metrics, timings, ids, settings, judge info

The result and its files: `evaluation.result`; the grids and charts: `evaluation.result_images`.

Timings (seconds): prepare (suite + checkpoint hashing), generation (incl. model loading), offline
metrics, judge (wall time of the judge thread, overlapping the metrics), scoring (end of generation
to the last score), visuals, total; `generation_share` / `scoring_share` split generation + scoring.

Judge failures: a case the judge could not score keeps its offline metrics and records only a
classified reason (`judge_error`: `http_500`, `timeout`, `malformed_answer`...; never the server's
text); `judge_errors` / `judge_error_counts` in results.json and a line in `markdown()` say how many.
A fatal judge error or a judge that scored no case at all raises (see `evaluation.judging`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from kiwi_platform.evaluation.aggregate import RUBRIC_DIMENSIONS, build_tables, headline_metrics
from kiwi_platform.evaluation.generate import generate_suite
from kiwi_platform.evaluation.identity import checkpoint_fingerprint
from kiwi_platform.evaluation.media import CaseMedia, MediaError, load_case_media
from kiwi_platform.evaluation.metrics import Embedder, case_metrics
from kiwi_platform.evaluation.result import EvalResult, write_result
from kiwi_platform.evaluation.result_images import draw_images, middle_frame
from kiwi_platform.evaluation.settings import EvalSettings
from kiwi_platform.evaluation.suites import Suite, load_suite

Progress = Callable[[str, int, int], None]


def _judge_columns(row: dict[str, Any], score: Any) -> None:
    for dim, value in score.scores.items():
        row[f"judge_{dim}"] = float(value)
    row["judge_score"] = float(score.mean)
    row["judge_capped"] = bool(score.capped)
    row["judge_reason"] = score.reason


def evaluate_checkpoint(
    checkpoint_dir: str | Path | None,
    suite_dir: str | Path | Suite,
    out_dir: str | Path,
    *,
    settings: EvalSettings | None = None,
    judge: Any = None,
    progress: Progress | None = None,
    checkpoint_id: str | None = None,
    pipeline: Any = None,
    embedder: Embedder | None = None,
    grid_rows: int = 3,
) -> EvalResult:
    """Generate, score, aggregate and draw; see the module docstring for what lands in `out_dir`.

    `judge`: a `kiwi_platform.judge.Judge` (or None for offline metrics only). `checkpoint_id`
    defaults to a fingerprint of the checkpoint files; pass one when giving a loaded `pipeline`.
    `progress(stage, done, total)` is called with stage "generate", "score" and "judge".
    """
    from kiwi_platform.evaluation.judging import JudgeOutcome, judge_suite

    t0 = time.perf_counter()
    settings = settings or EvalSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suite = suite_dir if isinstance(suite_dir, Suite) else load_suite(suite_dir)
    if checkpoint_id is None:
        if checkpoint_dir is None:
            raise ValueError("give checkpoint_dir or checkpoint_id")
        checkpoint_id = checkpoint_fingerprint(checkpoint_dir)
    suite_hash = suite.content_hash
    t_prep = time.perf_counter()

    generated = generate_suite(
        suite,
        out / "outputs" / f"{checkpoint_id}_{settings.settings_key}",
        settings,
        checkpoint_id=checkpoint_id,
        checkpoint_dir=checkpoint_dir,
        pipeline=pipeline,
        progress=progress,
    )
    t_gen = time.perf_counter()
    outputs = {g.case_id: g.path for g in generated}

    outcome: dict[str, Any] = {}
    thread = None
    if judge is not None:

        def run_judge() -> None:
            try:
                outcome["result"] = judge_suite(judge, suite, outputs, checkpoint_id, settings.settings_key, progress)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                outcome["error"] = exc

        thread = threading.Thread(target=run_judge, name="kiwi-eval-judge", daemon=True)
        thread.start()

    rows: list[dict[str, Any]] = []
    samples: dict[tuple[str, str], list[CaseMedia]] = {}
    for index, case in enumerate(suite.cases):
        row: dict[str, Any] = {
            "case_id": case.case_id,
            "suite": case.suite,
            "category": case.category,
            "prompt": case.prompt,
            "output": str(outputs[case.case_id].relative_to(out)),
            "has_target": case.has_target,
            "has_reference": case.has_reference,
        }
        try:
            media = load_case_media(suite, case, outputs[case.case_id])
            row.update(case_metrics(media, embedder))
            bucket = samples.setdefault((case.suite, case.category), [])
            if len(bucket) < grid_rows:
                bucket.append(middle_frame(media))
        except MediaError as exc:
            row["metrics_error"] = str(exc)
        rows.append(row)
        if progress:
            progress("score", index + 1, len(suite.cases))
        if "error" in outcome:  # the judge failed the evaluation (bad key, nothing scored): stop scoring
            break
    t_metrics = time.perf_counter()
    if thread is not None:
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
    t_scored = time.perf_counter()
    judged: JudgeOutcome | None = outcome.get("result")

    if judged is not None:
        for row in rows:
            if (score := judged.scores.get(row["case_id"])) is not None:
                _judge_columns(row, score)
            elif (err := judged.errors.get(row["case_id"])) is not None:
                row["judge_error"] = err.reason  # a classified reason, never the server's text
    frame = pd.DataFrame(rows)
    if judged is not None:
        for suite_kind, dims in RUBRIC_DIMENSIONS.items():
            if (frame["suite"] == suite_kind).any():
                for col in [f"judge_{d}" for d in dims] + ["judge_score"]:
                    if col not in frame.columns:
                        frame[col] = float("nan")
    tables = build_tables(frame, judged is not None)
    headline = headline_metrics(frame, tables)

    images = draw_images(out, samples, tables)
    t_end = time.perf_counter()
    n = len(suite.cases)
    timings = {
        "prepare_s": round(t_prep - t0, 3),
        "generation_s": round(t_gen - t_prep, 3),
        "offline_metrics_s": round(t_metrics - t_gen, 3),
        "judge_s": round(judged.seconds, 3) if judged else 0.0,
        "scoring_s": round(t_scored - t_gen, 3),
        "visuals_s": round(t_end - t_scored, 3),
        "total_s": round(t_end - t0, 3),
        "generation_share": round((t_gen - t_prep) / max(t_scored - t_prep, 1e-9), 4),
        "scoring_share": round((t_scored - t_gen) / max(t_scored - t_prep, 1e-9), 4),
        "cases_per_minute": round(60.0 * n / max(t_end - t0, 1e-9), 3),
    }
    result = EvalResult(
        checkpoint_id=checkpoint_id,
        suite_name=suite.name,
        suite_hash=suite_hash,
        settings=settings,
        out_dir=out,
        rows=frame,
        tables=tables,
        headline=headline,
        images=images,
        timings=timings,
        judged=judged is not None,
        judge_model=judged.model if judged else None,
        judge_calls=judged.calls if judged else 0,
        judge_cached=judged.cached if judged else 0,
        judge_errors={k: e.reason for k, e in judged.errors.items()} if judged else {},
        generated=sum(not g.reused for g in generated),
        reused=sum(g.reused for g in generated),
    )
    write_result(result)
    return result
