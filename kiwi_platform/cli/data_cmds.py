"""`kiwi quarantine` and `kiwi dvc`: look at what was set aside, and at the data repo."""

from __future__ import annotations

import json
import os

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
    """Run `dvc ARGS` inside the data repository (e.g. `kiwi dvc status`, `kiwi dvc pull`).

    DVC runs in this process and no Dagster instance is opened: a data-repo command needs neither,
    and they were most of `kiwi dvc status` (a second interpreter importing DVC, the instance's
    storage; benchmarks/measured/dvc_status_2026-12-02.md).
    """
    from kiwi_platform.resources import build_dvc
    from kiwi_platform.settings import KiwiSettings

    settings = KiwiSettings.from_env()
    if not settings.data_dir.is_dir():  # the check of `require_state`, without opening Dagster's instance
        raise KiwiUserError(
            f"no Kiwi state at {settings.data_dir} (set KIWI_HOME, or run `kiwi demo` / `kiwi ingest` first)",
            code="no_state",
        )
    os.environ.setdefault("KIWI_HOME", str(settings.home))  # stages in dvc.yaml run `kiwi` from the data repo
    repo = build_dvc(settings)
    repo.ensure()
    raise typer.Exit(repo.run_cli(ctx.args))


def register(app: typer.Typer) -> None:
    app.command("quarantine")(quarantine_cmd)
    app.command("dvc", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(dvc_cmd)
