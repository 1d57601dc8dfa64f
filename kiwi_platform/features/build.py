"""Fill the feature cache from the stage manifests (the `training_features` asset's work).

Incremental by key: entries already in the index (with an intact shard) are kept, only missing
ones are encoded, in key order, into new shards. So the same manifests and encoders give the same
shards byte for byte, and a second run over unchanged data writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kiwi_platform.features.keys import encoder_hashes, sample_key
from kiwi_platform.features.shards import FeatureCache, ShardWriter, digest_rows, remove_temp, write_index
from kiwi_platform.training.data import SampleLoader, load_manifest


@dataclass
class BuiltFeatures:
    folder: Path
    index: Path
    index_sha256: str
    content_id: str  # digest of (key, shard) pairs: equal caches, equal ids
    hashes: dict[str, str]
    entries: int = 0
    written: int = 0
    reused: int = 0
    unkeyed: int = 0  # manifest rows without clip hashes: trained on the fly
    shards: int = 0
    new_shards: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_size(spec: str) -> tuple[int, int]:
    """ "HEIGHTxWIDTH" -> (height, width), both multiples of 32."""
    try:
        h, w = (int(v) for v in spec.lower().split("x"))
    except ValueError:
        raise ValueError(f"resolution {spec!r} is not HEIGHTxWIDTH (e.g. 64x96)") from None
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ValueError(f"resolution {spec!r}: height and width must be positive multiples of 32")
    return h, w


def build_features(
    folder: Path,
    manifests: list[Path],
    data_root: Path,
    encoders,
    sizes: list[tuple[int, int]],
    frames: int,
    *,
    reference_latents: bool = False,
    per_shard: int = 256,
    progress: Callable[[str], None] | None = None,
) -> BuiltFeatures:
    """Encode every (manifest row, size) the cache lacks; write shards and the merged index."""
    from model.training import precompute_features

    folder.mkdir(parents=True, exist_ok=True)
    remove_temp(folder)
    hashes = encoder_hashes(encoders)
    cache = FeatureCache(folder)
    todo: dict[str, tuple[SampleLoader, int, int, int]] = {}
    kept: dict[str, dict] = {}
    unkeyed = 0
    for manifest in manifests:
        df = load_manifest(manifest)
        loader = SampleLoader(df, data_root)
        for index, row in df.iterrows():
            for height, width in sizes:
                key = sample_key(row, hashes, height, width, frames)
                if key is None:
                    unkeyed += 1
                elif (found := cache.row(key)) is not None and cache.shard_ok(found["shard"]):
                    kept[key] = found
                elif key not in todo:
                    todo[key] = (loader, int(index), height, width)
    writer = ShardWriter(folder, per_shard)
    for n, key in enumerate(sorted(todo), 1):
        loader, index, height, width = todo[key]
        batch = loader.load(index, height, width, frames)
        writer.add(key, precompute_features(encoders, batch, reference=reference_latents))
        if progress and (n % 50 == 0 or n == len(todo)):
            progress(f"training features: {n}/{len(todo)} encoded")
    new_rows = writer.close()
    # everything intact in the old index stays: other stages, resolutions and encoders reuse it
    previous = {r["key"]: r for r in cache.rows() if r["key"] not in todo and cache.shard_ok(r["shard"])}
    rows = list({**previous, **kept, **{r["key"]: r for r in new_rows}}.values())
    index, index_sha = write_index(folder, rows)
    return BuiltFeatures(
        folder=folder,
        index=index,
        index_sha256=index_sha,
        content_id=digest_rows(rows),
        hashes=hashes,
        entries=len(rows),
        written=len(new_rows),
        reused=len(kept),
        unkeyed=unkeyed,
        shards=len({r["shard"] for r in rows}),
        new_shards=writer.shards,
        problems=list(cache.problems),
    )


def verify_cache(folder: Path) -> tuple[int, list[str]]:
    """(entries, problems): every shard the index names exists and matches its sha256."""
    cache = FeatureCache(folder)
    for shard in sorted({r["shard"] for r in cache.rows()}):
        cache.shard_ok(shard)
    return len(cache), list(cache.problems)
