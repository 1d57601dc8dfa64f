"""`EvalResult`: what one evaluation produced, as tables and markdown, and the files that record it.

Why apart from the run: assets, the MLflow logger, candidate evaluation and reports consume the
result without running anything, and the on-disk record (`cases.csv`, `tables/<name>.md|.csv`,
`results.json`, all written atomically) is defined by the result alone, not by how it was computed
(`kiwi_platform.evaluation.run`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kiwi_platform.evaluation.aggregate import markdown_table
from kiwi_platform.evaluation.reference_scores import comparison_markdown, reference_records, release_gap
from kiwi_platform.evaluation.settings import EvalSettings
from kiwi_platform.lib.files import write_text_atomic

# value columns per markdown table in Dagster metadata: wider tables are split so none is cut off at 1280 px
METADATA_COLUMNS = 6


@dataclass
class EvalResult:
    """Everything an asset, MLflow logger or report needs from one evaluation."""

    checkpoint_id: str
    suite_name: str
    suite_hash: str
    settings: EvalSettings
    out_dir: Path
    rows: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    headline: dict[str, float]
    images: dict[str, Path]
    timings: dict[str, float]
    judged: bool
    judge_model: str | None = None
    judge_calls: int = 0
    judge_cached: int = 0
    judge_errors: dict[str, str] = field(default_factory=dict)  # case id -> classified reason
    generated: int = 0
    reused: int = 0
    context: dict[str, Any] = field(default_factory=dict)  # e.g. suite registration (rows skipped as upstream), limit

    @property
    def benchmarks(self) -> list[str]:
        """Benchmarks with judge tables, i.e. the ones the paper's reference rows compare with."""
        return [name.split("_", 1)[0] for name in self.tables if name.endswith("_judge")]

    @property
    def judge_error_counts(self) -> dict[str, int]:
        """Cases the judge could not score, per reason, most common first."""
        return dict(Counter(self.judge_errors.values()).most_common())

    @property
    def results_path(self) -> Path:
        return self.out_dir / "results.json"

    def markdown(self) -> str:
        """All tables as markdown, titled; says plainly when no judge scored the cases."""
        parts = [] if self.judged else ["_No VLM judge configured: offline metrics only._"]
        if self.judge_errors:
            reasons = ", ".join(f"{reason} x{n}" for reason, n in self.judge_error_counts.items())
            parts.append(
                f"_The judge could not score {len(self.judge_errors)} of {len(self.rows)} cases ({reasons}); "
                "judge tables cover the others, offline metrics cover all._"
            )
        for name, table in self.tables.items():
            parts += [f"### {name.replace('_', ' ')}", markdown_table(table, max_columns=METADATA_COLUMNS)]
        for bench in self.benchmarks:
            parts += [f"### {bench} vs the published rows", comparison_markdown(self.headline, bench)]
        return "\n\n".join(parts)

    def summary(self) -> dict[str, Any]:
        return {
            "checkpoint_id": self.checkpoint_id,
            "suite": self.suite_name,
            "suite_hash": self.suite_hash,
            "settings": self.settings.model_dump(),
            "settings_key": self.settings.settings_key,
            "judged": self.judged,
            "judge_model": self.judge_model,
            "judge_calls": self.judge_calls,
            "judge_cached": self.judge_cached,
            "judge_errors": self.judge_errors,
            "judge_error_counts": self.judge_error_counts,
            "cases": len(self.rows),
            "generated": self.generated,
            "reused": self.reused,
            "timings": self.timings,
            "headline": self.headline,
            "images": {k: str(v.relative_to(self.out_dir)) for k, v in self.images.items()},
            "reference": {bench: reference_records(bench) for bench in self.benchmarks},
            "release_gap": {bench: release_gap(self.headline, bench) for bench in self.benchmarks},
            "context": self.context,
        }


def write_result(result: EvalResult) -> None:
    """cases.csv, tables/<name>.md and .csv, then results.json, each written atomically under `out_dir`."""
    out = result.out_dir
    buf = result.rows.to_csv(index=False)
    write_text_atomic(out / "cases.csv", buf)
    for name, table in result.tables.items():
        write_text_atomic(out / "tables" / f"{name}.md", markdown_table(table) + "\n")
        write_text_atomic(out / "tables" / f"{name}.csv", table.to_csv())
    write_text_atomic(result.results_path, json.dumps(result.summary(), indent=2, sort_keys=True, default=str) + "\n")
