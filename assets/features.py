"""The training feature cache: VAE latents and MLLM processor tensors of every training sample, once.

Logic lives in `kiwi_platform.features`; this module only declares the asset and its check. The
stage assets depend on it and read its folder from its latest materialization; samples it lacks
(another resolution, other encoder weights, no cache at all) are encoded on the fly as before.
"""

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from kiwi_platform.engine import ActorPool
from kiwi_platform.lib.failures import user_errors
from kiwi_platform.resources.batch_data import BatchData
from kiwi_platform.resources.engine import EngineResource
from kiwi_platform.resources.settings import SettingsResource
from kiwi_platform.training.manifests import MANIFEST_DIR
from kiwi_platform.training.stage_run import resolve_init_checkpoint

FEATURE_DIR = "training/features"


class FeatureConfig(dg.Config):
    """Which encoders, resolutions and frame count to precompute. Defaults match the stages' defaults."""

    model: str = Field(
        "tiny",
        description="Whose frozen encoders (VAE, processor) to use: tiny (default; the stage-1 start point the "
        "stages build), kiwi-5b (needs init_checkpoint) or a local pipeline folder. The VAE is frozen in every "
        "stage, so one cache serves all three.",
    )
    init_checkpoint: str = Field(
        "", description="A `kiwi model init` folder whose encoders to use. Default empty = from `model`."
    )
    seed: int = Field(0, description="Seed of the tiny model's random init (as the stages' `seed`). Default 0.")
    resolutions: list[str] = Field(
        ["64x96"],
        description='Training sizes "HEIGHTxWIDTH" to cache, one entry per size of the stages\' resolution '
        'schedules (e.g. ["608x608", "704x1280"]). Default ["64x96"] (the stages\' default height x width).',
    )
    frames: int = Field(5, ge=1, description="Frames per video sample, as the stages' `frames`. Default 5.")
    stages: list[int] = Field([1, 2, 3], description="Stage manifests whose samples to cache. Default [1, 2, 3].")
    reference_latents: bool = Field(
        False,
        description="Also cache the reference's latents (padded, unshrunk). Only used by recipes without the "
        "random reference shrink (ref_scale_range null); the default recipe shrinks per step. Default false.",
    )
    shard_entries: int = Field(
        4096,
        ge=1,
        description="Most samples per shard file; a shard also closes at 256 MiB of tensors (which cuts first at "
        "real sizes). Default 4096.",
    )
    precision: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="How the latents are stored: float32 (default; bit-exact with on-the-fly encoding on a float32 "
        "model) or bfloat16 (half their bytes; what a bf16 run computes with anyway). Processor pixels are stored "
        "as uint8 in both, exactly. Readers always get float32; entries stored in the other precision are encoded "
        "again and the shards left unreferenced are deleted.",
    )
    encoder_actors: int = Field(
        1,
        ge=0,
        description="Ray actors that encode (each loads the encoders once). 0 = one per GPU of the Ray cluster "
        "(1 without GPUs). Unused when the engine runs in-process. Default 1.",
    )
    gpus_per_actor: float | None = Field(
        None,
        ge=0,
        description="GPUs each encoding actor asks Ray for. Empty (default): 1 when the Ray cluster has a GPU, "
        "else 0 (CPU actors). Fractions (0.5) share a GPU between actors.",
    )


@dg.asset(
    deps=["training_manifests"],
    group_name="training",
    kinds={"pytorch", "safetensors", "dvc"},
    description="Training feature cache: VAE latents of source and target (and reference) per training size, and "
    "the MLLM processor tensors, keyed by clip sha256 + encoder hash + size + frames; sharded, DVC-tracked.",
)
@user_errors
def training_features(
    context: dg.AssetExecutionContext,
    config: FeatureConfig,
    data: BatchData,
    settings: SettingsResource,
    engine: EngineResource,
) -> dg.MaterializeResult:
    # imported here, not at module level: it pulls in torch (1-2 s), which every code-location load
    # and every `kiwi` command would otherwise pay whether or not it builds features
    from kiwi_platform.features.build import EncoderSpec, build_features, parse_size

    try:
        sizes = [parse_size(s) for s in config.resolutions]
    except ValueError as exc:
        raise dg.Failure(description=f"training_features: {exc}") from None
    root = data.store.root_path
    manifests = [root / MANIFEST_DIR / f"stage{s}.parquet" for s in sorted(set(config.stages))]
    missing = [str(m) for m in manifests if not m.is_file()]
    if missing:
        raise dg.Failure(description=f"training manifest {missing[0]} is missing; materialize training_manifests")
    # encoders by folder: loaded here for the key hashes, and once per engine actor to encode
    encoders = EncoderSpec(str(resolve_init_checkpoint(1, config, settings.home_path, None)))
    folder = root / FEATURE_DIR
    engine_settings = engine.settings()
    built = build_features(
        folder,
        manifests,
        root,
        encoders,
        sizes,
        config.frames,
        reference_latents=config.reference_latents,
        per_shard=config.shard_entries,
        dtype=config.precision,
        progress=context.log.info,
        engine=engine_settings,
        pool=ActorPool(size=config.encoder_actors, num_gpus=config.gpus_per_actor),
        log=context.log.info,
    )
    for problem in built.problems:
        context.log.warning(problem)
    tracked = data.dvc.track(folder, f"training_features dagster run {context.run.run_id}")
    context.log.info(
        f"training features: {built.written} encoded, {built.reused} reused, {built.entries} in "
        f"{built.shards} shards; dvc md5 {tracked.md5}"
    )
    return dg.MaterializeResult(
        metadata={
            "features_dir": dg.MetadataValue.path(str(folder)),
            "entries": built.entries,
            "written": built.written,
            "reused": built.reused,
            "unkeyed_rows": built.unkeyed,
            "shards": built.shards,
            "new_shards": dg.MetadataValue.json(built.new_shards),
            "removed_shards": dg.MetadataValue.json(built.removed_shards),
            "index_sha256": built.index_sha256,
            "content_id": built.content_id,
            "vae_sha256": built.hashes["vae"],
            "mllm_inputs_sha256": built.hashes["mllm"],
            "resolutions": dg.MetadataValue.json([f"{h}x{w}" for h, w in sizes]),
            "frames": config.frames,
            "precision": config.precision,
            "dvc_path": tracked.path,
            "dvc_md5": tracked.md5,
            "dvc_files": tracked.files,
            "dvc_bytes": tracked.size,
            "data_repo_rev": tracked.git_rev,
        },
        data_version=dg.DataVersion(built.content_id),
    )


@dg.asset_check(asset=training_features, description="Every shard the index names exists and matches its sha256.")
def training_features_intact(data: BatchData) -> dg.AssetCheckResult:
    from kiwi_platform.features.build import verify_cache  # torch: see training_features

    folder = Path(data.store.root_path) / FEATURE_DIR
    entries, problems = verify_cache(folder)
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"entries": entries, "problems": dg.MetadataValue.json(problems[:20])},
        description=problems[0] if problems else f"{entries} entries intact",
    )
