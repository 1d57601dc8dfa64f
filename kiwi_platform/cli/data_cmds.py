"""`kiwi quarantine` and `kiwi dvc`: look at what was set aside, and at the data repo."""

from __future__ import annotations

import json
import subprocess
import sys

import typer
from rich.console import Console
from rich.table import Table

from kiwi_platform.errors import KiwiUserError


def quarantine_cmd(
    batch: str = typer.Option(..., "--batch", "-b", help="Batch name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines for machines."),
) -> None:
    """List a batch's quarantined rows: manifest row, reason code, message, offending path."""
    from kiwi_platform.env import require_state
    from kiwi_platform.lib import quarantine
    from kiwi_platform.resources import build_resources

    require_state()
    store = build_resources()["store"]
    if batch not in store.batches():
        known = ", ".join(store.batches()) or "none"
        raise KiwiUserError(f"unknown batch {batch!r}; known batches: {known}")
    if not (store.asset_dir(batch, "raw_edit_pairs") / "quarantine.parquet").exists():
        raise KiwiUserError(
            f"batch {batch!r} is registered but has not been ingested yet; run `kiwi materialize --select raw_edit_pairs+ --batch {batch}`"
        )
    df = quarantine.read_batch(store.batch_dir(batch))
    if as_json:
        for rec in df.to_dict("records"):
            rec["score"] = None if rec["score"] != rec["score"] else rec["score"]  # NaN -> null
            typer.echo(json.dumps(rec, sort_keys=True))
        return
    table = Table(title=f"quarantine of batch {batch}: {len(df)} rows")
    for col in ("row", "stage", "reason", "message", "path"):
        table.add_column(col, overflow="fold")
    for rec in df.to_dict("records"):
        table.add_row(str(rec["row"]), rec["stage"], rec["reason"], rec["message"], rec["path"])
    Console(soft_wrap=False).print(table if len(df) else f"batch {batch}: no quarantined rows")


def dvc_cmd(ctx: typer.Context) -> None:
    """Run `dvc ARGS` inside the data repository (e.g. `kiwi dvc status`, `kiwi dvc pull`)."""
    from kiwi_platform.env import require_state
    from kiwi_platform.resources import build_resources

    require_state()
    repo = build_resources()["dvc"]
    repo.ensure()
    # under the platform's DVC lock: runs publishing batches meanwhile wait instead of failing on DVC's own lock
    with repo.locked():
        proc = subprocess.run([sys.executable, "-m", "dvc", *ctx.args], cwd=repo.root_path, env=repo.env())
    raise typer.Exit(proc.returncode)


def register(app: typer.Typer) -> None:
    app.command("quarantine")(quarantine_cmd)
    app.command("dvc", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(dvc_cmd)
