"""`kiwi export`: write a batch's masks, references and metadata as plain files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn


def export(
    batch: str = typer.Option(..., "--batch", "-b", help="Batch name."),
    out: Path = typer.Option(..., "--out", help="Output folder: one sub-folder per manifest row."),
) -> None:
    """Export masks/<frame>.png, reference.png and meta.json per manifest row."""
    from kiwi_platform.cli.paths import output_folder
    from kiwi_platform.env import require_state
    from kiwi_platform.refvie.export import export_batch
    from kiwi_platform.resources import build_resources

    output_folder(out)
    store = build_resources(require_state())["store"]
    console = Console(soft_wrap=True)
    with Progress(TextColumn("export"), BarColumn(), MofNCompleteColumn(), console=console, transient=True) as bar:
        task = bar.add_task("rows")
        summary = export_batch(store, batch, out, progress=lambda d, t: bar.update(task, completed=d, total=t))
    console.print(
        f"exported {summary.rows} rows of batch {batch} to {summary.out_dir}: {summary.with_masks} with masks, "
        f"{summary.with_reference} with a reference, {summary.quarantined} quarantined"
    )


def register(app: typer.Typer) -> None:
    app.command("export")(export)
