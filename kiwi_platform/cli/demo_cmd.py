"""`kiwi demo`: the quick start. Materialize the whole pipeline on the demo data, then say where to look.

Two kinds of batches: the upstream Kiwi-Edit demo manifests (their targets were never shipped,
so their rows end in quarantine as `missing_file` and `duplicate_row`: the demo shows that
bad input is recorded, not dropped) and a synthetic batch made by `kiwi synth` from the real
demo clips through the data repo's `dvc repro`, which flows on downstream. Idempotent: a second
run reuses clips, DVC cache and the synthetic set.
"""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(soft_wrap=True)

UPSTREAM_MANIFESTS = {
    "demo-video": "video_demo_training_set.csv",
    "demo-video-ref": "video_ref_demo_training_set.csv",
    "demo-image": "image_demo_training_set.csv",
}
SYNTH_BATCH = "synth-demo"


def demo(
    select: str = typer.Option("*", "--select", help="Assets to materialize for every demo batch."),
) -> None:
    """Materialize every asset on the demo batches (upstream manifests + a synthetic batch)."""
    import dagster as dg

    from kiwi_platform.cli.run_cmds import print_outcomes, quarantine_summary
    from kiwi_platform.errors import KiwiUserError
    from kiwi_platform.resources import build_resources
    from kiwi_platform.runner import load_definitions, materialize, register_batch, resolve_selection
    from kiwi_platform.synth.stage import SYNTH_STAGE, reproduce_demo_set

    defs = load_definitions()
    resolve_selection(defs, select)
    from kiwi_platform.settings import KiwiSettings

    settings = KiwiSettings.from_env()
    resources = build_resources(settings)
    store, dvc = resources["store"], resources["dvc"]
    if not settings.demo_dir.is_dir():
        raise KiwiUserError(f"demo data not found at {settings.demo_dir}; set KIWI_DEMO_DIR to the kiwi_demo folder")
    console.rule("data repository")
    dvc.ensure()
    console.print(f"DVC data repo {dvc.root_path} (remote {dvc.remote_url})")
    console.print(f"generating synthetic pairs: dvc repro {SYNTH_STAGE} (skipped when unchanged)")
    batches = {name: settings.demo_dir / csv for name, csv in UPSTREAM_MANIFESTS.items()}
    batches[SYNTH_BATCH] = reproduce_demo_set(dvc, settings.demo_dir, "kiwi demo: synthetic pairs")
    instance = dg.DagsterInstance.get()
    for name, manifest in batches.items():
        store.register_batch(name, manifest, replace=True)  # the demo owns its batch names
        register_batch(instance, name)
    console.rule("materialize")
    outcomes = materialize(select, list(batches), defs=defs, tags={"kiwi/source": "demo"})
    ok = print_outcomes(outcomes)
    for name in batches:
        quarantine_summary(name)
    if ok and any("promoted_model" in o.materialized for o in outcomes):
        from kiwi_platform.cli.lineage_cmd import render_tree
        from kiwi_platform.lineage.walk import build_lineage

        console.rule("lineage of models:/kiwi-edit@champion")
        console.print(render_tree(build_lineage(resources["tracking"], "models:/kiwi-edit@champion"), max_files=5))
    console.rule("where to look")
    console.print(
        f"UIs:          .venv/bin/kiwi ui  -> Dagster http://127.0.0.1:3000 + MLflow {resources['tracking'].ui_url}"
        f"   (DAGSTER_HOME={settings.dagster_home})"
    )
    console.print(f"outputs:      {store.root_path / 'batches'}")
    console.print("quarantine:   .venv/bin/kiwi quarantine --batch demo-video")
    console.print(f"data versions: .venv/bin/kiwi dvc status   (DVC repo {dvc.root_path})")
    console.print("lineage:      .venv/bin/kiwi lineage models:/kiwi-edit@champion --verify")
    console.print(
        f"report:       .venv/bin/kiwi report models:/kiwi-edit@champion --out {settings.home / 'report.html'}"
    )
    console.print(f"export:       .venv/bin/kiwi export --batch {SYNTH_BATCH} --out {settings.home / 'exported'}")
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
