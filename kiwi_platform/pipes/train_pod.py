"""One training stage inside a Dagster Pipes session: the same `train` loop, launched elsewhere.

A stage asset can hand its work to a Kubernetes pod (dagster-k8s `PipesK8sClient`), a Databricks
job or a plain subprocess (`PipesSubprocessClient`) without touching the training loop: the
launcher passes the config through Pipes `extras`; this entry point streams step metrics as Pipes
logs and reports the materialization (steps, losses, checkpoint folder, config hash) back to
Dagster. Run it as `python -m kiwi_platform.pipes.train_pod` (or under `accelerate launch`).

extras: {"train_config": {...TrainConfig...}, "manifest": PATH, "data_root": PATH, "output_dir": PATH}
"""

from __future__ import annotations

from pathlib import Path

from dagster_pipes import PipesContext, open_dagster_pipes


class PipesCallbacks:
    """Forward training events to the orchestrating Dagster process."""

    def __init__(self, pipes: PipesContext, every: int = 1) -> None:
        self.pipes, self.every = pipes, every

    def on_step(self, step: int, metrics: dict) -> None:
        if step % self.every == 0:
            self.pipes.log.info(
                f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float))
            )

    def on_eval(self, step: int, metrics: dict) -> None:
        self.pipes.log.info(f"validation at step {step}: {metrics}")

    def on_checkpoint(self, step: int, path: Path) -> None:
        self.pipes.log.info(f"checkpoint at step {step}: {path}")

    def on_warning(self, message: str) -> None:
        self.pipes.log.warning(message)


def main() -> None:
    from kiwi_platform.training import TrainConfig, train

    with open_dagster_pipes() as pipes:
        extras = pipes.extras
        config = TrainConfig(**extras["train_config"])
        result = train(
            config, extras["manifest"], extras["data_root"], extras["output_dir"], callbacks=PipesCallbacks(pipes)
        )
        losses = result.losses
        pipes.report_asset_materialization(
            metadata={
                "checkpoint_dir": {"raw_value": str(result.final_dir), "type": "path"},
                "steps": result.steps,
                "loss_first": float(losses[0]) if losses else None,
                "loss_last": float(losses[-1]) if losses else None,
                "config_hash": result.config_hash,
                "manifest_sha256": result.manifest_sha256,
                "trainable_params": result.trainable_params,
            },
            data_version=result.trainable_sha256 or result.config_hash,
        )


if __name__ == "__main__":
    main()
