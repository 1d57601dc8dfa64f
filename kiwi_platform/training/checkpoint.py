"""Resumable training checkpoints: atomic folders with a sha256 manifest, newest valid one wins.

Layout under `<output_dir>/checkpoints/`:

    step-12/
        trainable.safetensors   trainable parameters ("<component>.<param>" names)
        optimizer.pt            AdamW state (torch.save)
        scheduler.pt            LR scheduler state
        rng-rank<R>.pt          python / numpy / torch / cuda RNG states of each process
        state.json              step, data position, loss history, config hash, manifest sha256
        MANIFEST.json           sha256 + size of every file above; written last
    latest                      text file naming the newest complete checkpoint

A checkpoint is written to `.tmp-step-N/`, every file fsync'd, then renamed to `step-N/` and
`latest` is replaced atomically; a folder whose files do not match its MANIFEST.json (a crash
mid-write, a disk fault, a hand edit) is skipped with a warning and the previous one is used.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kiwi_platform.lib.files import UMASK, sha256_file, write_text_atomic

log = logging.getLogger("kiwi_platform.training")
MANIFEST = "MANIFEST.json"
STATE = "state.json"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def step_of(path: Path) -> int:
    return int(path.name.split("-", 1)[1])


def capture_rng() -> dict[str, Any]:
    """Every RNG the step may touch (dropout, augmentation, sampling) on this process."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_manifest(folder: Path) -> None:
    """Hash every file (fsync'ing it) and write MANIFEST.json last, so its presence means complete."""
    files = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        os.chmod(f, 0o666 & ~UMASK)  # some writers (safetensors) leave 0600
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
        files[str(f.relative_to(folder))] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    body = json.dumps({"format": "kiwi-train-checkpoint/1", "files": files}, indent=1, sort_keys=True)
    with open(folder / MANIFEST, "w", encoding="utf-8") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(folder)


def verify(folder: Path) -> str | None:
    """None when the folder matches its manifest, else the reason it cannot be used."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return "no MANIFEST.json (the write did not finish)"
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError) as exc:
        return f"unreadable MANIFEST.json ({exc})"
    for rel, meta in files.items():
        f = folder / rel
        if not f.is_file():
            return f"{rel} is missing"
        if f.stat().st_size != meta["bytes"] or sha256_file(f) != meta["sha256"]:
            return f"{rel} does not match its sha256 (corrupt or partial)"
    if STATE not in files:
        return "state.json is missing"
    return None


def tmp_dir_for(root: Path, step: int) -> Path:
    """A clean `.tmp-step-N` folder (a leftover from a crashed write is removed first)."""
    tmp = root / f".tmp-step-{step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def publish(root: Path, tmp: Path, step: int, keep: int) -> Path:
    """Rename the finished temp folder into place, point `latest` at it, prune old checkpoints."""
    write_manifest(tmp)
    final = root / f"step-{step}"
    if final.exists():  # a stale copy of the same step (e.g. from a run that diverged later)
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    write_text_atomic(root / "latest", final.name + "\n")
    for old in sorted(checkpoints(root), key=step_of)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit():
            out.append(p)
    return out


def find_resumable(root: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that verifies, and one message per skipped (corrupt/partial) one."""
    skipped: list[str] = []
    for folder in sorted(checkpoints(root), key=step_of, reverse=True):
        reason = verify(folder)
        if reason is None:
            return folder, skipped
        msg = f"skipping checkpoint {folder}: {reason}; falling back to the previous one"
        log.warning(msg)
        skipped.append(msg)
    return None, skipped


def read_state(folder: Path) -> dict[str, Any]:
    return json.loads((folder / STATE).read_text(encoding="utf-8"))


def run_progress(run: Any, seconds: float) -> dict[str, Any]:
    """What every checkpoint records of a run's progress and identity, one-process and sharded alike.

    Resume reads these back: the step and data position to continue from, the curves so far, and the
    config and manifest hashes that must match the resuming run.
    """
    return {
        "step": run.step,
        "data_position": run.sampler.state_dict(),
        "losses": run.losses,
        "val_losses": [list(v) for v in run.val_losses],
        "seconds": seconds,
        "samples_seen": run.samples_seen,
        "config_hash": run.config.config_hash(),
        "config": run.config.model_dump(mode="json"),
        "manifest_sha256": run.manifest_sha256,
        "trainable": len(run.trainable_names),
    }


def write_state(folder: Path, state: dict[str, Any]) -> None:
    (folder / STATE).write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
