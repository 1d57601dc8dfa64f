"""What a report shows, gathered once: the renderer reads these plain objects and never MLflow.

Keeping collection and rendering apart lets tests check the HTML from a real store and lets the
renderer stay a pure function of data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kiwi_platform.lineage.walk import Lineage


@dataclass
class Evaluation:
    """One `evaluate_checkpoint` output folder, read back: summary, tables, pictures, per-case rows."""

    results_path: Path
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    images: dict[str, Path]
    cases: pd.DataFrame | None = None

    @property
    def headline(self) -> dict[str, float]:
        return {k: float(v) for k, v in (self.summary.get("headline") or {}).items()}


@dataclass
class StageArtifacts:
    """Pictures a training stage logged to its MLflow run (absent ones stay None)."""

    stage: int
    run_id: str
    loss_curve: Path | None = None
    before_after: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class ReportData:
    ref: str
    lineage: Lineage
    version_tags: dict[str, str]
    run_id: str
    evaluation: Evaluation | None
    evaluation_note: str  # why there is no evaluation (empty when there is one)
    promotion: dict[str, Any] | None
    stages: list[StageArtifacts]
    stage_batches: dict[int, list[str]]  # stage -> batches its training manifest drew from
    generated_at: str
