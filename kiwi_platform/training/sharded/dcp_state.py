"""Sharded checkpoints with torch.distributed.checkpoint (DCP): save, resume, consolidated export.

Layout (same folder rules as `kiwi_platform.training.checkpoint`, so `find_resumable`, `verify`
and `latest` work unchanged):

    checkpoints/step-N/
        dcp/                 DCP files: trainable weights + AdamW state, one shard file per rank
        rng-rank<R>.pt       python / numpy / torch / cuda RNG states of every rank
        scheduler.pt         LR scheduler state
        state.json           step, data position, global batch, world size, losses, hashes
        MANIFEST.json        sha256 of every file above, written last

Atomic: rank 0 makes `.tmp-step-N/`, every rank writes its shard and RNG file, a barrier, then
rank 0 writes state.json and MANIFEST.json and renames the folder to `step-N/`. A job killed
before the rename leaves only the hidden temp folder; one killed during a later write leaves the
previous `step-*` intact. Resume at another world size works because DCP stores the global
layout and reshards on load; the data order stays the same because the global batch is kept.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from kiwi_platform.training import checkpoint as ckpt
from kiwi_platform.training.errors import ResumeMismatch, TrainingError
from kiwi_platform.training.results import emit

log = logging.getLogger("kiwi_platform.training")
# Frozen weights come from the start checkpoint (named by the config hash): never rewritten.
OPTIONS = StateDictOptions(ignore_frozen_params=True)
# Loading fills the trainable keys only (DCP already failed on any that the checkpoint lacks).
LOAD_OPTIONS = StateDictOptions(ignore_frozen_params=True, strict=False)
FORMAT = "kiwi-dcp/1"


def broadcast(obj: Any) -> Any:
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def clean_temp(root: Path) -> None:
    """Remove `.tmp-step-*` left by killed jobs (rank 0, before training starts)."""
    import shutil

    if root.is_dir():
        for tmp in root.glob(".tmp-step-*"):
            shutil.rmtree(tmp, ignore_errors=True)


def save(run, seconds: float) -> Path:
    """Checkpoint `run` at its current step (collective: every rank calls it)."""
    root, group = run.ckpt_root, run.group
    tmp = root / f".tmp-step-{run.step}"
    if group.is_main:
        ckpt.tmp_dir_for(root, run.step)
    group.barrier()
    model_sd, optim_sd = get_state_dict(run.module, run.optimizer, options=OPTIONS)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(tmp / "dcp"))
    torch.save(ckpt.capture_rng(), tmp / f"rng-rank{group.rank}.pt")
    group.barrier()
    final = root / f"step-{run.step}"
    if group.is_main:
        torch.save(run.scheduler.state_dict(), tmp / "scheduler.pt")
        ckpt.write_state(
            tmp,
            {
                **ckpt.run_progress(run, seconds),
                "format": FORMAT,
                "global_batch": run.global_batch,
                "world_size": group.world,
            },
        )
        final = ckpt.publish(root, tmp, run.step, run.config.keep_checkpoints)
        emit(run.callbacks, "on_checkpoint", run.step, final)
    group.barrier()
    run.last_checkpoint = str(final)
    return final


def find(root: Path, callbacks: Any, is_main: bool) -> tuple[Path | None, dict | None, list[str]]:
    """Rank 0 picks the newest checkpoint that verifies; every rank gets the same answer."""
    found: tuple[str | None, list[str]] = (None, [])
    if is_main:
        folder, skipped = ckpt.find_resumable(root)
        for msg in skipped:
            emit(callbacks, "on_warning", msg)
        found = (str(folder) if folder else None, skipped)
    folder_s, skipped = broadcast(found)
    if folder_s is None:
        return None, None, skipped
    folder = Path(folder_s)
    return folder, ckpt.read_state(folder), skipped


def check(state: dict, run, folder: Path) -> None:
    """Refuse checkpoints of another format, config (stage, model size, ...) or manifest, in one line."""
    if state.get("format") != FORMAT:
        raise ResumeMismatch(
            f"{folder} is not a sharded (distributed=fsdp) checkpoint; resume it with the strategy that wrote "
            "it, or use a new output folder"
        )
    if state["config_hash"] != run.config.config_hash():
        theirs = state.get("config", {})
        raise ResumeMismatch(
            f"{folder} holds a checkpoint of another config (stage {theirs.get('stage')}, model "
            f"{theirs.get('model')!r}, hash {state['config_hash']} != {run.config.config_hash()}); use a new "
            "output folder or resume=False to start over"
        )
    if state["manifest_sha256"] != run.manifest_sha256:
        raise ResumeMismatch(
            f"{folder} was trained on another manifest (sha256 {state['manifest_sha256'][:12]}...); use a new "
            "output folder or resume=False to start over"
        )


def load(run, folder: Path, state: dict) -> None:
    """Restore weights, optimizer, scheduler, RNGs and data position from `folder` (collective)."""
    model_sd, optim_sd = get_state_dict(run.module, run.optimizer, options=OPTIONS)
    holder = {"model": model_sd, "optim": optim_sd}
    try:
        dcp.load(holder, checkpoint_id=str(folder / "dcp"))
    except Exception as exc:  # DCP raises CheckpointException / RuntimeError with multi-line detail
        first = str(exc).strip().splitlines()
        raise TrainingError(
            f"cannot load sharded checkpoint {folder}: {first[0][:300] if first else type(exc).__name__}",
            code="resume_mismatch",
        ) from exc
    set_state_dict(
        run.module,
        run.optimizer,
        model_state_dict=holder["model"],
        optim_state_dict=holder["optim"],
        options=LOAD_OPTIONS,
    )
    run.scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=False))
    rng_file = folder / f"rng-rank{run.group.rank}.pt"
    if rng_file.is_file():
        ckpt.restore_rng(torch.load(rng_file, weights_only=False))
    run.sampler.load_state_dict(state["data_position"])
    run.step = int(state["step"])
    run.losses = [float(x) for x in state["losses"]]
    run.val_losses = [(int(s), float(v)) for s, v in state["val_losses"]]
    run.seconds_before = float(state["seconds"])
    run.resumed_from = run.last_checkpoint = str(folder)
    if state["world_size"] != run.group.world:
        log.warning(
            "resumed %s (written by %d processes) with %d; global batch %d kept, so the data order is unchanged",
            folder,
            state["world_size"],
            run.group.world,
            run.global_batch,
        )
    log.info("resumed from %s (step %d)", folder, run.step)


def full_trainable(module, trainable_names: list[str]) -> dict[str, torch.Tensor]:
    """The unsharded trainable weights on rank 0 (an empty dict elsewhere); collective."""
    full = get_model_state_dict(
        module, options=StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    )
    if dist.get_rank() != 0:
        return {}
    missing = [n for n in trainable_names if n not in full]
    if missing:
        raise TrainingError(f"consolidated state lacks trainable parameter(s) {missing[:3]}", code="bad_model")
    return {n: full[n] for n in trainable_names}
