"""Training data: manifest checks, the pair-id split, the mix-cycle sampler and sample loading.

Why this shape: exact resume needs the data position to be a few integers (one cursor per task
stream), so every stream is a seeded permutation per epoch that can be recomputed from
(seed, task, epoch) instead of an iterator whose state would have to be pickled.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from kiwi_platform.lib import shards
from kiwi_platform.media.clips import clip_header, read_clip
from kiwi_platform.training.config import TASK_GROUPS, TASKS, TrainConfig
from kiwi_platform.training.errors import DataHashMismatch, EmptyManifestError, TrainingError

REQUIRED_COLUMNS = ("pair_id", "task", "prompt", "src_clip", "tgt_clip", "ref_image")
HASH_COLUMNS = {"src_clip": "src_clip_sha256", "tgt_clip": "tgt_clip_sha256", "ref_image": "ref_sha256"}


def load_manifest(path: str | Path) -> pd.DataFrame:
    """Read the parquet manifest, check its columns and tasks; rows sorted by pair id (stable order)."""
    path = Path(path)
    if not path.is_file():
        raise EmptyManifestError(f"training manifest {path} does not exist")
    df = pd.read_parquet(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise TrainingError(f"training manifest {path} lacks column(s): {', '.join(missing)}", code="bad_manifest")
    if df.empty:
        raise EmptyManifestError(f"training manifest {path} has no rows: nothing to train on")
    bad = sorted(set(df["task"]) - set(TASKS))
    if bad:
        raise TrainingError(
            f"training manifest {path} has unknown task(s) {bad} (expected {TASKS})", code="bad_manifest"
        )
    df = df.copy()
    df["pair_id"] = df["pair_id"].astype(str)
    df["ref_image"] = df["ref_image"].fillna("").astype(str)
    return df.sort_values("pair_id", kind="stable").reset_index(drop=True)


def pair_bucket(pair_id: str) -> float:
    """A stable number in [0, 1) from the pair id alone, so a pair lands in the same split everywhere."""
    return int.from_bytes(hashlib.sha256(pair_id.encode()).digest()[:8], "big") / 2**64


def split_by_pair(df: pd.DataFrame, val_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/validation held apart by pair id (never by row): all rows of a pair go to one side.

    With val_fraction > 0 and at least two pairs, the pair with the smallest bucket is always in
    validation, so tiny manifests still get a validation loss.
    """
    buckets = {p: pair_bucket(p) for p in df["pair_id"].unique()}
    val_ids = {p for p, b in buckets.items() if b < val_fraction}
    if val_fraction > 0 and not val_ids and len(buckets) >= 2:
        val_ids = {min(buckets, key=buckets.get)}
    is_val = df["pair_id"].isin(val_ids)
    val = df[is_val].assign(_bucket=df.loc[is_val, "pair_id"].map(buckets))
    val = val.sort_values(["_bucket", "pair_id"], kind="stable").drop(columns="_bucket")
    return df[~is_val], val  # original index labels kept: SampleLoader.load takes them


@dataclass
class MixSampler:
    """Draws train rows following the mix cycle; `cursors` (one int per group) is the data position.

    Each group is an endless stream: epoch e is a permutation of the group's rows seeded by
    (seed, group, e). Per micro-batch every process takes consecutive items of the same stream
    (rank r takes cursor + r), then the cursor advances by the world size.
    """

    rows: dict[str, list[int]]
    seed: int
    cursors: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, train: pd.DataFrame, config: TrainConfig, manifest: str | Path = "") -> MixSampler:
        rows: dict[str, list[int]] = {}
        present = sorted(set(train["task"]))
        for group in config.task_mix:
            if config.task_mix[group] <= 0:
                continue
            idx = train.index[train["task"].isin(TASK_GROUPS[group])].tolist()
            if not idx:
                raise EmptyManifestError(
                    f"the stage {config.stage} mix asks for {group!r} samples but the train split of "
                    f"{manifest or 'the manifest'} has none (tasks present: {', '.join(present) or 'none'})"
                )
            rows[group] = idx
        return cls(rows=rows, seed=config.seed, cursors={g: 0 for g in rows})

    def _item(self, group: str, position: int) -> int:
        items = self.rows[group]
        epoch, offset = divmod(position, len(items))
        group_id = list(TASK_GROUPS).index(group)
        order = np.random.default_rng([self.seed, group_id, epoch]).permutation(len(items))
        return items[int(order[offset])]

    def draw(self, group: str, rank: int = 0, world: int = 1) -> int:
        """This process's row for the next micro-batch of `group`; advances the shared cursor."""
        row = self._item(group, self.cursors[group] + rank)
        self.cursors[group] += world
        return row

    def plan(self, cycle: list[str], rank: int = 0, world: int = 1, steps_ahead: int = 0) -> list[int]:
        """Rows of one optimizer step (`steps_ahead` steps after the current position), without moving.

        Equal to calling `draw` for each group of the cycle in order, so loading can run ahead.
        """
        per_step = {g: cycle.count(g) for g in set(cycle)}
        seen: dict[str, int] = {}
        rows = []
        for group in cycle:
            k = seen.get(group, 0)
            seen[group] = k + 1
            position = self.cursors[group] + (steps_ahead * per_step[group] + k) * world + rank
            rows.append(self._item(group, position))
        return rows

    def advance(self, cycle: list[str], world: int = 1) -> None:
        """Move every cursor past one optimizer step of the cycle (all processes together)."""
        for group in cycle:
            self.cursors[group] += world

    def state_dict(self) -> dict[str, int]:
        return dict(self.cursors)

    def load_state_dict(self, state: dict[str, int]) -> None:
        if set(state) != set(self.rows):
            raise TrainingError(
                f"checkpoint data position has groups {sorted(state)}, the mix has {sorted(self.rows)}",
                code="resume_mismatch",
            )
        self.cursors = {g: int(v) for g, v in state.items()}


def _video_tensor(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(T, H0, W0, 3) uint8 -> (3, T, height, width) in [-1, 1]: cover-resize then center-crop."""
    from model.video_io import frames_to_tensor, resize_crop

    pil = [resize_crop(Image.fromarray(f), width, height) for f in frames]
    return frames_to_tensor(pil)[0]


class SampleLoader:
    """Turns manifest rows into TrainingBatch dicts; each file's sha256 is checked once, lazily."""

    def __init__(self, df: pd.DataFrame, data_root: str | Path, check_hashes: bool = True) -> None:
        self.df = df
        self.root = Path(data_root)
        self.check_hashes = check_hashes
        self._verified: set[str] = set()

    def _path(self, row: pd.Series, column: str) -> Path:
        rel = str(row[column])
        path = self.root / rel  # a file, or a shard reference (`<shard>#<member>`, docs/shards.md)
        if not shards.exists(path):
            raise TrainingError(f"{column} file {path} (pair {row['pair_id']}) is missing", code="missing_file")
        hash_col = HASH_COLUMNS[column]
        expected = str(row.get(hash_col, "") or "") if hash_col in row.index else ""
        if self.check_hashes and expected and rel not in self._verified:
            actual = shards.sha256(path)
            if actual != expected:
                raise DataHashMismatch(
                    f"{path} (pair {row['pair_id']}) changed after the manifest was written: sha256 "
                    f"{actual[:12]}... != manifest {expected[:12]}...; rebuild the training manifest"
                )
            self._verified.add(rel)
        return path

    def load(self, index: int, height: int, width: int, frames: int) -> dict:
        """One sample at (height, width); video tasks take the first `frames` frames (4k+1)."""
        from model.video_io import valid_frame_count

        row = self.df.loc[index]
        src_path, tgt_path = self._path(row, "src_clip"), self._path(row, "tgt_clip")
        wanted = 1 if row["task"].startswith("image") else frames
        available = min(clip_header(src_path)["frames"], clip_header(tgt_path)["frames"])
        count = valid_frame_count(min(wanted, available))
        indices = list(range(count))
        batch = {
            "source": _video_tensor(read_clip(src_path, indices), height, width),
            "target": _video_tensor(read_clip(tgt_path, indices), height, width),
            "prompt": str(row["prompt"]),
            "ref_image": None,
        }
        if row["task"].endswith("_ref"):
            if not row["ref_image"]:
                raise TrainingError(
                    f"pair {row['pair_id']} is a {row['task']} sample without ref_image", code="bad_manifest"
                )
            with shards.open_member(self._path(row, "ref_image")) as fh, Image.open(fh) as img:
                batch["ref_image"] = img.convert("RGB")
        return batch


class Prefetcher:
    """Loads the next micro-batch on a background thread while the current one trains.

    One sample ahead only (a 720p 81-frame pair is ~1.7 GB as float tensors). Loading uses no RNG,
    so prefetching does not change what a step sees; errors surface in the training thread.
    """

    def __init__(self, loader: SampleLoader, config: TrainConfig) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.loader, self.config = loader, config
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiwi-prefetch")
        self._ahead: tuple[tuple[int, int], object] | None = None

    def _submit(self, step: int, row: int):
        res = self.config.resolution_at(step)
        return self._pool.submit(self.loader.load, row, res.height, res.width, self.config.frames)

    def get(self, key: tuple[int, int], following: tuple[int, int, int] | None, row: int) -> dict:
        """The batch for (step, micro) = `row`; then start loading `following` = (step, micro, row)."""
        if self._ahead is not None and self._ahead[0] == key:
            future = self._ahead[1]
        else:
            future = self._submit(key[0], row)
        self._ahead = None
        if following is not None:
            self._ahead = ((following[0], following[1]), self._submit(following[0], following[2]))
        return future.result()  # type: ignore[attr-defined]

    def clear(self) -> None:
        self._ahead = None

    def close(self) -> None:
        self._ahead = None
        self._pool.shutdown(wait=True, cancel_futures=True)
