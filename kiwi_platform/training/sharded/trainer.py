"""`train_sharded()`: one curriculum stage on FSDP2, any number of processes, with exact sharded resume.

Why a trainer of its own (not accelerate's plugin): FSDP2's per-parameter sharding, DCP
checkpoints and a global batch that is independent of the world size are what make the
guarantees testable: the same `global_batch` gives the same data, noise and (up to float summation
order) updates with 1, 2 or 8 processes, so a run can resume on another world size. Each optimizer
step is one mix cycle; each micro-batch holds `global_batch` samples, rank r takes slots
[r * B/W, (r + 1) * B/W) and every slot's noise comes from (seed, step, micro, slot), never the
rank. Data, results and checkpoint rules are the one-process loop's (`training.loop`)."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from accelerate.utils import set_seed

from kiwi_platform.lib.files import sha256_file, write_text_atomic
from kiwi_platform.training.config import TrainConfig
from kiwi_platform.training.data import MixSampler, Prefetcher, SampleLoader, load_manifest, split_by_pair
from kiwi_platform.training.errors import TrainingDiverged, TrainingError, TrainingInterrupted, TrainingOOM
from kiwi_platform.training.feature_loader import CacheCounts, feature_warnings, with_features
from kiwi_platform.training.modules import enable_gradient_checkpointing, load_pipeline, named_trainable
from kiwi_platform.training.results import TrainResult, emit
from kiwi_platform.training.run_checkpoint import reset_checkpoints
from kiwi_platform.training.seeds import eval_seed, micro_seed
from kiwi_platform.training.sharded import dcp_state, process_group
from kiwi_platform.training.sharded.export import write_released
from kiwi_platform.training.sharded.wrap import shard_pipeline
from kiwi_platform.training.signals import StopRequest

log = logging.getLogger("kiwi_platform.training")


def _sum(value: float, device: torch.device) -> float:
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())


class ShardedRun:
    """State of one `train_sharded` call; `dcp_state` saves and restores it."""

    def __init__(
        self, config, manifest_path, data_root, output_dir, callbacks, global_batch, group, features=None
    ) -> None:
        from model import apply_stage_freezing

        self.config, self.callbacks, self.group = config, callbacks, group
        self.output_dir, self.ckpt_root = output_dir, output_dir / "checkpoints"
        df = load_manifest(manifest_path)
        self.manifest_sha256 = sha256_file(manifest_path)
        train_df, val_df = split_by_pair(df, config.val_fraction)
        self.sampler = MixSampler.build(train_df, config, manifest_path)
        self.val_rows = val_df.index.tolist()[: config.eval_samples]
        self.global_batch = global_batch or group.world
        self._check_batch()

        set_seed(config.seed)  # python / numpy / torch, as the one-process loop
        self.pipeline = load_pipeline(config)
        # before sharding: the cache keys hash the full (unsharded) VAE weights
        self.loader = with_features(SampleLoader(df, data_root), features, self.pipeline)
        self.prefetch, self.cache_counts = Prefetcher(self.loader, config), CacheCounts()
        self.trainable_names = apply_stage_freezing(self.pipeline, config.stage)
        if config.gradient_checkpointing:
            enable_gradient_checkpointing(self.pipeline)
        self.module = shard_pipeline(self.pipeline, self.trainable_names, config.mixed_precision)
        self.params = named_trainable(self.pipeline, self.trainable_names)  # DTensor shards after sharding
        self.optimizer = torch.optim.AdamW(
            list(self.params.values()),
            lr=config.learning_rate,
            betas=config.betas,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
        )
        warmup = config.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda done: 1.0 if warmup <= 0 else min(1.0, (done + 1) / warmup)
        )
        self.step = 0
        self.losses: list[float] = []
        self.val_losses: list[tuple[int, float]] = []
        self.seconds_before = 0.0
        self.started = time.perf_counter()
        self.resumed_from: str | None = None
        self.skipped: list[str] = []
        self.last_checkpoint: str | None = None

    def _check_batch(self) -> None:
        if self.global_batch % self.group.world:
            raise TrainingError(
                f"global batch {self.global_batch} is not divisible by the world size {self.group.world}: "
                "choose a global batch that is a multiple of the number of processes",
                code="bad_config",
            )

    @property
    def per_rank(self) -> int:
        return self.global_batch // self.group.world

    @property
    def samples_seen(self) -> int:
        return self.step * self.config.grad_accumulation * self.global_batch

    def elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def train_step(self) -> dict[str, float]:
        cfg, group = self.config, self.group
        step, cycle = self.step + 1, self.config.mix_cycle
        res = cfg.resolution_at(step)
        started = time.perf_counter()
        slots = range(group.rank * self.per_rank, (group.rank + 1) * self.per_rank)
        plans = {s: self.sampler.plan(cycle, s, self.global_batch) for s in slots}
        order = [(micro, slot) for micro in range(len(cycle)) for slot in slots]
        upcoming = [(step, k, plans[slot][micro]) for k, (micro, slot) in enumerate(order)]
        if step < cfg.max_steps:  # the next step's first sample loads while this step computes
            upcoming.append((step + 1, 0, self.sampler.plan(cycle, slots[0], self.global_batch, steps_ahead=1)[0]))
        self.sampler.advance(cycle, self.global_batch)
        self.module.train()
        local = 0.0
        try:
            for k, (micro, slot) in enumerate(order):
                following = upcoming[k + 1] if k + 1 < len(upcoming) else None
                batch = self.prefetch.get((step, k), following, upcoming[k][2])
                loss = self.module(batch, micro_seed(cfg.seed, step, micro, slot))
                (loss / (len(cycle) * self.per_rank)).backward()  # FSDP2 averages over ranks
                local += float(loss.detach().double())
                self.cache_counts.add(batch)
            step_loss = _sum(local, group.device) / (len(cycle) * self.global_batch)
            if not math.isfinite(step_loss):  # every rank sees the reduced value: all stop together
                raise TrainingDiverged(step, step_loss, self.last_checkpoint)
            max_norm = cfg.max_grad_norm if cfg.max_grad_norm is not None else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(list(self.params.values()), max_norm)
            grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
            if not math.isfinite(grad_norm):
                raise TrainingDiverged(step, grad_norm, self.last_checkpoint)
            lr = self.scheduler.get_last_lr()[0]
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        except torch.OutOfMemoryError as exc:
            self.prefetch.clear()
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingOOM(step, res.height, res.width, cfg.frames, str(exc)) from exc
        self.step = step
        self.losses.append(step_loss)
        seconds = time.perf_counter() - started
        metrics = {
            "loss": step_loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "step_seconds": seconds,
            "samples_per_s": len(cycle) * self.global_batch / seconds,
            "samples_seen": float(self.samples_seen),
            "height": float(res.height),
            "width": float(res.width),
            **self.cache_counts.metrics(),
        }
        for message in feature_warnings(self.loader):
            emit(self.callbacks, "on_warning", message)
        if group.device.type == "cuda":
            metrics["gpu_memory_gb"] = torch.cuda.max_memory_allocated(group.device) / 2**30
        return metrics

    @torch.no_grad()
    def evaluate(self) -> None:
        """Validation loss: rows split over ranks (padded so every rank runs the same number of forwards)."""
        if not self.val_rows:
            return
        cfg, group = self.config, self.group
        res = cfg.resolution_at(max(self.step, 1))
        self.module.eval()
        per = math.ceil(len(self.val_rows) / group.world)
        total = 0.0
        for k in range(per):
            i = group.rank + k * group.world
            real = i < len(self.val_rows)
            row = self.val_rows[i if real else 0]
            loss = float(self.module(self.loader.load(row, res.height, res.width, cfg.frames), eval_seed(cfg.seed, i)))
            total += loss if real else 0.0
        self.module.train()
        value = _sum(total, group.device) / len(self.val_rows)
        self.val_losses.append((self.step, value))
        if group.is_main:
            emit(self.callbacks, "on_eval", self.step, {"val_loss": value, "val_samples": float(len(self.val_rows))})


def _loop(run: ShardedRun, save: bool) -> None:
    cfg, group = run.config, run.group
    if cfg.eval_every and run.step == 0:
        run.evaluate()
    with StopRequest() as stop:
        while run.step < cfg.max_steps:
            metrics = run.train_step()
            if group.is_main:
                emit(run.callbacks, "on_step", run.step, metrics)
            if cfg.eval_every and (run.step % cfg.eval_every == 0 or run.step == cfg.max_steps):
                run.evaluate()
            stopping = _sum(float(stop.requested), group.device) > 0  # all ranks agree before the barrier
            if save and (run.step % cfg.checkpoint_every == 0 or run.step == cfg.max_steps or stopping):
                dcp_state.save(run, run.elapsed())
            if stopping:
                raise TrainingInterrupted(run.step, run.last_checkpoint)


def train_sharded(
    config: TrainConfig,
    manifest_path: str | Path,
    data_root: str | Path,
    output_dir: str | Path,
    *,
    callbacks: Any = None,
    resume: bool = True,
    save: bool = True,
    global_batch: int | None = None,
    features: str | Path | None = None,
) -> TrainResult:
    """Train one stage with FSDP2 (`distributed: fsdp`) under torchrun, or in one process.

    `global_batch`: samples per micro-batch over all processes (a multiple of the world size);
    None = the resumed checkpoint's, else one per process. Writes `<output_dir>/final/` (released
    layout, consolidated on rank 0) and `train_result.json`; raises TrainingError subclasses with
    one-line messages, on every rank. `features`: a feature cache folder, as in the one-process loop.
    """
    output_dir, manifest_path = Path(output_dir), Path(manifest_path)
    started = time.perf_counter()
    group = process_group.start(config.cpu)
    run = None
    try:
        if group.is_main:
            if not resume:
                reset_checkpoints(output_dir)
            dcp_state.clean_temp(output_dir / "checkpoints")
        group.barrier()
        folder, state, skipped = (
            dcp_state.find(output_dir / "checkpoints", callbacks, group.is_main) if resume else (None, None, [])
        )
        if global_batch is None and state is not None:
            global_batch = int(state["global_batch"])
        run = ShardedRun(config, manifest_path, Path(data_root), output_dir, callbacks, global_batch, group, features)
        run.skipped = skipped
        if folder is not None:
            dcp_state.check(state, run, folder)
            if int(state["global_batch"]) != run.global_batch:
                raise TrainingError(
                    f"{folder} was trained with global batch {state['global_batch']}, this run asks for "
                    f"{run.global_batch}; keep the global batch to resume (any world size dividing it works)",
                    code="resume_mismatch",
                )
            dcp_state.load(run, folder, state)
        run.started = started
        _loop(run, save)
        return _finish(run, save)
    finally:
        if run is not None:
            run.prefetch.close()
        group.close()


def _finish(run: ShardedRun, save: bool) -> TrainResult:
    """Consolidate on rank 0, write final/ and train_result.json, tell every rank the digest."""
    final_dir = run.output_dir / "final"
    full = dcp_state.full_trainable(run.module, run.trainable_names)
    digest = ""
    if run.group.is_main:
        if save:
            digest = write_released(run.config, full, final_dir)
        else:
            from kiwi_platform.training.modules import trainable_digest

            digest = trainable_digest(full)  # type: ignore[arg-type]
    digest = dcp_state.broadcast(digest)
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
        config_hash=run.config.config_hash(),
        manifest_sha256=run.manifest_sha256,
        last_checkpoint=run.last_checkpoint,
        trainable_sha256=digest,
        skipped_checkpoints=run.skipped,
    )
    if run.group.is_main and save:
        write_text_atomic(run.output_dir / "train_result.json", json.dumps(result.to_json(), indent=1))
    run.group.barrier()
    return result
