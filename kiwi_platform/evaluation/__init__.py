"""Benchmark evaluation of Kiwi-Edit checkpoints: suites, generation, offline metrics, judge, tables, gates.

A plain library (no Dagster, no MLflow) except for `mlflow_log` and `candidate`, which record
scores and decisions on model versions in the MLflow registry; the assets call those. Generation imports the model (torch) only when something must be generated.

    suite = build_synthetic_suite("openve", "suites/openve", n=30)
    result = evaluate_checkpoint("checkpoints/tiny", "suites/openve", "eval/tiny",
                                 settings=EvalSettings.tiny(), judge=judge_or_None)  # e.g. JudgeResource.from_env().judge()
    decision = compare(result.headline, champion_headline, ["openve/overall"], tolerance=0.05)
"""

from kiwi_platform.evaluation.aggregate import build_tables, headline_metrics, markdown_table, overall
from kiwi_platform.evaluation.categories import CATEGORIES, OPENVE, REFVIE, guess_category
from kiwi_platform.evaluation.compare import Decision, compare, higher_is_better
from kiwi_platform.evaluation.identity import checkpoint_fingerprint
from kiwi_platform.evaluation.judging import JudgeOutcome, judge_suite
from kiwi_platform.evaluation.metrics import METRICS, MetricInfo, case_metrics, estimate_edit_mask
from kiwi_platform.evaluation.result import EvalResult
from kiwi_platform.evaluation.run import evaluate_checkpoint
from kiwi_platform.evaluation.settings import EvalSettings
from kiwi_platform.evaluation.suite_builders import (
    build_demo_suite,
    build_standard_suites,
    build_synthetic_suite,
    demo_cases,
)
from kiwi_platform.evaluation.suite_csv import load_user_suite
from kiwi_platform.evaluation.suites import Case, Suite, SuiteError, load_suite, merge_suites, save_suite

__all__ = [
    "CATEGORIES",
    "METRICS",
    "OPENVE",
    "REFVIE",
    "Case",
    "Decision",
    "EvalResult",
    "EvalSettings",
    "MetricInfo",
    "Suite",
    "SuiteError",
    "build_demo_suite",
    "build_standard_suites",
    "build_synthetic_suite",
    "build_tables",
    "case_metrics",
    "checkpoint_fingerprint",
    "compare",
    "demo_cases",
    "estimate_edit_mask",
    "evaluate_checkpoint",
    "guess_category",
    "headline_metrics",
    "JudgeOutcome",
    "judge_suite",
    "higher_is_better",
    "load_suite",
    "load_user_suite",
    "markdown_table",
    "merge_suites",
    "overall",
    "save_suite",
]
