"""`kiwi lineage`: print how a model was made, down to the sha256 of the raw files.

`kiwi lineage --verify` without a model re-hashes the raw files of ingested batches where they
are (raw media are kept by reference, docs/raw-media.md) and names each changed or vanished one.
"""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.tree import Tree

STATUS_STYLE = {
    "ok": "[green]ok[/green]",
    "mismatch": "[red]MISMATCH[/red]",
    "missing": "[red]MISSING[/red]",
    "unchecked": "",
}


def lineage(
    ref: str = typer.Argument(
        None,
        help="models:/kiwi-edit@champion, models:/kiwi-edit/3, or an MLflow run id. "
        "Omitted with --verify: re-hash the raw files of ingested batches instead.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    verify: bool = typer.Option(False, "--verify", help="Re-hash every reachable file; exit 1 on any mismatch."),
    batch: list[str] = typer.Option(
        None, "--batch", "-b", help="With --verify and no model: only these batches (default: every batch)."
    ),
) -> None:
    """Model -> MLflow run -> stage checkpoints -> manifests (DVC, lakeFS) -> batches -> raw files."""
    from kiwi_platform.env import require_state
    from kiwi_platform.errors import KiwiUserError

    if ref is None:
        if not verify:
            raise KiwiUserError(
                "name a model (models:/kiwi-edit@champion) or pass --verify to re-hash the batches' raw files",
                code="bad_arguments",
            )
        verify_raw_files(list(batch or []), as_json)
        return
    from kiwi_platform.lineage.walk import build_lineage
    from kiwi_platform.resources import build_resources

    tracking = build_resources(require_state("tracking"))["tracking"]
    result = build_lineage(tracking, ref, verify=verify)
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "mismatches": [f.path for f in result.mismatches]}, indent=1))
    else:
        Console(width=None if sys.stdout.isatty() else 250).print(render_tree(result))
        if verify:
            checked = [f for f in result.files() if f.status != "unchecked"]
            typer.echo(f"verified {len(checked)} files: {len(result.mismatches)} mismatched or missing")
            for f in result.mismatches:  # one plain line each, whatever the terminal width
                expected = f"sha256 {f.sha256}" if f.sha256 else f"DVC md5 {f.md5}"
                typer.echo(f"{f.status.upper()}: {f.role} {f.path} (expected {expected})")
    if verify and result.mismatches:
        raise typer.Exit(1)


def verify_raw_files(batches: list[str], as_json: bool) -> None:
    """One line per changed, vanished or unreadable raw file, then a summary; exit 1 if any."""
    from kiwi_platform.env import require_state
    from kiwi_platform.errors import KiwiUserError
    from kiwi_platform.lineage.verify import verify_raw
    from kiwi_platform.resources import build_resources

    require_state()
    store = build_resources()["store"]
    known = store.batches()
    unknown = [b for b in batches if b not in known]
    if unknown:
        raise KiwiUserError(f"unknown batch {unknown[0]!r}; known batches: {', '.join(known) or 'none'}")
    result = verify_raw(store, batches or known)
    if as_json:
        problems = [p.__dict__ for p in result.problems]
        typer.echo(json.dumps({"batches": result.batches, "checked": result.checked, "problems": problems}, indent=1))
    else:
        for problem in result.problems:
            typer.echo(problem.line())
        typer.echo(result.summary())
    if result.problems:
        raise typer.Exit(1)


def render_tree(result, max_files: int | None = None) -> Tree:
    alias = f" (aliases: {', '.join(result.aliases)})" if result.aliases else ""
    root = Tree(f"[bold]{result.model}[/bold]{alias} {result.promotion}")
    if result.evaluation:
        ev = root.add("evaluation")
        for k, v in sorted(result.evaluation.items())[:12]:
            ev.add(f"{k} = {v:.4g}")
    for st in result.stages:
        node = root.add(f"stage {st.stage}: model v{st.model_version}, MLflow run {st.run_id}")
        node.add(f"checkpoint {st.checkpoint_dir}")
        node.add(f"started from {st.init_checkpoint}")
        node.add(f"code {st.code_git_sha[:12]}  config {st.config_hash}  dagster run {st.dagster_run_id}")
        m = node.add(
            f"training manifest {st.manifest.path} sha256 {st.manifest.sha256[:16]} {STATUS_STYLE[st.manifest.status]}"
        )
        m.add(f"DVC md5 {st.manifest_dvc_md5} at data-repo rev {st.data_repo_rev[:12]}")
        if st.lakefs_commit:
            m.add(f"lakeFS commit {st.lakefs_commit}")
    for b in result.batches:
        node = root.add(
            f"batch {b.batch}: {b.samples_used} pairs used; quadruplets DVC md5 {b.quadruplets_dvc_md5}, raw {b.raw_dvc_md5}"
        )
        shown = b.files if max_files is None else b.files[:max_files]
        for f in shown:
            node.add(f"{f.role}: {f.path} sha256 {f.sha256[:16]} {STATUS_STYLE[f.status]}")
        if len(shown) < len(b.files):
            node.add(f"... {len(b.files) - len(shown)} more files (kiwi lineage shows all)")
        for st in b.generated_by:
            made = node.add(f"made by DVC stage {st.stage} (dvc.lock): {st.out} md5 {st.out_md5}")
            made.add(f"cmd: {st.cmd}")
            if st.params:
                made.add("params: " + ", ".join(f"{k}={v}" for k, v in sorted(st.params.items())))
            inputs = st.inputs if max_files is None else st.inputs[:max_files]
            for f in inputs:
                digest = f"sha256 {f.sha256[:16]}" if f.sha256 else f"md5 {f.md5}"
                made.add(f"{f.role}: {f.path} {digest} {STATUS_STYLE[f.status]}")
            if len(inputs) < len(st.inputs):
                made.add(f"... {len(st.inputs) - len(inputs)} more inputs (kiwi lineage shows all)")
    return root


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage)
