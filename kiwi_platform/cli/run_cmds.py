"""`kiwi ingest`, `kiwi materialize`: start runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from kiwi_platform.cli.run_config import load_run_config, merged
from kiwi_platform.errors import KiwiUserError

console = Console(soft_wrap=True)

DEFAULT_INGEST_SELECTION = "group:ingestion"


def print_outcomes(outcomes) -> bool:
    """Print a per-run summary; return True when every run succeeded with no blocking check failed."""
    all_ok = True
    for out in outcomes:
        label = out.partition or "(unpartitioned)"
        status = "[green]ok[/green]" if out.ok else "[red]FAILED[/red]"
        console.print(
            f"run {out.run_id[:8]} batch {label}: {status}; materialized {', '.join(out.materialized) or 'nothing'}"
        )
        for check in out.checks:
            if check.passed:
                mark = "[green]pass[/green]"
            elif check.blocking and check.severity != "WARN":  # Dagster blocks only on ERROR severity
                mark = "[red]FAIL[/red]"
            else:
                mark = "[yellow]warn[/yellow]"
            console.print(f"  check {check.asset}:{check.name} {mark}{' (blocking)' if check.blocking else ''}")
        for err in out.errors:
            console.print(f"  [red]error[/red] {err}")
        all_ok = all_ok and out.ok
    return all_ok


def quarantine_summary(batch: str) -> None:
    from kiwi_platform.lib import quarantine
    from kiwi_platform.resources import build_resources

    store = build_resources()["store"]
    try:
        accepted = len(store.read_table(batch, "normalized_clips"))
    except KiwiUserError:
        accepted = len(store.read_table(batch, "raw_edit_pairs"))
    q = quarantine.read_batch(store.batch_dir(batch))
    if not len(q):
        console.print(f"batch {batch}: {accepted} accepted, 0 quarantined")
        return
    table = Table(title=f"batch {batch}: {accepted} accepted, {len(q)} quarantined")
    table.add_column("stage")
    table.add_column("reason")
    table.add_column("rows", justify="right")
    for (stage, reason), n in q.groupby(["stage", "reason"]).size().items() if len(q) else []:
        table.add_row(stage, reason, str(n))
    console.print(table)


def ingest(
    manifest: list[str] = typer.Argument(
        ...,
        help="Manifest: a CSV (prompt, src_video, tgt_video[, ref_image]) or a quoted glob of released parquet "
        "chunks ('DIR/chunk_*.parquet': iid, prompt, src_video, tgt_video, ref_image_bytes).",
    ),
    batch: str = typer.Option(..., "--batch", "-b", help="Batch name (a Dagster partition)."),
    base_path: str = typer.Option(
        None,
        "--base-path",
        help="Folder (or URL prefix such as s3://bucket/data) relative media paths start from (upstream's "
        "--dataset_base_path); default: the manifest's folder. Absolute media paths and URLs are used as written.",
    ),
    copy_raw: bool = typer.Option(
        False,
        "--copy-raw",
        help="Copy the raw media into the batch (DVC-versioned) instead of reading them in place; for sources "
        "that may disappear (docs/raw-media.md).",
    ),
    select: str = typer.Option(DEFAULT_INGEST_SELECTION, "--select", help="Assets to materialize for the batch."),
    replace: bool = typer.Option(
        False, "--replace", help="Let an already registered batch read this manifest instead of its own."
    ),
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help="Run config (YAML or JSON), as the Launchpad takes it, e.g. "
        "'ops: {raw_edit_pairs: {config: {min_frames: 17}}}'; this command's own flags win on a clash.",
    ),
) -> None:
    """Register a manifest as a batch and materialize its ingestion assets.

    A batch keeps the manifest it was first ingested from: another manifest (by content) under the
    same name is refused unless --replace. Ingests of one batch queue; different batches run side by side.
    """
    from kiwi_platform.ingestion.sources import open_source
    from kiwi_platform.resources.store import check_batch_name
    from kiwi_platform.runner import load_definitions, materialize, register_batch, resolve_selection

    check_batch_name(batch)
    extra = load_run_config(config)
    if len(manifest) > 1:
        raise KiwiUserError(
            f"got {len(manifest)} manifest paths ({manifest[0]}, {manifest[1]}, ...): pass one CSV, or quote the "
            "glob of parquet chunks ('DIR/chunk_*.parquet') so kiwi expands it, not the shell",
            code="bad_arguments",
        )
    from kiwi_platform.ingestion.remote import is_url

    if base_path is None or is_url(base_path):
        base = base_path
    else:
        base = str(Path(base_path).expanduser().resolve())
    source = open_source(manifest[0], base)  # an unreadable manifest or bad chunks stop here with one line
    store = _store()
    store.check_registration(batch, source.spec, replace=replace, base_path=base)  # before the slow part
    import dagster as dg

    defs = load_definitions()
    resolve_selection(defs, select)  # a bad selection must not leave a half-registered batch behind
    own = {"ops": {"raw_edit_pairs": {"config": {"manifest": source.spec, "base_path": base, "copy_raw": copy_raw}}}}
    run_config = merged(own, extra)
    with store.claim_batch(batch, source.spec, replace=replace, base_path=base) as entry:
        register_batch(dg.DagsterInstance.get(), batch)
        console.print(f"batch {batch}: {source.rows} rows from {entry['manifest']} (media under {source.base_dir})")
        outcomes = materialize(select, [batch], defs=defs, run_config=run_config)
        print_outcomes(outcomes)
        quarantine_summary(batch)  # still under the batch's lock: the summary is of this run
    if not all(o.success for o in outcomes):
        raise typer.Exit(1)


def _store():
    from kiwi_platform.resources import build_resources

    return build_resources()["store"]


def materialize_cmd(
    select: str = typer.Option(
        ..., "--select", "-s", help="Dagster asset selection, e.g. '+normalized_clips' or 'group:ingestion'."
    ),
    batch: list[str] = typer.Option(None, "--batch", "-b", help="Batch partition(s); default: every registered batch."),
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help="Run config (YAML or JSON), as the Launchpad takes it, e.g. "
        "'ops: {raw_edit_pairs: {config: {min_frames: 17}}}'.",
    ),
) -> None:
    """Materialize assets like the UI's Materialize button; exits 1 if a step or blocking check failed."""
    from kiwi_platform.runner import materialize

    outcomes = materialize(select, list(batch) if batch else None, run_config=load_run_config(config) or None)
    if not print_outcomes(outcomes):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("materialize")(materialize_cmd)
