"""`kiwi report`: a model version's scores, pictures, promotion and lineage as one HTML file."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def report(
    ref: str = typer.Argument(..., help="models:/kiwi-edit@champion, models:/kiwi-edit/3, or an MLflow run id"),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="Where to write the HTML file."),
) -> None:
    """Write a self-contained HTML report (no network, no scripts) for one registered model version."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one summary line, not a bar per picture
    from kiwi_platform.env import require_state
    from kiwi_platform.report import build_report
    from kiwi_platform.resources import build_resources

    tracking = build_resources(require_state("tracking"))["tracking"]
    path = build_report(tracking, ref, out)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
