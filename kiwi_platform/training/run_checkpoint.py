"""Saving and resuming a whole training run: weights, optimizer, LR schedule, RNGs, data cursors, history.

Why apart from the loop: exact resume rests on this pair agreeing field for field (what `save_run`
writes is exactly what `resume_run` restores, checked against the config hash and manifest sha256
first), and on every process taking part at the same barriers. Keeping both halves together makes
that agreement one page to read. The file side (atomic `step-N/` folders, MANIFEST.json, `latest`,
RNG capture) is `kiwi_platform.training.checkpoint`; `train()` and the step logic are
`kiwi_platform.training.loop`. This is the one-process / DDP layout (replicated weights, rank 0
writes them); `distributed: fsdp` checkpoints are sharded DCP folders: `kiwi_platform.training.sharded.dcp_state`.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from kiwi_platform.training import checkpoint as ckpt
from kiwi_platform.training.config import TrainConfig
from kiwi_platform.training.data import MixSampler
from kiwi_platform.training.errors import ResumeMismatch
from kiwi_platform.training.modules import load_trainable, save_trainable
from kiwi_platform.training.results import emit

log = logging.getLogger("kiwi_platform.training")


class CheckpointedRun(Protocol):
    """The run state a checkpoint holds or is checked against (the training loop's run provides it)."""

    config: TrainConfig
    callbacks: Any
    output_dir: Path
    ckpt_root: Path
    accelerator: Any
    rank: int
    world: int
    manifest_sha256: str
    sampler: MixSampler
    params: dict[str, nn.Parameter]
    trainable_names: list[str]
    optimizer: Any
    scheduler: Any
    step: int
    losses: list[float]
    val_losses: list[tuple[int, float]]
    seconds_before: float
    resumed_from: str | None
    skipped: list[str]
    last_checkpoint: str | None

    @property
    def samples_seen(self) -> int: ...


def reset_checkpoints(output_dir: Path) -> None:
    """resume=False: move old checkpoints out of the way first, so no half-deleted state remains."""
    root = output_dir / "checkpoints"
    if root.exists():
        trash = output_dir / f".trash-{time.time_ns()}"
        root.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


def resume_run(run: CheckpointedRun) -> None:
    """Restore `run` from the newest checkpoint that verifies, if any; warn (via callbacks) about skipped ones."""
    folder, run.skipped = ckpt.find_resumable(run.ckpt_root)
    for msg in run.skipped:
        if run.accelerator.is_main_process:
            emit(run.callbacks, "on_warning", msg)
    if folder is None:
        return
    state = ckpt.read_state(folder)
    if state["config_hash"] != run.config.config_hash():
        raise ResumeMismatch(
            f"{run.output_dir} holds checkpoints of another config (hash {state['config_hash']} != "
            f"{run.config.config_hash()}); use a new output folder or resume=False to start over"
        )
    if state["manifest_sha256"] != run.manifest_sha256:
        raise ResumeMismatch(
            f"{run.output_dir} was trained on another manifest (sha256 {state['manifest_sha256'][:12]}...); "
            "use a new output folder or resume=False to start over"
        )
    if state["world_size"] != run.world:
        log.warning(
            "resuming with %d processes, checkpoint had %d: the data order changes", run.world, state["world_size"]
        )
    load_trainable(run.params, folder / "trainable.safetensors")
    run.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=False))
    run.scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=False))
    rng_file = folder / f"rng-rank{run.rank}.pt"
    if rng_file.is_file():
        ckpt.restore_rng(torch.load(rng_file, weights_only=False))
    run.sampler.load_state_dict(state["data_position"])
    run.step = int(state["step"])
    run.losses = [float(x) for x in state["losses"]]
    run.val_losses = [(int(s), float(v)) for s, v in state["val_losses"]]
    run.seconds_before = float(state["seconds"])
    run.resumed_from = str(folder)
    run.last_checkpoint = str(folder)
    log.info("resumed from %s (step %d)", folder, run.step)


def save_run(run: CheckpointedRun, seconds: float) -> Path:
    """Checkpoint `run` at its current step on every process (collective: all ranks must call it)."""
    acc, root = run.accelerator, run.ckpt_root
    tmp = root / f".tmp-step-{run.step}"
    if acc.is_main_process:
        ckpt.tmp_dir_for(root, run.step)
    acc.wait_for_everyone()
    torch.save(ckpt.capture_rng(), tmp / f"rng-rank{run.rank}.pt")
    acc.wait_for_everyone()
    final = root / f"step-{run.step}"
    if acc.is_main_process:
        save_trainable(run.params, tmp / "trainable.safetensors")
        torch.save(run.optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(run.scheduler.state_dict(), tmp / "scheduler.pt")
        ckpt.write_state(tmp, {**ckpt.run_progress(run, seconds), "world_size": run.world})
        final = ckpt.publish(root, tmp, run.step, run.config.keep_checkpoints)
        emit(run.callbacks, "on_checkpoint", run.step, final)
    acc.wait_for_everyone()
    run.last_checkpoint = str(final)
    return final
