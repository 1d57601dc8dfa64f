"""Benchmarks and promotion (SPEC section 5): versioned suites, scored checkpoints, the `champion` alias.

`benchmark_results` evaluates the newest stage-3 model and, on the same suites and settings, the
current champion (outputs and judge answers are cached, so re-scoring a champion is cheap).
`promoted_model` moves the alias only when the candidate is not worse on any headline metric
beyond the tolerance and every blocking check upstream passed; refusals are recorded too.
"""

import json
import time
from pathlib import Path

import dagster as dg

from assets.training import stage3_checkpoint
from kiwi_platform.evaluation import Decision, EvalSettings, build_standard_suites, compare, load_suite, load_user_suite, merge_suites, save_suite
from kiwi_platform.judge.resource import JudgeResource
from kiwi_platform.lib.files import write_text_atomic
from kiwi_platform.lib.preview import image_markdown
from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.resources.tracking import MlflowTracking
from kiwi_platform.settings import KiwiSettings
from kiwi_platform.tracking.evaluation_log import (
    champion_version, log_evaluation, logged_evaluation, model_version_info, record_decision,
)

SUITES_DIR = "benchmarks/suites"
EVAL_SUITE = "all"


class SuitesConfig(dg.Config):
    """Held-out synthetic suites (OpenVE-style, RefVIE-style), the real demo clips, and user suites."""

    n: int = 10  # cases per synthetic suite
    seed: int = 90210  # held out from every training seed
    frames: int = 9
    height: int = 64
    width: int = 96
    user_suites: list[str] = []  # upstream-format CSVs (prompt, src_video[, tgt_video][, ref_image][, category])


@dg.asset(group_name="evaluation", kinds={"python", "dvc"},
          description="Versioned benchmark definitions: OpenVE-style and RefVIE-style suites plus user suites.")  # fmt: skip
def benchmark_suites(context: dg.AssetExecutionContext, config: SuitesConfig, store: MediaStore, dvc: DvcRepo) -> dg.MaterializeResult:
    settings = KiwiSettings.from_env()
    root = store.root_path / SUITES_DIR
    suites = build_standard_suites(root / "standard", n=config.n, seed=config.seed, frames=config.frames,
                                   height=config.height, width=config.width, demo_dir=settings.demo_dir)  # fmt: skip
    parts = list(suites.values())
    for i, csv in enumerate(config.user_suites):
        user = load_user_suite(Path(csv), name=f"user{i}")
        parts.append(save_suite(user, root / "user" / f"user{i}"))
    merged = merge_suites(parts, root / EVAL_SUITE, name=EVAL_SUITE)
    tracked = dvc.track(root, f"benchmark_suites dagster run {context.run.run_id}")
    counts = {s.name: len(s.cases) for s in parts}
    context.log.info(f"benchmark suites {counts}, content hash {merged.content_hash}")
    return dg.MaterializeResult(
        metadata={"cases": len(merged.cases), "cases_per_suite": dg.MetadataValue.json(counts),
                  "suite_hash": merged.content_hash, "dvc_md5": tracked.md5, "dvc_path": tracked.path,
                  "data_repo_rev": tracked.git_rev},
        data_version=dg.DataVersion(merged.content_hash),
    )  # fmt: skip


class EvalConfig(dg.Config):
    """Generation settings for every case (the tiny demo defaults: 64x96, 5 frames, 2 steps)."""

    height: int = 64
    width: int = 96
    frames: int = 5
    steps: int = 2
    seed: int = 0
    device: str = "cpu"
    evaluate_champion: bool = True  # also score the current champion on the same suites and settings


def _latest(context, asset: str) -> dict:
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None:
        raise dg.Failure(description=f"{asset} has not been materialized yet")
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


@dg.asset(deps=[stage3_checkpoint, benchmark_suites], group_name="evaluation", kinds={"pytorch", "mlflow"}, pool="gpu",
          description="The newest stage-3 model (and the champion) scored on the benchmark suites: judge + offline metrics.")  # fmt: skip
def benchmark_results(
    context: dg.AssetExecutionContext, config: EvalConfig, store: MediaStore, tracking: MlflowTracking, judge: JudgeResource
) -> dg.MaterializeResult:
    settings = KiwiSettings.from_env()
    candidate = _latest(context, "stage3_checkpoint")
    version = str(candidate.get("model_version", ""))
    if not version:
        raise dg.Failure(description="stage3_checkpoint was materialized with register_model=false; nothing to evaluate")
    suite = load_suite(store.root_path / SUITES_DIR / EVAL_SUITE)
    eval_settings = EvalSettings(height=config.height, width=config.width, frames=config.frames, steps=config.steps,
                                 seed=config.seed, device=config.device)  # fmt: skip
    vlm = judge.judge() if judge.enabled else None  # offline metrics only when no endpoint is configured
    started = time.perf_counter()

    def evaluate(model_version: str, checkpoint_dir: str):
        from kiwi_platform.evaluation import evaluate_checkpoint

        def progress(stage: str, done: int, total: int) -> None:
            if done == total or done % 10 == 0:
                context.log.info(f"v{model_version} {stage} {done}/{total}")

        out = settings.home / "evaluations" / f"v{model_version}-{eval_settings.settings_key}"
        return evaluate_checkpoint(checkpoint_dir, suite, out, settings=eval_settings, judge=vlm, progress=progress)

    result = evaluate(version, str(candidate["checkpoint_dir"]))
    log_evaluation(tracking, version, result)
    champion = champion_version(tracking)
    champion_summary = None
    if champion == version:  # re-evaluating the champion itself: compare it with itself
        champion_summary = {"version": champion, "headline": result.headline, "results": str(result.results_path)}
    elif champion and config.evaluate_champion:
        info = model_version_info(tracking, champion)
        champ = evaluate(champion, info["checkpoint_dir"])
        log_evaluation(tracking, champion, champ)
        champion_summary = {"version": champion, "headline": champ.headline, "results": str(champ.results_path)}
    elif champion:  # not re-scored: only its logged scores on this very suite and settings count
        champion_summary = logged_evaluation(tracking, champion, suite.content_hash, eval_settings.settings_key)
    summary = {"candidate": {"version": version, "headline": result.headline, "results": str(result.results_path)},
               "champion": champion_summary, "suite_hash": suite.content_hash, "settings": eval_settings.model_dump()}  # fmt: skip
    summary_path = settings.home / "evaluations" / "latest.json"
    write_text_atomic(summary_path, json.dumps(summary, indent=1, default=str))
    metadata = {
        "candidate_version": version,
        "champion_version": champion or "",
        "suite_hash": suite.content_hash,
        "cases": len(result.rows),
        "judged": result.judged,
        "judge_calls": result.judge_calls,
        "judge_cached": result.judge_cached,
        "cases_per_minute": round(result.timings.get("cases_per_minute", 0.0), 1),
        "generation_share": round(result.timings.get("generation_share", 0.0), 3),
        "scores": dg.MetadataValue.md(result.markdown()),
        "headline": dg.MetadataValue.json({k: round(v, 4) for k, v in result.headline.items() if v == v}),
        "results": dg.MetadataValue.path(str(result.results_path)),
        "summary": dg.MetadataValue.path(str(summary_path)),
        "seconds": round(time.perf_counter() - started, 2),
    }
    grid = next((p for name, p in sorted(result.images.items()) if name.startswith("grid")), None)
    if grid:
        from PIL import Image

        metadata["before_after"] = dg.MetadataValue.md(image_markdown(Image.open(grid).convert("RGB"), "before/after"))
    return dg.MaterializeResult(metadata=metadata)


class PromotionConfig(dg.Config):
    headline: list[str] = ["offline/preservation_psnr", "offline/temporal_consistency", "offline/reference_fidelity"]
    judge_headline: list[str] = ["openve/overall", "refvie/overall"]  # used when a judge scored the cases
    tolerance: float = 0.05  # absolute slack per metric before "worse" blocks promotion
    alias: str = "champion"


@dg.asset(deps=[benchmark_results], group_name="evaluation", kinds={"mlflow"},
          description="Sets the `champion` alias to the candidate only if it is not worse on any headline metric and checks passed.")  # fmt: skip
def promoted_model(context: dg.AssetExecutionContext, config: PromotionConfig, tracking: MlflowTracking) -> dg.MaterializeResult:
    summary = json.loads((KiwiSettings.from_env().home / "evaluations" / "latest.json").read_text())
    cand = summary["candidate"]
    champ = summary["champion"]
    headline = list(config.headline)
    if any(k.startswith(("openve/", "refvie/")) for k in cand["headline"]) and any(k in cand["headline"] for k in config.judge_headline):
        headline += config.judge_headline
    failed_checks = _failed_blocking_checks(context)
    if champ is not None and not champ.get("headline"):
        decision = Decision(False, [f"champion v{champ['version']} has no evaluation on this suite and settings; "
                                    "re-run benchmark_results with evaluate_champion=true"])  # fmt: skip
    else:
        decision = compare(cand["headline"], champ["headline"] if champ else None, headline, tolerance=config.tolerance)
    promote = decision.promote and not failed_checks
    reasons = list(decision.reasons) + [f"blocking check failed: {c}" for c in failed_checks]
    record_decision(tracking, cand["version"], champ["version"] if champ else None, promote, reasons, config.alias)
    context.log.info(("promoted" if promote else "refused") + f" v{cand['version']}: {'; '.join(reasons)}")
    return dg.MaterializeResult(metadata={
        "promoted": promote,
        "candidate_version": cand["version"],
        "previous_champion": champ["version"] if champ else "",
        "alias": config.alias,
        "champion_uri": f"models:/{tracking.registered_model}@{config.alias}",
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in reasons) or "- first model"),
        "deltas": dg.MetadataValue.json({k: round(v, 4) for k, v in decision.deltas.items()}),
    })  # fmt: skip


def _failed_blocking_checks(context: dg.AssetExecutionContext) -> list[str]:
    """Blocking checks whose latest evaluation (per partition) failed, across the whole graph."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    from kiwi_platform.definitions import defs  # the graph, not this run's subset

    graph = defs.resolve_asset_graph()
    done = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
    failed = []
    for key in sorted(graph.asset_check_keys, key=str):
        if not graph.get_check_spec(key).blocking:
            continue
        latest: dict[str | None, bool] = {}
        for rec in context.instance.event_log_storage.get_asset_check_execution_history(key, limit=200, status=done):
            latest.setdefault(rec.partition, rec.status == AssetCheckExecutionRecordStatus.SUCCEEDED)  # newest first
        failed += [f"{key.asset_key.to_user_string()}:{key.name}[{p or '-'}]" for p, ok in latest.items() if not ok]
    return failed
