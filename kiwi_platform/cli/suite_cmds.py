"""`kiwi suite add|list` and `kiwi evaluate`: public benchmarks in, any checkpoint scored on them.

    kiwi suite add openve --format openve-bench --file bench/OpenVE-Bench/benchmark_videos.csv --root bench/
    kiwi evaluate models:/kiwi-edit@champion --suite openve --judge --limit 20

`suite add` refuses a file with any bad row, listing each with its row, before anything is copied;
`evaluate` resumes where it stopped (outputs and judge answers are reused) and prints the score
tables next to the paper's published rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

suite_app = typer.Typer(
    help="Benchmark suites: register released benchmarks (OpenVE-Bench, RefVIE-Bench, ImgEdit).", no_args_is_help=True
)
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def add(
    name: str = typer.Argument(..., help="Name to register the suite under (lower-case, digits, - and _)."),
    fmt: str = typer.Option(..., "--format", help="openve-bench | refvie-bench | imgedit"),
    file: Path = typer.Option(..., "--file", help="benchmark_videos.csv, refvie_bench.yaml or singleturn.json"),
    root: Path = typer.Option(
        ..., "--root", help="Folder the file's media paths are relative to (upstream data_root)."
    ),
    replace: bool = typer.Option(False, "--replace", help="Switch an existing suite of this name to new content."),
) -> None:
    """Validate every row, copy the media into the data repo, hash and DVC-track the suite."""
    from kiwi_platform.env import prepare_environment
    from kiwi_platform.evaluation.suite_registry import register_suite
    from kiwi_platform.resources import build_resources

    settings = prepare_environment()
    registered = register_suite(settings.data_dir, name, fmt, file, root, replace=replace)
    dvc = build_resources(settings)["dvc"]
    tracked = dvc.track(registered.folder, f"kiwi suite add {name} ({fmt})")
    info = registered.info
    skipped = ", ".join(f"{k} x{v}" for k, v in info.get("skipped", {}).items())
    state = "registered" if registered.changed else "already registered (unchanged)"
    typer.echo(
        f"suite {name} {state}: {info['cases']} cases from {info['rows']} rows ({fmt})"
        + (f"; skipped as upstream does: {skipped}" if skipped else "")
    )
    typer.echo(f"content hash {info['content_hash'][:16]}  dvc md5 {tracked.md5}  data-repo rev {tracked.git_rev[:12]}")


def list_suites() -> None:
    """Registered suites with their format, case count and content hash."""
    from kiwi_platform.env import require_state
    from kiwi_platform.evaluation.suite_registry import load_registered, registered_names

    settings = require_state("data")
    for name in registered_names(settings.data_dir):
        _, info = load_registered(settings.data_dir, name)
        typer.echo(f"{name}\t{info['format']}\t{info['cases']} cases\t{info['content_hash'][:16]}")


def _checkpoint(ref: str):
    """(checkpoint folder, model version or None, tracking) for a folder, models:/ URI or run id."""
    from kiwi_platform.env import require_state
    from kiwi_platform.errors import KiwiUserError
    from kiwi_platform.resources import build_resources

    if ref.startswith("models:/") or (_RUN_ID.fullmatch(ref) and not Path(ref).exists()):
        from kiwi_platform.evaluation.mlflow_log import model_version_info
        from kiwi_platform.lib import mlflow_tags
        from kiwi_platform.lib.checkpoint_manifest import MANIFEST_NAME
        from kiwi_platform.lib.files import sha256_file
        from kiwi_platform.lineage.walk import resolve_version

        tracking = build_resources(require_state("tracking"))["tracking"]
        version, _ = resolve_version(tracking, ref)
        info = model_version_info(tracking, version)
        folder = Path(info["checkpoint_dir"]) if info["checkpoint_dir"] else None
        if folder is None or not folder.is_dir():
            raise KiwiUserError(f"{ref} (v{version}) records no checkpoint folder that exists here ({folder})")
        recorded = info.get(mlflow_tags.CHECKPOINT_MANIFEST_SHA256)
        manifest = folder / MANIFEST_NAME
        if recorded and (not manifest.is_file() or sha256_file(manifest) != recorded):
            raise KiwiUserError(
                f"checkpoint {folder} of v{version}: {MANIFEST_NAME} is missing or differs from the one registered; "
                "restore it or re-train the stage",
                code="checkpoint_changed",
            )
        return folder, version, tracking
    folder = Path(ref)
    if not folder.is_dir():
        raise KiwiUserError(
            f"checkpoint {ref} is neither a folder (released layout: transformer/, vae/, mllm_encoder/ ...) "
            "nor a models:/ URI or MLflow run id"
        )
    from kiwi_platform.env import prepare_environment

    return folder, None, build_resources(prepare_environment())["tracking"]


def evaluate(
    ref: str = typer.Argument(
        ..., help="Checkpoint folder, models:/kiwi-edit@champion, models:/kiwi-edit/3 or a run id."
    ),
    suite: str = typer.Option(..., "--suite", help="A registered suite (kiwi suite list)."),
    judge: bool = typer.Option(
        False, "--judge", help="Score with the VLM judge (KIWI_JUDGE_BASE_URL, KIWI_JUDGE_MODEL)."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N cases (in the benchmark's row order)."),
    height: int = typer.Option(480, help="Output height in pixels (multiple of 32)."),
    width: int = typer.Option(832, help="Output width in pixels (multiple of 32)."),
    frames: int = typer.Option(81, help="Frames per video case (4k+1); image cases use 1."),
    steps: int = typer.Option(50, help="Sampler steps per case."),
    seed: int = typer.Option(0, help="Sampling seed."),
    device: str = typer.Option("cpu", help="Torch device, e.g. cpu or cuda."),
) -> None:
    """Score a checkpoint on a suite outside the training graph; resumes, logs an MLflow run, prints the tables."""
    from pydantic import ValidationError

    from kiwi_platform.errors import KiwiUserError
    from kiwi_platform.evaluation.settings import EvalSettings
    from kiwi_platform.evaluation.standalone import evaluate_standalone
    from kiwi_platform.evaluation.suite_registry import load_registered
    from kiwi_platform.resources import JudgeResource
    from kiwi_platform.settings import KiwiSettings

    try:
        settings = EvalSettings(height=height, width=width, frames=frames, steps=steps, seed=seed, device=device)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise KiwiUserError(f"--{first['loc'][0]}: {first['msg']}") from None
    folder, version, tracking = _checkpoint(ref)
    home = KiwiSettings.from_env()
    cases, info = load_registered(home.data_dir, suite)
    the_judge = None
    if judge:
        resource = JudgeResource.from_env()
        if not resource.enabled:
            raise KiwiUserError(
                "--judge needs KIWI_JUDGE_BASE_URL and KIWI_JUDGE_MODEL (an OpenAI-compatible endpoint)"
            )
        the_judge = resource.judge()

    def progress(stage: str, done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            typer.echo(f"{stage} {done}/{total}", err=True)

    context = {
        "registration": {k: info.get(k) for k in ("format", "rows", "skipped", "skipped_total", "source_sha256")}
    }
    result, run_id = evaluate_standalone(
        folder,
        cases,
        home=home.home,
        tracking=tracking,
        settings=settings,
        judge=the_judge,
        limit=limit,
        source=ref,
        model_version=version,
        context=context,
        progress=progress,
    )
    typer.echo(
        f"{suite}: {len(result.rows)} of {len(cases.cases)} cases; generated {result.generated}, reused {result.reused}"
        + (f"; judge {result.judge_model}: {result.judge_calls} calls, {result.judge_cached} cached" if judge else "")
    )
    if info.get("skipped_total"):
        typer.echo(f"skipped as upstream does: {info['skipped']}")
    typer.echo(result.markdown())
    typer.echo(f"MLflow run {run_id}; results {result.results_path}")


def register(app: typer.Typer) -> None:
    suite_app.command("add")(add)
    suite_app.command("list")(list_suites)
    app.add_typer(suite_app, name="suite")
    app.command("evaluate")(evaluate)
