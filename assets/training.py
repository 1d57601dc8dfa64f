"""Three-stage curriculum training (docs/contract.md §3): manifests, then one checkpoint per stage.

Logic lives in `kiwi_platform.training`; this module only declares the assets. Each stage trains
from the previous stage's checkpoint (exact resume from `$KIWI_HOME/training/<stage>-<config>-
<manifest>/checkpoints`), logs one MLflow run per materialization and registers a version of the
`kiwi-edit` model. Training assets hold the `gpu` pool, so at most the pool's limit train at once.
Each stage also depends on `training_features` (assets/features.py) and reads its cache when one
was materialized.
"""

import json
import time
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from kiwi_platform.lib import mlflow_tags
from kiwi_platform.lib.failures import user_errors
from kiwi_platform.lib.materializations import latest_metadata
from kiwi_platform.lineage.code import code_version
from kiwi_platform.resources.batch_data import BatchData
from kiwi_platform.resources.settings import SettingsResource
from kiwi_platform.resources.tracking import MlflowTracking
from kiwi_platform.training.manifests import MANIFEST_DIR, write_stage_manifests
from kiwi_platform.training.stage_outcome import StageRunLogger
from kiwi_platform.training.stage_run import train_stage

STAGE_NAMES = ("alignment", "instruction tuning", "reference tuning")
# Steps per stage by default: enough for the tiny model's validation loss to fall visibly in the demo
# (about 25 % in stages 1 and 2) while `kiwi demo` stays within a few minutes on 2 cores.
DEMO_STEPS = 100


class ManifestConfig(dg.Config):
    """Which batches feed training, and the stage-3 variant."""

    batches: list[str] = Field(
        [],
        description="Batch names (partitions) to train on. Default [] = every registered batch that has quadruplets.",
    )
    stage3_reference_only: bool = Field(
        False,
        description="Stage 3 on reference samples only (image_ref, video_ref) instead of image:video:reference "
        "1:1:1 (docs/contract.md §3). Default false.",
    )


@dg.asset(
    deps=[dg.AssetDep("quadruplets", partition_mapping=dg.AllPartitionMapping())],
    group_name="training",
    kinds={"python", "dvc"},
)
@user_errors
def training_manifests(
    context: dg.AssetExecutionContext, config: ManifestConfig, data: BatchData
) -> dg.MaterializeResult:
    """Per-stage training manifests from every batch's quadruplets, re-verified against their hashes; DVC-tracked."""
    built = write_stage_manifests(data.store, config.batches or data.store.batches(), config.stage3_reference_only)
    lakefs = data.lakefs
    # lakeFS (when enabled): the batches passed QC and were re-verified, so their branches go to main
    merged = {b: lakefs.merge(lakefs.branch_for_batch(b)) for b in built.used} if lakefs.enabled else {}
    tracked = data.dvc.track(built.folder, f"training_manifests dagster run {context.run.run_id}")
    metadata = {
        "batches": dg.MetadataValue.json(built.used),
        "skipped_batches": dg.MetadataValue.json(built.skipped),
        "samples_per_stage_task": dg.MetadataValue.json(built.counts),
        "dvc_path": tracked.path,
        "dvc_md5": tracked.md5,
        "data_repo_rev": tracked.git_rev,
    }
    branch = lakefs.branch_for_batch("training")
    if branch:
        lakefs.upload_directory(branch, built.folder, prefix=MANIFEST_DIR)
        lakefs.commit(branch, "training manifests", {"dagster_run_id": context.run.run_id, "dvc_md5": tracked.md5})
        metadata["lakefs_commit"] = lakefs.merge(branch) or ""  # main now holds batches + manifests
        metadata["lakefs_batch_merges"] = dg.MetadataValue.json(merged)
    context.log.info(f"training manifests: {json.dumps(built.counts)}; dvc md5 {tracked.md5}")
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(tracked.md5))


class StageConfig(dg.Config):
    """Run config of one training stage. Defaults: the quick start's (tiny model, 100 CPU steps at 64x96)."""

    model: str = Field(
        "tiny",
        description="Stage-1 start point: tiny (random-init demo model, no weights needed; default), kiwi-5b "
        "(needs init_checkpoint) or a local pipeline folder. Later stages start from the previous stage.",
    )
    init_checkpoint: str = Field(
        "",
        description="Stage 1 only: a `kiwi model init` folder to start from. Default empty = built from `model`; "
        "stages 2 and 3 always start from the previous stage's checkpoint.",
    )
    max_steps: int = Field(
        DEMO_STEPS,
        ge=1,
        description=f"Optimizer steps of this stage (one step = one mix cycle: 1, 2 or 3 samples in stages 1-3). "
        f"Default {DEMO_STEPS}; a longer run resumes a shorter one.",
    )
    lr: float | None = Field(
        None,
        gt=0,
        description="Peak learning rate (AdamW, constant after warm-up). Default null = the stage default: "
        "1e-5 / 1e-5 / 5e-6 for stages 1 / 2 / 3 (docs/contract.md §3), or 3e-3 for model=tiny (a random-init "
        "~76K-parameter model needs a far higher rate to move in a demo-length run).",
    )
    warmup_steps: int = Field(
        10, ge=0, description="Linear warm-up from 0 to lr over this many optimizer steps, then constant. Default 10."
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (decoupled, per step). Default 0.01.")
    height: int = Field(
        64,
        ge=32,
        multiple_of=32,
        description="Training height in pixels (multiple of 32), used when resolution_schedule is empty. Default 64.",
    )
    width: int = Field(
        96,
        ge=32,
        multiple_of=32,
        description="Training width in pixels (multiple of 32), used when resolution_schedule is empty. Default 96.",
    )
    resolution_schedule: list[str] = Field(
        [],
        description='Resolution by step, "UNTIL_STEP:HEIGHTxWIDTH" entries then a last "HEIGHTxWIDTH", e.g. '
        '["2000:608x608", "1280x704"]: 608x608 up to step 2000, then 1280x704. Default [] = height x width.',
    )
    frames: int = Field(
        5, ge=1, description="Frames per video sample (4k+1: 1, 5, 9 ... 81); image samples use 1. Default 5."
    )
    checkpoint_every: int = Field(
        50,
        ge=1,
        description="Save a resumable checkpoint (weights, optimizer, RNG, data position) every N optimizer steps "
        "and at the end. Default 50.",
    )
    eval_every: int = Field(
        10,
        ge=0,
        description="Validation loss (fixed noise and timesteps, held-out pairs) every N optimizer steps and at "
        "step 0; 0 = never. Default 10.",
    )
    eval_samples: int = Field(
        2, ge=1, description="Validation samples (manifest rows of held-out pairs) per evaluation. Default 2."
    )
    mixed_precision: Literal["no", "bf16", "fp16"] = Field(
        "no",
        description="Autocast dtype. no: fp32 (default; CPU). bf16: Ampere+ GPUs. fp16: older GPUs, with loss scaling.",
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, more compute. Default false."
    )
    distributed: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="Strategy with several processes (torchrun; ignored in one): ddp (default, replicated) or fsdp "
        "(FSDP2: sharded weights, gradients and optimizer state; docs/distributed.md).",
    )
    processes: int = Field(
        1,
        ge=1,
        description="Processes (one per GPU) on the machine running this step. Default 1 = in the step's own "
        "process; N > 1 launches torchrun with N ranks from this step (metrics and registration as usual).",
    )
    global_batch: int | None = Field(
        None,
        ge=1,
        description="fsdp with processes > 1: samples per micro-batch over all ranks, a multiple of processes. "
        "Default null = one per process (on resume: the checkpoint's).",
    )
    seed: int = Field(0, description="Seed of initialization, data order and noise (integer). Default 0.")
    register_model: bool = Field(
        True, description="Register the result as a new version of the MLflow model `kiwi-edit`. Default true."
    )


def _stage_asset(stage: int, upstream: str | None) -> dg.AssetsDefinition:
    deps = ["training_manifests", "training_features"] + ([upstream] if upstream else [])

    @dg.asset(
        name=f"stage{stage}_checkpoint",
        deps=deps,
        group_name="training",
        kinds={"pytorch", "mlflow"},
        pool="gpu",
        tags={"kiwi/resource": "gpu"},
        description=f"Stage {stage} of the curriculum ({STAGE_NAMES[stage - 1]}): trained checkpoint in the "
        "released layout, MLflow run and registered model version.",
    )
    @user_errors
    def _asset(
        context: dg.AssetExecutionContext,
        config: StageConfig,
        data: BatchData,
        tracking: MlflowTracking,
        settings: SettingsResource,
    ) -> dg.MaterializeResult:
        started = time.perf_counter()
        parent = _previous_stage(context, stage) if stage > 1 else None
        code = code_version()
        outcome = train_stage(
            stage=stage,
            config=config,
            home=settings.home_path,
            store=data.store,
            tracking=tracking,
            manifest=data.store.root_path / MANIFEST_DIR / f"stage{stage}.parquet",
            manifest_meta=latest_metadata(context.instance, "training_manifests"),
            parent=parent,
            logger=StageRunLogger(context),
            features=_feature_cache(context),
            dagster_tags={
                mlflow_tags.DAGSTER_RUN_ID: context.run.run_id,
                mlflow_tags.ASSET_KEY: f"stage{stage}_checkpoint",
                mlflow_tags.PARTITION: "",
                mlflow_tags.CODE_GIT_SHA: code["git_sha"],
                mlflow_tags.CODE_DIRTY: code["git_dirty"],
            },
        )
        metadata = outcome.metadata(tracking)
        metadata["seconds"] = round(time.perf_counter() - started, 2)
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(outcome.weights_sha256))

    return _asset


def _feature_cache(context: dg.AssetExecutionContext) -> Path | None:
    """The `training_features` folder of its latest materialization (a declared dep), if there is one.

    The stage then reads every sample the cache holds for its encoders, size and frames, and encodes
    the rest on the fly; without a materialization it trains on the fly, as small runs do.
    """
    event = context.instance.get_latest_materialization_event(dg.AssetKey("training_features"))
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    folder = Path(str(meta["features_dir"].value)) if "features_dir" in meta else None
    if folder is None or not folder.is_dir():
        return None
    context.log.info(f"feature cache {folder} ({meta['entries'].value} entries)")
    return folder


def _previous_stage(context: dg.AssetExecutionContext, stage: int) -> dict:
    meta = latest_metadata(context.instance, f"stage{stage - 1}_checkpoint")
    if not Path(str(meta.get("checkpoint_dir", ""))).is_dir():
        raise dg.Failure(
            description=f"stage {stage - 1} checkpoint folder {meta.get('checkpoint_dir')} is missing; "
            f"re-materialize stage{stage - 1}_checkpoint"
        )
    return meta


stage1_checkpoint = _stage_asset(1, None)
stage2_checkpoint = _stage_asset(2, "stage1_checkpoint")
stage3_checkpoint = _stage_asset(3, "stage2_checkpoint")
