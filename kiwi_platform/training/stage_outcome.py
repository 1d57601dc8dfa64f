"""What a tracked stage run reports back: callbacks to MLflow + Dagster logs, and the stage's outcome.

`StageOutcome.metadata` is what the stage asset shows in the UI (run links, losses, model version,
images); kept apart from `stage_run.py`, which orchestrates the run itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from PIL import Image

from kiwi_platform.lib.preview import image_markdown
from kiwi_platform.resources.tracking import MlflowTracking


class StageRunLogger:
    """Training callbacks -> MLflow metrics + Dagster logs (every step to MLflow, a line every few to Dagster)."""

    def __init__(self, context: dg.AssetExecutionContext, every: int = 1) -> None:
        self.context, self.every = context, every

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None}, step=step)
        if step % self.every == 0:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
            self.context.log.info(f"step {step}: {shown}")

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)
        self.context.log.info(f"validation at step {step}: {metrics}")

    def on_checkpoint(self, step: int, path: Path) -> None:
        self.context.log.info(f"checkpoint at step {step}: {path}")

    def on_warning(self, message: str) -> None:
        self.context.log.warning(message)


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else float("nan")


@dataclass
class StageOutcome:
    stage: int
    checkpoint_dir: Path
    run_id: str
    parent_run_id: str
    model_version: str | None
    model_uri: str | None
    logged_model_id: str | None
    result: dict
    weights_sha256: str
    images: dict[str, Path] = field(default_factory=dict)
    reused: bool = False  # an identical earlier materialization's version was returned, nothing retrained

    def metadata(self, tracking: MlflowTracking) -> dict[str, Any]:
        losses = self.result.get("losses") or []
        val = self.result.get("val_losses") or []
        window = max(1, len(losses) // 4)  # quarters: one step's loss swings with its random timestep
        meta: dict[str, Any] = {
            "checkpoint_dir": dg.MetadataValue.path(str(self.checkpoint_dir)),
            "mlflow_run_id": self.run_id,
            "mlflow_run": dg.MetadataValue.url(tracking.run_url(self.run_id)),
            "mlflow_parent_run_id": self.parent_run_id,
            "steps": int(self.result.get("steps", 0)),
            # per-step loss is noisy (each step draws its own timesteps): compare window means
            "train_loss_start": _mean(losses[:window]),
            "train_loss_end": _mean(losses[-window:]),
            "train_loss_window_steps": window,
            "val_loss_start": float(val[0][1]) if val else float("nan"),
            "val_loss_end": float(val[-1][1]) if val else float("nan"),
            "trainable_params": int(self.result.get("trainable_params", 0)),
            "resumed_from": self.result.get("resumed_from") or "",
            "config_hash": self.result.get("config_hash", ""),
            "weights_sha256": self.weights_sha256,
            "reused_existing_version": self.reused,
        }
        if self.model_version:
            meta.update(
                model_version=self.model_version,
                model_uri=self.model_uri or "",
                logged_model_id=self.logged_model_id or "",
                mlflow_model=dg.MetadataValue.url(tracking.model_url(self.model_version)),
            )
        for name, path in self.images.items():
            meta[name] = dg.MetadataValue.md(image_markdown(Image.open(path).convert("RGB"), name))
        return meta
