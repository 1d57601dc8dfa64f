"""`train()`: one curriculum stage on accelerate, with exact resume and clear faults.

Exactness: every source of randomness in a step is derived from (seed, step, micro-batch, rank)
(noise/timestep generators) or restored from the checkpoint (global RNGs, AdamW moments, LR
schedule, data cursors), so a run stopped after step k and resumed reproduces the uninterrupted
run's losses. No Dagster or MLflow here: callers observe the run through callbacks. Saving and
restoring the run's state is `kiwi_platform.training.run_checkpoint`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import set_seed

from kiwi_platform.lib.files import sha256_file, write_text_atomic
from kiwi_platform.training.config import TrainConfig
from kiwi_platform.training.data import MixSampler, Prefetcher, SampleLoader, load_manifest, split_by_pair
from kiwi_platform.training.distributed import build_accelerator
from kiwi_platform.training.errors import TrainingDiverged, TrainingInterrupted, TrainingOOM
from kiwi_platform.training.feature_loader import CacheCounts, feature_warnings, with_features
from kiwi_platform.training.modules import (
    PipelineLoss,
    enable_gradient_checkpointing,
    load_pipeline,
    named_trainable,
    trainable_digest,
)
from kiwi_platform.training.results import TrainResult, emit
from kiwi_platform.training.run_checkpoint import reset_checkpoints, resume_run, save_run
from kiwi_platform.training.seeds import constant_with_warmup, eval_seed, micro_seed
from kiwi_platform.training.signals import StopRequest

log = logging.getLogger("kiwi_platform.training")


class _Run:
    """State of one `train` call; methods are the loop's phases."""

    def __init__(
        self,
        config: TrainConfig,
        manifest_path: Path,
        data_root: Path,
        output_dir: Path,
        callbacks: Any,
        pipeline: Any = None,
        features: str | Path | None = None,
    ) -> None:
        from model import apply_stage_freezing

        self.config, self.callbacks = config, callbacks
        self.output_dir = output_dir
        self.ckpt_root = output_dir / "checkpoints"
        self.accelerator = build_accelerator(config)
        acc = self.accelerator
        self.rank, self.world = acc.process_index, acc.num_processes

        df = load_manifest(manifest_path)
        self.manifest_sha256 = sha256_file(manifest_path)
        train_df, val_df = split_by_pair(df, config.val_fraction)
        self.sampler = MixSampler.build(train_df, config, manifest_path)
        self.val_rows = val_df.index.tolist()[: config.eval_samples]
        if config.eval_every and not self.val_rows:
            log.warning("eval_every is set but the validation split is empty (raise val_fraction); no eval")

        set_seed(config.seed)  # python / numpy / torch (+cuda); a resume restores the saved states instead
        self.pipeline = pipeline if pipeline is not None else load_pipeline(config)
        self.loader = with_features(SampleLoader(df, data_root), features, self.pipeline)
        self.trainable_names = apply_stage_freezing(self.pipeline, config.stage)
        self.params = named_trainable(self.pipeline, self.trainable_names)
        if config.gradient_checkpointing:
            enable_gradient_checkpointing(self.pipeline)
        self.module = PipelineLoss(self.pipeline)
        optimizer = torch.optim.AdamW(
            list(self.params.values()),
            lr=config.learning_rate,
            betas=config.betas,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
        )
        self.model, self.optimizer = acc.prepare(self.module, optimizer)
        self.prefetch, self.cache_counts = Prefetcher(self.loader, config), CacheCounts()
        # Not prepared: accelerate would step it once per process; we step it once per optimizer step.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, constant_with_warmup(config.warmup_steps))

        self.step = 0
        self.losses: list[float] = []
        self.val_losses: list[tuple[int, float]] = []
        self.seconds_before = 0.0
        self.started = time.perf_counter()
        self.resumed_from: str | None = None
        self.skipped: list[str] = []
        self.last_checkpoint: str | None = None

    # -- bookkeeping (saved and restored by run_checkpoint) ---------------------------
    def elapsed(self) -> float:
        """Training seconds including the runs before a resume."""
        return self.seconds_before + time.perf_counter() - self.started

    @property
    def samples_seen(self) -> int:
        return self.step * self.config.grad_accumulation * self.world

    # -- one optimizer step ----------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        cfg, acc = self.config, self.accelerator
        step = self.step + 1
        res = cfg.resolution_at(step)
        cycle = cfg.mix_cycle
        started = time.perf_counter()
        self.model.train()
        total = torch.zeros((), dtype=torch.float64)
        rows = self.sampler.plan(cycle, self.rank, self.world)
        upcoming = [(step, micro, row) for micro, row in enumerate(rows)]
        if step < cfg.max_steps:  # so the next step's first sample loads while this step computes
            upcoming.append((step + 1, 0, self.sampler.plan(cycle, self.rank, self.world, steps_ahead=1)[0]))
        self.sampler.advance(cycle, self.world)
        try:
            for micro in range(len(cycle)):
                batch = self.prefetch.get(
                    (step, micro), upcoming[micro + 1] if micro + 1 < len(upcoming) else None, rows[micro]
                )
                sync = micro == len(cycle) - 1
                with contextlib.nullcontext() if sync else acc.no_sync(self.model):
                    loss = self.model(batch, micro_seed(cfg.seed, step, micro, self.rank))
                    acc.backward(loss / len(cycle))
                total += loss.detach().double().cpu()
                self.cache_counts.add(batch)
            step_loss = float(acc.reduce(total.to(acc.device) / len(cycle), reduction="mean"))
            if not math.isfinite(step_loss):
                raise TrainingDiverged(step, step_loss, self.last_checkpoint)
            max_norm = cfg.max_grad_norm if cfg.max_grad_norm is not None else float("inf")
            grad_norm = float(acc.clip_grad_norm_(list(self.params.values()), max_norm))
            if not math.isfinite(grad_norm) and cfg.mixed_precision != "fp16":  # fp16: the scaler skips the step
                raise TrainingDiverged(step, grad_norm, self.last_checkpoint)
            lr = self.scheduler.get_last_lr()[0]
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        except torch.OutOfMemoryError as exc:
            self.prefetch.clear()
            self.optimizer.zero_grad(set_to_none=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise TrainingOOM(step, res.height, res.width, cfg.frames, str(exc)) from exc
        self.step = step
        self.losses.append(step_loss)
        seconds = time.perf_counter() - started
        metrics = {
            "loss": step_loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "step_seconds": seconds,
            "samples_per_s": len(cycle) * self.world / seconds,
            "samples_seen": float(self.samples_seen),
            "height": float(res.height),
            "width": float(res.width),
            **self.cache_counts.metrics(),
        }
        for message in feature_warnings(self.loader):
            emit(self.callbacks, "on_warning", message)
        if torch.cuda.is_available() and acc.device.type == "cuda":
            metrics["gpu_memory_gb"] = torch.cuda.max_memory_allocated(acc.device) / 2**30
        return metrics

    # -- validation ------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Mean flow-matching loss on the held-out pairs with fixed noise and timesteps."""
        if not self.val_rows:
            return None
        cfg = self.config
        res = cfg.resolution_at(max(self.step, 1))
        self.module.eval()
        losses = []
        for i, row in enumerate(self.val_rows):
            batch = self.loader.load(row, res.height, res.width, cfg.frames)
            with self.accelerator.autocast():
                losses.append(float(self.module(batch, eval_seed(cfg.seed, i))))
        self.module.train()
        value = float(np.mean(losses))
        self.val_losses.append((self.step, value))
        if self.accelerator.is_main_process:
            emit(
                self.callbacks,
                "on_eval",
                self.step,
                {
                    "val_loss": value,
                    "val_samples": float(len(losses)),
                    "height": float(res.height),
                    "width": float(res.width),
                },
            )
        return value


def _loop(run: _Run, config: TrainConfig, callbacks: Any, save: bool) -> None:
    """Evaluate at step 0, then step / evaluate / checkpoint until max_steps or a stop signal."""
    acc = run.accelerator
    if config.eval_every and run.step == 0:
        run.evaluate()
    with StopRequest() as stop:
        while run.step < config.max_steps:
            metrics = run.train_step()
            if acc.is_main_process:
                emit(callbacks, "on_step", run.step, metrics)
            if config.eval_every and (run.step % config.eval_every == 0 or run.step == config.max_steps):
                run.evaluate()
            stopping = stop.requested
            if run.world > 1:  # every rank must agree, or the checkpoint barrier would hang
                flag = torch.tensor(float(stopping), device=acc.device)
                stopping = bool(acc.reduce(flag, reduction="sum") > 0)
            due = run.step % config.checkpoint_every == 0 or run.step == config.max_steps or stopping
            if save and due:
                save_run(run, run.elapsed())
            if stopping:
                raise TrainingInterrupted(run.step, run.last_checkpoint)


def train(
    config: TrainConfig,
    manifest_path: str | Path,
    data_root: str | Path,
    output_dir: str | Path,
    *,
    callbacks: Any = None,
    resume: bool = True,
    pipeline: Any = None,
    save: bool = True,
    features: str | Path | None = None,
) -> TrainResult:
    """Train one stage; resume from `<output_dir>/checkpoints` when one is there (and resume=True).

    Writes `<output_dir>/final/` (released pipeline layout) and `<output_dir>/train_result.json`.
    `pipeline`: an already-built KiwiEditPipeline to start from instead of `config.model` /
    `init_checkpoint` (benchmarks, notebooks); it is trained in place.
    `features`: a feature cache folder (`training_features`); samples it holds for this pipeline's
    encoders skip clip decoding and encoding, the rest load on the fly (hits/misses in the metrics).
    Raises TrainingError subclasses for user-fixable faults (empty manifest, hash mismatch,
    missing previous-stage checkpoint, divergence, OOM, SIGTERM) with one-line messages.
    """
    if config.distributed == "fsdp" and pipeline is None:  # FSDP2 + sharded DCP checkpoints
        from kiwi_platform.training.sharded import train_sharded

        kw = {"callbacks": callbacks, "resume": resume, "save": save, "features": features}
        return train_sharded(config, manifest_path, data_root, output_dir, **kw)
    from model.build import save_checkpoint

    output_dir, manifest_path = Path(output_dir), Path(manifest_path)
    started = time.perf_counter()
    run = _Run(config, manifest_path, Path(data_root), output_dir, callbacks, pipeline, features)
    acc = run.accelerator
    if not resume and acc.is_main_process:
        reset_checkpoints(output_dir)
    acc.wait_for_everyone()
    if resume:
        resume_run(run)
    run.started = started

    try:
        _loop(run, config, callbacks, save)
    finally:
        run.prefetch.close()

    final_dir = output_dir / "final"
    if acc.is_main_process and save:
        save_checkpoint(run.pipeline, final_dir, overwrite=True)
    result = TrainResult(
        final_dir=final_dir,
        steps=run.step,
        losses=run.losses,
        val_losses=run.val_losses,
        trainable=run.trainable_names,
        trainable_params=sum(p.numel() for p in run.params.values()),
        samples_seen=run.samples_seen,
        seconds=run.elapsed(),
        resumed_from=run.resumed_from,
        config_hash=config.config_hash(),
        manifest_sha256=run.manifest_sha256,
        last_checkpoint=run.last_checkpoint,
        trainable_sha256=trainable_digest(run.params),
        skipped_checkpoints=run.skipped,
    )
    if acc.is_main_process and save:
        write_text_atomic(output_dir / "train_result.json", json.dumps(result.to_json(), indent=1))
    acc.wait_for_everyone()
    return result
