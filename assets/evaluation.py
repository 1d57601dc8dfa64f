"""Benchmarks and promotion (docs/contract.md §5): versioned suites, scored checkpoints, the `champion` alias.

Logic lives in `kiwi_platform.evaluation`; this module only declares the assets. `benchmark_results`
records its evaluation summary in its materialization; `promoted_model` decides from that record.
"""

import time
from pathlib import Path

import dagster as dg
from PIL import Image
from pydantic import Field

from kiwi_platform.evaluation import (
    EvalSettings,
    build_standard_suites,
    load_suite,
    load_user_suite,
    merge_suites,
    save_suite,
)
from kiwi_platform.evaluation.candidate import score_candidate
from kiwi_platform.evaluation.mlflow_log import record_decision
from kiwi_platform.evaluation.promotion import decide, headline_metrics
from kiwi_platform.evaluation.reference_scores import reference_records, release_gap
from kiwi_platform.evaluation.suite_registry import load_registered, registered_names
from kiwi_platform.lib.check_results import failed_blocking_checks
from kiwi_platform.lib.failures import user_errors
from kiwi_platform.lib.materializations import latest_metadata
from kiwi_platform.lib.preview import image_markdown
from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.judge import JudgeResource
from kiwi_platform.resources.settings import SettingsResource
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.resources.tracking import MlflowTracking

SUITES_DIR = "benchmarks/suites"
EVAL_SUITE = "all"


class SuitesConfig(dg.Config):
    """Held-out synthetic suites (OpenVE-style, RefVIE-style), the real demo clips, user CSVs and registered suites."""

    n: int = Field(10, ge=1, description="Cases generated per synthetic suite (count). Default 10.")
    seed: int = Field(
        90210, description="Seed of the synthetic suites (integer); held out from every training seed. Default 90210."
    )
    frames: int = Field(9, ge=1, description="Frames per synthetic case (count). Default 9.")
    height: int = Field(64, ge=16, description="Height of synthetic cases, in pixels. Default 64.")
    width: int = Field(96, ge=16, description="Width of synthetic cases, in pixels. Default 96.")
    user_suites: list[str] = Field(
        [],
        description="Paths of upstream-format CSVs (prompt, src_video[, tgt_video][, ref_image][, category]), "
        "paths relative to each CSV. Default: none.",
    )
    registered_suites: list[str] | None = Field(
        None,
        description="Names of suites registered with `kiwi suite add` (OpenVE-Bench, RefVIE-Bench, ImgEdit as "
        "released) to merge into the evaluated suite. Default null = every registered suite; [] = none.",
    )


@dg.asset(group_name="evaluation", kinds={"python", "dvc"})
@user_errors
def benchmark_suites(
    context: dg.AssetExecutionContext, config: SuitesConfig, store: MediaStore, dvc: DvcRepo, settings: SettingsResource
) -> dg.MaterializeResult:
    """Versioned benchmark definitions: OpenVE-style and RefVIE-style suites plus user suites."""
    root = store.root_path / SUITES_DIR
    suites = build_standard_suites(
        root / "standard",
        n=config.n,
        seed=config.seed,
        frames=config.frames,
        height=config.height,
        width=config.width,
        demo_dir=settings.demo_path,
    )
    parts = list(suites.values())
    for i, csv in enumerate(config.user_suites):
        user = load_user_suite(Path(csv), name=f"user{i}")
        parts.append(save_suite(user, root / "user" / f"user{i}"))
    names = registered_names(store.root_path) if config.registered_suites is None else config.registered_suites
    registered = {}
    for name in names:  # already validated, hashed and DVC-tracked by `kiwi suite add`
        suite, info = load_registered(store.root_path, name)
        parts.append(suite)
        registered[name] = {k: info.get(k) for k in ("format", "cases", "rows", "skipped", "content_hash")}
    merged = merge_suites(parts, root / EVAL_SUITE, name=EVAL_SUITE)
    tracked = dvc.track(root, f"benchmark_suites dagster run {context.run.run_id}")
    counts = {s.name: len(s.cases) for s in parts}
    context.log.info(f"benchmark suites {counts}, content hash {merged.content_hash}")
    return dg.MaterializeResult(
        metadata={
            "cases": len(merged.cases),
            "cases_per_suite": dg.MetadataValue.json(counts),
            "registered_suites": dg.MetadataValue.json(registered),
            "skipped_as_upstream": sum(sum((r["skipped"] or {}).values()) for r in registered.values()),
            "suite_hash": merged.content_hash,
            "dvc_md5": tracked.md5,
            "dvc_path": tracked.path,
            "data_repo_rev": tracked.git_rev,
        },
        data_version=dg.DataVersion(merged.content_hash),
    )


class EvalConfig(dg.Config):
    """Generation settings for every case (the tiny demo defaults: 64x96, 5 frames, 2 steps)."""

    height: int = Field(64, ge=32, multiple_of=32, description="Output height, in pixels (multiple of 32). Default 64.")
    width: int = Field(96, ge=32, multiple_of=32, description="Output width, in pixels (multiple of 32). Default 96.")
    frames: int = Field(5, ge=1, description="Output frames per video case (count, 4k+1: 1, 5, 9 ... 81). Default 5.")
    steps: int = Field(2, ge=1, description="Sampler steps per case (count). Default 2; the release uses 50.")
    seed: int = Field(0, description="Sampling seed (integer), the same for every model so outputs compare. Default 0.")
    device: str = Field(
        "cpu",
        pattern=r"^(cpu|cuda(:\d+)?|mps)$",
        description="Torch device for generation: cpu, cuda, cuda:N or mps. Default cpu.",
    )
    evaluate_champion: bool = Field(
        True,
        description="Also score the current champion on the same suites and settings (true/false). Default true.",
    )


@dg.asset(
    deps=["stage3_checkpoint", benchmark_suites], group_name="evaluation", kinds={"pytorch", "mlflow"}, pool="gpu"
)
@user_errors
def benchmark_results(
    context: dg.AssetExecutionContext,
    config: EvalConfig,
    store: MediaStore,
    tracking: MlflowTracking,
    judge: JudgeResource,
    settings: SettingsResource,
) -> dg.MaterializeResult:
    """The newest stage-3 model (and the champion) scored on the benchmark suites: judge + offline metrics."""
    candidate = latest_metadata(context.instance, "stage3_checkpoint")
    version = str(candidate.get("model_version", ""))
    if not version:
        raise dg.Failure(
            description="stage3_checkpoint was materialized with register_model=false; nothing to evaluate"
        )
    suite = load_suite(store.root_path / SUITES_DIR / EVAL_SUITE)
    eval_settings = EvalSettings(
        height=config.height,
        width=config.width,
        frames=config.frames,
        steps=config.steps,
        seed=config.seed,
        device=config.device,
    )
    started = time.perf_counter()

    def progress(model_version: str, stage: str, done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            context.log.info(f"v{model_version} {stage} {done}/{total}")

    result, summary = score_candidate(
        version,
        str(candidate["checkpoint_dir"]),
        suite,
        settings=eval_settings,
        home=settings.home_path,
        tracking=tracking,
        judge=judge.judge() if judge.enabled else None,  # offline metrics only when no endpoint is configured
        evaluate_champion=config.evaluate_champion,
        progress=progress,
    )
    metadata = {
        "candidate_version": version,
        "champion_version": (summary["champion"] or {}).get("version", ""),
        "suite_hash": suite.content_hash,
        "cases": len(result.rows),
        "judged": result.judged,
        "judge_calls": result.judge_calls,
        "judge_cached": result.judge_cached,
        "judge_errors": len(result.judge_errors),
        "judge_error_reasons": dg.MetadataValue.json(result.judge_error_counts),
        "cases_per_minute": round(result.timings.get("cases_per_minute", 0.0), 1),
        "generation_share": round(result.timings.get("generation_share", 0.0), 3),
        "scores": dg.MetadataValue.md(result.markdown()),
        "headline": dg.MetadataValue.json({k: round(v, 4) for k, v in result.headline.items() if v == v}),
        "summary": dg.MetadataValue.json(summary),
        "results": dg.MetadataValue.path(str(result.results_path)),
        "reference_rows": dg.MetadataValue.json({b: reference_records(b) for b in result.benchmarks}),
        "release_gap": dg.MetadataValue.json({b: release_gap(result.headline, b) for b in result.benchmarks}),
        "seconds": round(time.perf_counter() - started, 2),
    }
    grid = next((p for name, p in sorted(result.images.items()) if name.startswith("grid")), None)
    if grid:
        metadata["before_after"] = dg.MetadataValue.md(image_markdown(Image.open(grid).convert("RGB"), "before/after"))
    return dg.MaterializeResult(metadata=metadata)


class PromotionConfig(dg.Config):
    """The promotion gate."""

    headline: list[str] = Field(
        ["offline/preservation_psnr", "offline/temporal_consistency", "offline/reference_fidelity"],
        description="Headline metric names (as in benchmark_results' `headline`) on which the candidate must not "
        "be worse than the champion. Default: preservation PSNR, temporal consistency, reference fidelity.",
    )
    judge_headline: list[str] = Field(
        ["openve/overall", "refvie/overall"],
        description="Judge metrics (1-5 scale) added to the headline when a judge scored the cases. "
        "Default: openve/overall, refvie/overall.",
    )
    tolerance: float = Field(
        0.05,
        ge=0.0,
        description="Absolute slack per metric, in that metric's own units, before 'worse' blocks promotion. "
        "Default 0.05.",
    )
    alias: str = Field(
        "champion",
        description="MLflow registry alias that marks the promoted model (any alias name). Default champion.",
    )


@dg.asset(deps=[benchmark_results], group_name="evaluation", kinds={"mlflow"})
@user_errors
def promoted_model(
    context: dg.AssetExecutionContext, config: PromotionConfig, tracking: MlflowTracking
) -> dg.MaterializeResult:
    """Sets the `champion` alias to the candidate only if it is not worse on any headline metric and checks passed."""
    summary = latest_metadata(context.instance, "benchmark_results").get("summary")
    if not summary:
        raise dg.Failure(
            description="the latest benchmark_results has no evaluation summary; re-materialize benchmark_results"
        )
    cand, champ = summary["candidate"], summary["champion"]
    headline = headline_metrics(cand["headline"], config.headline, config.judge_headline)
    decision = decide(summary, headline, config.tolerance, failed_blocking_checks(context.instance))
    record_decision(
        tracking, cand["version"], champ["version"] if champ else None, decision.promote, decision.reasons, config.alias
    )
    context.log.info(
        ("promoted" if decision.promote else "refused") + f" v{cand['version']}: {'; '.join(decision.reasons)}"
    )
    return dg.MaterializeResult(
        metadata={
            "promoted": decision.promote,
            "candidate_version": cand["version"],
            "previous_champion": champ["version"] if champ else "",
            "alias": config.alias,
            "champion_uri": f"models:/{tracking.registered_model}@{config.alias}",
            "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons) or "- first model"),
            "deltas": dg.MetadataValue.json({k: round(v, 4) for k, v in decision.deltas.items()}),
        }
    )
