"""`kiwi export`: write a batch's masks, references and metadata as plain files.

The folder rules (what may be at --out, what --overwrite does) live in `refvie/export_target.py`;
the help below is where users read them, so keep the two in step.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn


def export(
    batch: str = typer.Option(..., "--batch", "-b", help="Batch name."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output folder: one sub-folder per manifest row, plus kiwi-export.json listing what was written. "
        "It must be new, empty, or a previous `kiwi export` (which is then replaced: only the files its "
        "kiwi-export.json lists are removed).",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="If --out holds anything else, move that whole folder aside to <out>.replaced-<time> (kept, "
        "never deleted) instead of refusing.",
    ),
) -> None:
    """Export masks/<frame>.png, reference.png and meta.json per manifest row.

    Written beside --out, renamed into place when complete: a failed or killed run leaves --out as it was.

    Nothing export did not write is ever deleted.
    """
    from kiwi_platform.env import require_state
    from kiwi_platform.refvie.export import export_batch
    from kiwi_platform.refvie.export_target import stale_temps
    from kiwi_platform.resources import build_resources

    settings = require_state()
    store = build_resources(settings)["store"]
    protected = [settings.data_dir, settings.dagster_home, settings.mlflow_artifacts]
    console = Console(soft_wrap=True)
    with Progress(TextColumn("export"), BarColumn(), MofNCompleteColumn(), console=console, transient=True) as bar:
        task = bar.add_task("rows")
        summary = export_batch(
            store,
            batch,
            out,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
            overwrite=overwrite,
            protected=protected,
        )
    console.print(
        f"exported {summary.rows} rows of batch {batch} to {summary.out_dir}: {summary.with_masks} with masks, "
        f"{summary.with_reference} with a reference, {summary.quarantined} quarantined"
    )
    outcome = summary.outcome
    if outcome.replaced is not None:
        console.print(f"replaced the previous export (batch {outcome.replaced.get('batch')}) that was there")
    if outcome.moved_aside is not None:
        console.print(f"moved what was at {summary.out_dir} aside to {outcome.moved_aside} (nothing was deleted)")
    if outcome.kept is not None:
        console.print(f"note: kept {outcome.kept}: the previous export's folder held files export did not write")
    for temp in stale_temps(summary.out_dir):
        console.print(f"note: {temp} is left from an interrupted (or still running) export; remove it when done")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
