"""One training stage inside a Dagster Pipes session: the same training code, launched elsewhere.

A stage asset can hand its work to a Kubernetes pod (dagster-k8s `PipesK8sClient`), a Databricks
job or a plain subprocess (`PipesSubprocessClient`) without touching the training code: the
launcher passes the config through Pipes `extras`; this entry point streams step metrics as Pipes
logs and reports the materialization (steps, losses, checkpoint folder, config hash) back to
Dagster. Run it as `python -m kiwi_platform.pipes.train_pod`, or on several GPUs / nodes as
`torchrun --nproc_per_node 8 -m kiwi_platform.pipes.train_pod` with `distributed: fsdp` (FSDP2,
`kiwi_platform.training.sharded`).

Under torchrun only rank 0 opens the Pipes session (one message stream, one materialization);
the other ranks read the same extras from the Pipes context and train silently. A rank that
fails makes every rank fail (their collectives break or time out), so torchrun exits non-zero
and Dagster marks the step failed; running it again resumes from the last complete checkpoint.

extras: {"train_config": {...TrainConfig...}, "manifest": PATH, "data_root": PATH, "output_dir": PATH,
         "global_batch": N (optional, fsdp: samples per micro-batch over all ranks),
         "features": PATH (optional: the training_features folder)}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dagster_pipes import PipesContext, PipesDefaultContextLoader, PipesEnvVarParamsLoader, open_dagster_pipes


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


def _train(extras: dict[str, Any], callbacks: Any):
    from kiwi_platform.training import TrainConfig, train

    config = TrainConfig(**extras["train_config"])
    args = (config, extras["manifest"], extras["data_root"], extras["output_dir"])
    features = extras.get("features")
    if config.distributed == "fsdp":
        from kiwi_platform.training.sharded import train_sharded

        return train_sharded(*args, callbacks=callbacks, global_batch=extras.get("global_batch"), features=features)
    return train(*args, callbacks=callbacks, features=features)


def _worker_extras() -> dict[str, Any]:
    """A non-zero rank's view of the extras, read from the Pipes context without opening a session."""
    params = PipesEnvVarParamsLoader().load_context_params()
    with PipesDefaultContextLoader().load_context(params) as data:
        return dict(data["extras"])


def main() -> None:
    if os.environ.get("RANK", "0") != "0":
        _train(_worker_extras(), None)
        return
    with open_dagster_pipes() as pipes:
        result = _train(dict(pipes.extras), PipesCallbacks(pipes))
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
                "resumed_from": result.resumed_from or "",
            },
            data_version=result.trainable_sha256 or result.config_hash,
        )


if __name__ == "__main__":
    main()
