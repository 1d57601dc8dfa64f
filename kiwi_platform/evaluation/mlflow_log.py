"""Benchmark results and promotion decisions, recorded in MLflow.

Scores go on the evaluated model version's training run (metrics per category and dimension,
tables and images as artifacts); decisions go on the candidate version as tags, with both model
versions named, and move the alias only on promotion.
"""

from __future__ import annotations

import json
import time

from kiwi_platform.lib import mlflow_tags
from kiwi_platform.resources.tracking import MlflowTracking


def model_version_info(tracking: MlflowTracking, version: str) -> dict[str, str]:
    mv = tracking.client().get_model_version(tracking.registered_model, str(version))
    return {
        **mv.tags,
        "run_id": mv.run_id,
        "version": str(mv.version),
        "checkpoint_dir": mv.tags.get(mlflow_tags.CHECKPOINT_DIR, ""),
    }


def champion_version(tracking: MlflowTracking, alias: str = "champion") -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(tracking.client().get_model_version_by_alias(tracking.registered_model, alias).version)
    except MlflowException:
        return None


def logged_evaluation(tracking: MlflowTracking, version: str, suite_hash: str, settings_key: str) -> dict:
    """A version's previously logged headline, if it was scored on this suite with these settings
    (else an empty headline, which blocks promotion rather than comparing unlike with unlike)."""
    info = model_version_info(tracking, version)
    same = info.get("kiwi.eval.suite_hash") == suite_hash and info.get("kiwi.eval.settings_key") == settings_key
    metrics = tracking.client().get_run(info["run_id"]).data.metrics if same else {}
    headline = {k[len("eval/") :]: v for k, v in metrics.items() if k.startswith("eval/")}
    return {"version": str(version), "headline": headline, "results": info.get("kiwi.eval.results", "")}


def log_evaluation(tracking: MlflowTracking, version: str, result) -> str:
    """Metrics + artifacts of one evaluation on the model version's run; returns that run id."""
    client = tracking.client()
    run_id = model_version_info(tracking, version)["run_id"]
    now = int(time.time() * 1000)
    from mlflow.entities import Metric  # mlflow costs ~1 s: not at code-location import

    metrics = [Metric(f"eval/{k}", float(v), now, 0) for k, v in sorted(result.headline.items()) if v == v]
    for i in range(0, len(metrics), 500):
        client.log_batch(run_id, metrics=metrics[i : i + 500])
    key = result.settings.settings_key
    client.log_artifact(run_id, str(result.results_path), f"evaluation/{key}")
    for sub in ("tables", "images"):
        folder = result.out_dir / sub
        if folder.is_dir():
            client.log_artifacts(run_id, str(folder), f"evaluation/{key}/{sub}")
    client.set_model_version_tag(tracking.registered_model, str(version), "kiwi.eval.suite_hash", result.suite_hash)
    client.set_model_version_tag(tracking.registered_model, str(version), "kiwi.eval.results", str(result.results_path))
    client.set_model_version_tag(tracking.registered_model, str(version), "kiwi.eval.settings_key", key)
    return run_id


def record_decision(
    tracking: MlflowTracking, candidate: str, champion: str | None, promote: bool, reasons: list[str], alias: str
) -> None:
    client = tracking.client()
    name = tracking.registered_model
    decision = {
        "candidate": candidate,
        "champion": champion,
        "promoted": promote,
        "reasons": reasons,
        "alias": alias,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    client.set_model_version_tag(name, candidate, "kiwi.promotion", "promoted" if promote else "refused")
    client.set_model_version_tag(name, candidate, "kiwi.promotion_decision", json.dumps(decision))
    if promote:
        client.set_registered_model_alias(name, alias, candidate)
        if champion:
            client.set_model_version_tag(name, champion, "kiwi.replaced_by", candidate)
    client.set_registered_model_tag(name, "kiwi.last_decision", json.dumps(decision))
