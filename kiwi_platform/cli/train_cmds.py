"""`kiwi train plan` and `kiwi train export`: size a sharded run before renting GPUs; consolidate its checkpoints.

Thin CLI over `kiwi_platform.training.sharded` (heavy imports are lazy).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from kiwi_platform.errors import KiwiUserError

train_app = typer.Typer(help="Plan and inspect sharded (FSDP2) training runs.", no_args_is_help=True)
GIB = 2**30


def plan(
    model: str = typer.Option("kiwi-5b", "--model", help="Named model config (tiny, kiwi-5b)."),
    stage: int = typer.Option(2, "--stage", min=1, max=3, help="Curriculum stage (its freeze set)."),
    gpus: int = typer.Option(8, "--gpus", min=1, help="Processes (GPUs) the weights are sharded over."),
    gpu_memory: float = typer.Option(80.0, "--gpu-memory", min=1.0, help="Memory per GPU in GB (1e9 bytes)."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Per-rank memory of FSDP2 training (real sharded layout on the meta device) and whether it fits."""
    from kiwi_platform.training.sharded.plan import plan as make_plan

    try:
        result = make_plan(model, stage, gpus, gpu_memory)
    except ValueError as exc:
        raise KiwiUserError(str(exc).splitlines()[0]) from None
    if as_json:
        typer.echo(json.dumps(result, indent=1))
        return
    r = result["per_rank"]
    typer.echo(
        f"{model} stage {stage} on {gpus} GPU(s) x {gpu_memory:g} GB: {r['trainable_params'] / 1e9:.2f}B of "
        f"{r['total_params'] / 1e9:.2f}B parameters trainable; per rank:"
    )
    for label, key in (
        ("parameters (fp32 shards)", "params"),
        ("gradients (fp32 shards)", "grads"),
        ("optimizer state (AdamW)", "optimizer"),
        ("gathered bf16 units", "gathered"),
        ("optimizer-step peak", "step_peak"),
    ):
        typer.echo(f"  {label:<26} {r[key] / GIB:8.2f} GiB")
    budget = result["budget_bytes"] / GIB
    for row in result["resolutions"]:
        verdict = "fits" if row["fits"] else "does NOT fit"
        typer.echo(
            f"  {row['resolution']:<12} activations {row['activation_bytes'] / GIB:5.2f} GiB -> peak "
            f"{row['peak_bytes'] / GIB:6.2f} GiB of {budget:.1f} usable: {verdict}"
        )
    if not all(row["fits"] for row in result["resolutions"]):
        typer.echo("  knobs: more GPUs, gradient_checkpointing=true, lower resolution or frames, CPU offload")
        raise typer.Exit(1)


def export(
    checkpoint: Path = typer.Argument(..., help="A sharded checkpoint folder (checkpoints/step-N)."),
    out: Path = typer.Option(..., "--out", help="Where the released-layout folder goes."),
) -> None:
    """Consolidate a sharded (DCP) checkpoint into the released layout (what MLflow registers)."""
    from kiwi_platform.training.sharded import export_checkpoint

    if not checkpoint.is_dir():
        raise KiwiUserError(f"checkpoint folder {checkpoint} does not exist")
    digest = export_checkpoint(checkpoint, out)
    typer.echo(f"exported {checkpoint} -> {out} (trainable sha256 {digest[:16]})")


train_app.command("plan")(plan)
train_app.command("export")(export)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
