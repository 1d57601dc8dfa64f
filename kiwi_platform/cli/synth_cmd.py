"""`kiwi synth`: write synthetic edit pairs with known ground truth (masks, edit type, reference)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def synth(
    out: Path = typer.Option(..., "--out", help="Output folder (manifest.csv, ground_truth.jsonl, src/, tgt/, gt/)."),
    n: int = typer.Option(24, "--n", help="Number of edit pairs."),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed and options give the same files."),
    frames: int = typer.Option(81, "--frames", help="Frames per video pair."),
    height: int = typer.Option(256, "--height", help="Frame height (multiple of 16)."),
    width: int = typer.Option(448, "--width", help="Frame width (multiple of 16)."),
    image_share: float = typer.Option(0.25, "--image-share", help="Share of 1-frame image pairs (0..1)."),
    with_ref: bool = typer.Option(False, "--with-ref/--no-ref", help="Add the ref_image column (true reference)."),
    demo_dir: Path | None = typer.Option(
        None, "--demo-dir", help="Demo media folder (default: KIWI_DEMO_DIR or the shipped demo)."
    ),
    difficulty: str = typer.Option(
        "easy", "--difficulty", help="easy (default: today's set) or hard (every factor below but --photometric-only)."
    ),
    motion: bool = typer.Option(False, "--motion", help="Edited objects grow/shrink and pass behind a pole."),
    camera: bool = typer.Option(False, "--camera", help="One pan/zoom per pair, shared by source and target."),
    regenerate: bool = typer.Option(
        False,
        "--regenerate",
        help="Targets re-rendered over the whole frame: gain/colour shift, noise, lossy re-encode.",
    ),
    distractors: bool = typer.Option(False, "--distractors", help="1-3 unedited objects besides the edited one."),
    resize_replace: bool = typer.Option(
        False, "--resize-replace", help="Replacements 0.6-0.75x or 1.3-1.5x the old object's size."
    ),
    photometric_only: bool = typer.Option(
        False,
        "--photometric-only",
        help="Bad input: targets differ from sources only by regeneration (edit type no_edit, expect qc_no_edit).",
    ),
) -> None:
    """Generate synthetic instruction edit pairs with ground-truth masks and reference images."""
    from kiwi_platform.cli.paths import output_folder
    from kiwi_platform.synth import generate  # imported here so `kiwi --help` stays fast
    from kiwi_platform.synth.difficulty import Difficulty

    factors = Difficulty.preset(
        difficulty,
        motion=motion,
        camera=camera,
        regenerate=regenerate,
        distractors=distractors,
        resize_replace=resize_replace,
        photometric_only=photometric_only,
    )
    output_folder(out)

    console = Console()
    with Progress(
        TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("pairs", total=n)
        summary = generate(
            out,
            n,
            seed,
            frames=frames,
            height=height,
            width=width,
            image_share=image_share,
            with_ref=with_ref,
            demo_dir=demo_dir,
            progress=lambda done, total: bar.update(task, completed=done),
            difficulty=factors,
        )
    table = Table(title=f"{summary.n_pairs} synthetic pairs in {summary.seconds:.1f} s")
    table.add_column("edit type")
    table.add_column("pairs", justify="right")
    for edit_type, count in summary.edit_counts.items():
        table.add_row(edit_type, str(count))
    console.print(table)
    media = ", ".join(f"{count} {kind}" for kind, count in sorted(summary.media_counts.items()))
    console.print(f"media: {media}", soft_wrap=True)
    if factors.any:
        console.print(f"difficulty factors: {', '.join(factors.factors)}", soft_wrap=True, highlight=False)
    console.print(f"manifest: {summary.manifest}", soft_wrap=True, highlight=False)
    console.print(f"ground truth: {summary.ground_truth}", soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    """Add the `synth` command to the kiwi CLI."""
    app.command("synth")(synth)
