"""Samples from the feature cache when it has them, from the clips otherwise (counted either way).

Why a loader wrapper: the prefetching thread, validation and the sharded trainer all call
`load(row, height, width, frames)`; wrapping `SampleLoader` keeps one code path for both sources.
A hit returns latents + processor tensors instead of pixels (`model.compute_loss` then skips the
VAE and the processor); the reference image is still read when the recipe shrinks it at random
each step, since only its unshrunk latents can be cached.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from kiwi_platform.features.keys import encoder_hashes, sample_key
from kiwi_platform.features.shards import FeatureCache
from kiwi_platform.lib import shards
from kiwi_platform.training.data import SampleLoader

log = logging.getLogger("kiwi_platform.training")
HIT = "feature_cache_hit"  # set on every batch a FeatureLoader returns


class CacheCounts:
    """Training samples served from the cache vs encoded on the fly, counted when a step consumes them
    (not when the prefetcher loads ahead); the stage logs them with every step when a cache is used."""

    def __init__(self) -> None:
        self.hits = self.misses = 0

    def add(self, batch: dict) -> None:
        if HIT in batch:
            self.hits += bool(batch[HIT])
            self.misses += not batch[HIT]

    def metrics(self) -> dict[str, float]:
        if not self.hits + self.misses:
            return {}  # no cache given: nothing to report
        return {"feature_cache_hits": float(self.hits), "feature_cache_misses": float(self.misses)}


class FeatureLoader:
    """`SampleLoader.load` served from a `FeatureCache` keyed for this pipeline's frozen encoders."""

    def __init__(self, loader: SampleLoader, cache: FeatureCache, hashes: dict[str, str], ref_latents: bool) -> None:
        self.loader, self.cache, self.hashes = loader, cache, hashes
        self.use_ref_latents = ref_latents
        self.hits = self.misses = 0
        self._lock = threading.Lock()
        self._warned = 0

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def load(self, index: int, height: int, width: int, frames: int) -> dict[str, Any]:
        row = self.loader.df.loc[index]
        entry = self.cache.get(sample_key(row, self.hashes, height, width, frames))
        if entry is None:
            self._count(False)
            return {**self.loader.load(index, height, width, frames), HIT: False}
        self._count(True)
        batch = {**entry, "prompt": str(row["prompt"]), "ref_image": None, HIT: True}
        if str(row["task"]).endswith("_ref") and not (self.use_ref_latents and "ref_latents" in entry):
            batch.pop("ref_latents", None)
            with shards.open_member(self.loader._path(row, "ref_image")) as fh, Image.open(fh) as img:
                batch["ref_image"] = img.convert("RGB")
        return batch

    def new_warnings(self) -> list[str]:
        """Damage found since the last call (a missing or corrupted shard), to show the user once."""
        fresh = self.cache.problems[self._warned :]
        self._warned += len(fresh)
        return fresh


def with_features(loader: SampleLoader, features: str | Path | None, pipeline: Any) -> SampleLoader | FeatureLoader:
    """`loader` itself without a cache folder (small runs), else a `FeatureLoader` over it.

    Call with the unsharded pipeline: the encoder hashes are taken from its VAE and processor.
    """
    if not features:
        return loader
    cache = FeatureCache(features)
    recipe = getattr(pipeline, "training_recipe", None)
    ref_latents = recipe is not None and recipe.ref_scale_range is None
    log.info(f"feature cache {features}: {len(cache)} entries")
    return FeatureLoader(loader, cache, encoder_hashes(pipeline), ref_latents)


def feature_warnings(loader: Any) -> list[str]:
    return loader.new_warnings() if isinstance(loader, FeatureLoader) else []
