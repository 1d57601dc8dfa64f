"""Turn per-case rows into the benchmark tables and the flat headline metrics, as upstream aggregates.

Judge scores (1-5), aggregated as upstream's `avg_score_by_edited_type` does (proven against a
transcription of its arithmetic: tests/evaluation/test_upstream_golden.py). A case's score is the
mean of its rubric's three scores (after the cap). Per category: the mean over its scored cases,
per dimension and for the score (= upstream's sum of all score entries / their count, since every
scored case has three). Overall:
- OpenVE-Bench: the mean of the category means over the categories with a scored case
  (upstream: `sum(averages.values()) / len(averages)`);
- RefVIE-Bench: the sample-weighted mean, i.e. the mean over all score entries of all cases;
- ImgEdit (offline metrics only; upstream ships no judge for it): the mean of the category means.
Offline metrics use the same rule per suite (so a suite's two tables agree on what "overall" means);
the pooled `offline/<metric>` headline is the plain mean over every case where the metric applies.
Missing values (a metric that does not apply, a case the judge could not score) are skipped, never 0.

Headline names (flat, for MLflow): `openve/overall`, `openve/<category>`, `openve/<dimension>`,
`openve/<category>/<dimension>`, the same under `refvie/`, and `offline/<metric>`,
`offline/<suite>/<metric>`, `offline/<suite>/<category>/<metric>`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from kiwi_platform.evaluation.categories import CATEGORIES, IMGEDIT, OPENVE, REFVIE
from kiwi_platform.evaluation.metrics import METRICS
from kiwi_platform.judge import BENCHMARK_DIMENSIONS

RUBRIC_DIMENSIONS = {OPENVE: BENCHMARK_DIMENSIONS[OPENVE], REFVIE: BENCHMARK_DIMENSIONS[REFVIE]}
OFFLINE_METRICS = tuple(METRICS)
SCORE = "score"


def overall(category_values: Mapping[str, Iterable[float]], suite: str) -> float:
    """The upstream overall of per-case values grouped by category (NaNs skipped); NaN if nothing scored.

    OpenVE and ImgEdit: mean of category means. RefVIE: mean over all cases (sample-weighted).
    """
    groups = {
        c: [float(v) for v in vals if v is not None and not math.isnan(float(v))] for c, vals in category_values.items()
    }
    groups = {c: v for c, v in groups.items() if v}
    if not groups:
        return float("nan")
    if suite in (OPENVE, IMGEDIT):
        return float(np.mean([np.mean(v) for v in groups.values()]))
    if suite == REFVIE:
        return float(np.mean([x for v in groups.values() for x in v]))
    raise ValueError(f"unknown suite {suite!r}")


def _ordered_categories(rows: pd.DataFrame, suite: str) -> list[str]:
    present = set(rows["category"])
    known = [c for c in CATEGORIES.get(suite, ()) if c in present]
    return known + sorted(present - set(known))


def _table(rows: pd.DataFrame, suite: str, columns: list[str], count: str | None = None) -> pd.DataFrame:
    """Per-category means + overall; `n` counts the cases (or those with a value in `count`)."""
    sub = rows[rows["suite"] == suite]
    cats = _ordered_categories(sub, suite)
    data: dict[str, dict[str, float]] = {}
    for cat in cats:
        part = sub[sub["category"] == cat]
        data[cat] = {col: _mean(part[col]) for col in columns}
        data[cat]["n"] = float(
            len(part) if count is None else pd.to_numeric(part[count], errors="coerce").notna().sum()
        )
    data["overall"] = {
        col: overall({c: sub.loc[sub["category"] == c, col].tolist() for c in cats}, suite) for col in columns
    }
    data["overall"]["n"] = float(sum(data[c]["n"] for c in cats))
    table = pd.DataFrame.from_dict(data, orient="index")[columns + ["n"]]
    table["n"] = table["n"].astype(int)
    table.index.name = "category"
    return table


def _mean(values: pd.Series) -> float:
    vals = pd.to_numeric(values, errors="coerce").dropna()
    return float(vals.mean()) if len(vals) else float("nan")


def judge_table(rows: pd.DataFrame, suite: str) -> pd.DataFrame:
    """Categories x (dimensions, score, n) of judge scores for one suite kind, plus the `overall` row.

    `n` counts the cases the judge scored (a case it could not score is in the per-case rows only).
    """
    dims = [f"judge_{d}" for d in RUBRIC_DIMENSIONS[suite]]
    table = _table(rows, suite, dims + ["judge_score"], count="judge_score")
    return table.rename(columns={**{f"judge_{d}": d for d in RUBRIC_DIMENSIONS[suite]}, "judge_score": SCORE})


def offline_table(rows: pd.DataFrame, suite: str) -> pd.DataFrame:
    """Categories x offline metrics for one suite kind, plus the `overall` row (the suite's rule)."""
    cols = [m for m in OFFLINE_METRICS if m in rows.columns]
    return _table(rows, suite, cols)


def build_tables(rows: pd.DataFrame, judged: bool) -> dict[str, pd.DataFrame]:
    """`<suite>_judge` (when judged) and `<suite>_offline` tables for every suite kind present."""
    tables: dict[str, pd.DataFrame] = {}
    for suite in (OPENVE, REFVIE, IMGEDIT):
        if not (rows["suite"] == suite).any():
            continue
        if judged and suite in RUBRIC_DIMENSIONS and "judge_score" in rows.columns:
            tables[f"{suite}_judge"] = judge_table(rows, suite)
        tables[f"{suite}_offline"] = offline_table(rows, suite)
    return tables


def _put(out: dict[str, float], name: str, value: Any) -> None:
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        out[name] = float(value)


def headline_metrics(rows: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> dict[str, float]:
    """Flat metric names -> values (NaNs left out), see the module docstring for the naming."""
    out: dict[str, float] = {}
    for name, table in tables.items():
        suite, kind = name.split("_", 1)
        for category, row in table.iterrows():
            for col, value in row.items():
                if col == "n":
                    continue
                if kind == "judge":
                    if category == "overall":
                        _put(out, f"{suite}/overall" if col == SCORE else f"{suite}/{col}", value)
                    else:
                        _put(out, f"{suite}/{category}" if col == SCORE else f"{suite}/{category}/{col}", value)
                else:
                    prefix = f"offline/{suite}" if category == "overall" else f"offline/{suite}/{category}"
                    _put(out, f"{prefix}/{col}", value)
    for metric in OFFLINE_METRICS:
        if metric in rows.columns:
            _put(out, f"offline/{metric}", _mean(rows[metric]))
    return out


def markdown_table(table: pd.DataFrame, digits: int = 2, max_columns: int | None = None) -> str:
    """A GitHub-flavoured markdown table (index as the first column); NaN shown as an en dash.

    `max_columns`: wider tables are split into several tables of at most that many value columns,
    each repeating the index column, so none is cut off in a narrow view (the Dagster UI at 1280 px).
    """
    if max_columns and len(table.columns) > max_columns:
        parts = [table.iloc[:, i : i + max_columns] for i in range(0, len(table.columns), max_columns)]
        return "\n\n".join(markdown_table(part, digits) for part in parts)

    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "–" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(table.columns)) + "|"]
    for index, *values in table.itertuples(name=None):
        lines.append("| " + " | ".join([str(index)] + [cell(v) for v in values]) + " |")
    return "\n".join(lines)
