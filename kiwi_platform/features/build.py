"""Fill the feature cache from the stage manifests (the `training_features` asset's work).

Incremental by key: entries already in the index (with an intact shard) are kept, only missing
ones are encoded, in key order, into new shards. So the same manifests and encoders give the same
shards byte for byte, and a second run over unchanged data writes nothing.

The encoding runs through `kiwi_platform.engine.stream_rows` in an actor pool (`EncodeRow`: the
encoders are loaded once per actor, on its GPU when it has one); planning and the shard writer
stay in the driver, which writes each entry as it arrives, in key order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiwi_platform.engine import ActorPool, EngineSettings, stream_rows
from kiwi_platform.features.codec import pixel_codecs
from kiwi_platform.features.keys import CACHE_VERSION, encoder_hashes, sample_key
from kiwi_platform.features.shards import FeatureCache, ShardWriter, digest_rows, remove_temp, write_index
from kiwi_platform.lib.locks import file_lock
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
    removed_shards: list[str] = field(default_factory=list)  # no longer referenced (older layout, damaged)
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


@dataclass(frozen=True)
class EncoderSpec:
    """Frozen encoders by checkpoint folder: what an engine worker loads once in `setup()`."""

    folder: str
    device: str = "auto"  # auto: cuda when the worker sees a GPU (an actor given one), else cpu

    def load(self, device: str | None = None) -> Any:
        from kiwi_platform.features.encoders import load_encoders

        return self.place(load_encoders(self.folder), device)

    def place(self, encoders: Any, device: str | None = None) -> Any:
        """Move the VAE to `device` (default: this spec's; auto = cuda when this process sees a GPU)."""
        device = device or self.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device != "cpu":
            encoders.vae.to(device)  # encode_video moves the pixels to the VAE; latents come back on cpu
        if device.startswith("cuda"):  # the same clip gives the same latents run after run (content-named shards)
            import torch

            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        return encoders


class EncodeRow:
    """One cache entry to fill, `(manifest number, row index, height, width)` -> its features (CPU tensors).

    Runs through `kiwi_platform.engine.stream_rows` in an actor pool: each actor loads the encoders
    once (`setup()`, from `spec`) and reads samples through one `SampleLoader` per manifest, so each
    file's hash is checked once per actor. In this process the driver's own encoders and loaders
    are used; they are left out when the function is pickled to Ray (a worker loads its own).
    """

    def __init__(
        self, manifests: list[str], data_root: str, frames: int, reference: bool, spec: EncoderSpec | None, encoders
    ) -> None:
        self.manifests, self.data_root, self.frames, self.reference = manifests, data_root, frames, reference
        self.spec, self.encoders = spec, encoders
        self.loaders: dict[int, SampleLoader] = {}

    def __copy__(self) -> EncodeRow:
        """A copy in this process (the engine's first rows) shares the loaded encoders; only pickling
        to a Ray worker leaves them out."""
        twin = object.__new__(EncodeRow)
        twin.__dict__.update(self.__dict__, loaders={})
        return twin

    def __getstate__(self) -> dict:
        state = {**self.__dict__, "loaders": {}}
        if self.spec is not None:
            state["encoders"] = None  # loaded by the worker, once
        return state

    def setup(self) -> None:
        """Once per copy that encodes: a Ray actor loads its own encoders; in this process the driver's
        (loaded on the CPU for the key hashes) move to the spec's device, so a GPU machine encodes there."""
        if self.encoders is None:
            self.encoders = self.spec.load()
        elif self.spec is not None:
            self.encoders = self.spec.place(self.encoders)

    def __call__(self, job: tuple[int, int, int, int]) -> dict[str, Any]:
        from model.training import precompute_features

        number, index, height, width = job
        if number not in self.loaders:
            self.loaders[number] = SampleLoader(load_manifest(Path(self.manifests[number])), self.data_root)
        batch = self.loaders[number].load(index, height, width, self.frames)
        return precompute_features(self.encoders, batch, reference=self.reference)


def build_features(
    folder: Path,
    manifests: list[Path],
    data_root: Path,
    encoders,
    sizes: list[tuple[int, int]],
    frames: int,
    *,
    reference_latents: bool = False,
    per_shard: int = 4096,
    dtype: str = "float32",
    progress: Callable[[str], None] | None = None,
    engine: EngineSettings | None = None,
    pool: ActorPool | None = None,
    log: Callable[[str], None] | None = None,
) -> BuiltFeatures:
    """Encode every (manifest row, size) the cache lacks; write shards and the merged index.

    `encoders`: loaded encoders, or an `EncoderSpec` (loaded here once for the key hashes, and once
    per actor when `engine` runs the encoding on Ray, in `pool`: default one actor, a GPU each when
    the cluster has one). The shard writer stays here and adds entries in key order, so the shards
    are the same bytes whichever engine encoded them (on the same kind of device). `dtype`: how floats
    are stored (float32 or bfloat16); an entry stored in the other precision is encoded again.

    One build at a time per cache folder (an flock beside it): a build removes the temp files and the
    shards its index no longer names, which must not be another build's work in progress.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder.parent / f".{folder.name}.lock", what=f"the feature cache {folder}"):
        remove_temp(folder)
        spec = encoders if isinstance(encoders, EncoderSpec) else None
        loaded = spec.load("cpu") if spec else encoders
        hashes = encoder_hashes(loaded)
        cache = FeatureCache(folder)
        todo: dict[str, tuple[int, int, int, int]] = {}
        kept: dict[str, dict] = {}
        loaders: dict[int, SampleLoader] = {}
        unkeyed = 0
        for number, manifest in enumerate(manifests):
            df = load_manifest(manifest)
            loaders[number] = SampleLoader(df, data_root)
            for index, row in df.iterrows():
                for height, width in sizes:
                    key = sample_key(row, hashes, height, width, frames)
                    if key is None:
                        unkeyed += 1
                    elif (
                        (found := cache.row(key)) is not None
                        and found["dtype"] == dtype
                        and cache.shard_ok(found["shard"])
                    ):
                        kept[key] = found
                    elif key not in todo:
                        todo[key] = (number, int(index), height, width)
        fn = EncodeRow([str(m) for m in manifests], str(data_root), frames, reference_latents, spec, loaded)
        fn.loaders = loaders
        keys = sorted(todo)
        engine = engine or EngineSettings()
        if log:
            log(engine.describe(len(keys)))

        def report(done: int, total: int) -> None:
            if progress and (done % 50 == 0 or done == total):
                progress(f"training features: {done}/{total} encoded")

        # the constants the entries' pixels were normalised with: the processor the workers load is this one
        # (same folder; its settings are in every key's MLLM-inputs hash)
        writer = ShardWriter(folder, per_shard, dtype, codecs=pixel_codecs(loaded.processor))
        outcomes = stream_rows(
            fn, [todo[k] for k in keys], settings=engine, progress=report, pool=pool or ActorPool(size=1, num_gpus=None)
        )
        for key, outcome in zip(keys, outcomes):
            writer.add(key, outcome.value)  # in key order, as each arrives: memory holds a window, not the batch
        new_rows = writer.close()
        # everything intact in the old index stays: other stages, resolutions and encoders reuse it; rows an
        # older cache version wrote can never be read again (their keys are not asked for)
        previous = {
            r["key"]: r
            for r in cache.rows()
            if r["key"] not in todo and r["version"] == CACHE_VERSION and cache.shard_ok(r["shard"])
        }
        rows = list({**previous, **kept, **{r["key"]: r for r in new_rows}}.values())
        index, index_sha = write_index(folder, rows)
        removed = remove_unreferenced(folder, {r["shard"] for r in rows})
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
            removed_shards=removed,
            problems=list(cache.problems),
        )


def remove_unreferenced(folder: Path, referenced: set[str]) -> list[str]:
    """Delete the shards the new index no longer names (entries re-encoded in another precision or layout,
    damaged files), after the index is written: their bytes would otherwise stay under KIWI_HOME for good.
    A training run still holding the old index reads their samples on the fly (one warning)."""
    removed = sorted(p.name for p in folder.glob("shard-*.safetensors") if p.name not in referenced)
    for name in removed:
        (folder / name).unlink(missing_ok=True)
    return removed


def verify_cache(folder: Path) -> tuple[int, list[str]]:
    """(entries, problems): every shard the index names exists and matches its sha256."""
    cache = FeatureCache(folder)
    for shard in sorted({r["shard"] for r in cache.rows()}):
        cache.shard_ok(shard)
    return len(cache), list(cache.problems)
