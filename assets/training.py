"""Three-stage curriculum training (SPEC section 3) as assets: manifests, then one checkpoint per stage.

Each stage asset trains from the previous stage's checkpoint with `kiwi_platform.training.train`
(accelerate; exact resume from `$KIWI_HOME/training/<stage>-<config>-<manifest>/checkpoints`),
logs one MLflow run per materialization (nested under the Dagster run's pipeline run) and
registers the result as a version of the `kiwi-edit` model, tagged with everything `kiwi lineage`
needs. Training assets hold the `gpu` pool, so at most the pool's limit train at once.
"""

import json
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.quality import quadruplets
from kiwi_platform.datasets.stage_mixes import build_stage_manifest
from kiwi_platform.lib.files import atomic_path, sha256_file
from kiwi_platform.lib.integrity import check_files
from kiwi_platform.lineage.code import code_version
from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.lakefs import LakeFSResource
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.resources.tracking import MlflowTracking
from kiwi_platform.settings import KiwiSettings
from kiwi_platform.tracking import tags as T
from kiwi_platform.tracking.stage_run import StageRunLogger, snapshot_manifest, train_stage

MANIFEST_DIR = "training/manifests"
QUADRUPLET_FILES = (("src_clip", "src_clip_sha256"), ("tgt_clip", "tgt_clip_sha256"), ("ref_image", "ref_sha256"))


class ManifestConfig(dg.Config):
    """Which batches feed training, and the stage-3 variant."""

    batches: list[str] = []  # empty = every registered batch with quadruplets
    stage3_reference_only: bool = False  # stage 3 on reference samples only (SPEC: "or ref only")


@dg.asset(
    deps=[dg.AssetDep(quadruplets, partition_mapping=dg.AllPartitionMapping())],
    group_name="training",
    kinds={"python", "dvc"},
    description="Per-stage training manifests from every batch's quadruplets, re-verified against their hashes; DVC-tracked.",
)
def training_manifests(
    context: dg.AssetExecutionContext, config: ManifestConfig, store: MediaStore, dvc: DvcRepo, lakefs: LakeFSResource
) -> dg.MaterializeResult:
    names = config.batches or store.batches()
    tables, skipped = [], {}
    for batch in names:
        path = store.asset_dir(batch, "quadruplets") / "table.parquet"
        if not path.exists():
            skipped[batch] = "no quadruplets yet"
            continue
        df = pd.read_parquet(path)
        _, problems = check_files(df, store.root_path, QUADRUPLET_FILES)
        broken = [p.path for p in problems]
        if broken:
            raise dg.Failure(description=f"batch {batch}: {len(broken)} files changed since QC (e.g. {broken[0]}); "
                             f"re-materialize quadruplets for {batch}", metadata={"changed": dg.MetadataValue.json(broken[:20])})  # fmt: skip
        if len(df):
            tables.append(df)
        else:
            skipped[batch] = "0 quadruplets"
    used = sorted(set(names) - set(skipped))
    # lakeFS (when enabled): the batches passed QC and re-verified here, so their branches go to main
    merged = {b: lakefs.merge(lakefs.branch_for_batch(b)) for b in used} if lakefs.enabled else {}
    quads = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["media", "ref_image"])
    folder = store.root_path / MANIFEST_DIR
    counts = {}
    for stage in (1, 2, 3):
        groups = ("reference",) if stage == 3 and config.stage3_reference_only else None
        manifest = build_stage_manifest(quads, stage, groups) if len(quads) else build_stage_manifest(_empty(), stage)
        path = folder / f"stage{stage}.parquet"
        with atomic_path(path) as tmp:
            manifest.to_parquet(tmp, index=False)
        snapshot_manifest(path, store, stage, sha256_file(path))  # kept by content for lineage
        counts[f"stage{stage}"] = manifest["task"].value_counts().to_dict() if len(manifest) else {}
    tracked = dvc.track(folder, f"training_manifests dagster run {context.run.run_id}")
    metadata = {
        "batches": dg.MetadataValue.json(used),
        "skipped_batches": dg.MetadataValue.json(skipped),
        "samples_per_stage_task": dg.MetadataValue.json(counts),
        "dvc_path": tracked.path,
        "dvc_md5": tracked.md5,
        "data_repo_rev": tracked.git_rev,
    }
    branch = lakefs.branch_for_batch("training")
    if branch:
        lakefs.upload_directory(branch, folder, prefix=MANIFEST_DIR)
        lakefs.commit(branch, "training manifests", {"dagster_run_id": context.run.run_id, "dvc_md5": tracked.md5})
        metadata["lakefs_commit"] = lakefs.merge(branch) or ""  # main now holds batches + manifests
        metadata["lakefs_batch_merges"] = dg.MetadataValue.json(merged)
    context.log.info(f"training manifests: {json.dumps(counts)}; dvc md5 {tracked.md5}")
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(tracked.md5))


def _empty() -> pd.DataFrame:
    from kiwi_platform.datasets.stage_mixes import MANIFEST_COLUMNS

    return pd.DataFrame(columns=[*MANIFEST_COLUMNS, "media"])


class StageConfig(dg.Config):
    """Run config of one training stage. Defaults: the tiny model, a few CPU steps (the quick start)."""

    model: str = "tiny"  # tiny | kiwi-5b | a local pipeline folder (stage 1 base)
    init_checkpoint: str = ""  # stage 1: a `kiwi model init` folder; later stages default to the previous stage
    max_steps: int = 4
    lr: float = 0.0  # 0 = SPEC default for the stage (1e-5, 1e-5, 5e-6)
    warmup_steps: int = 0
    weight_decay: float = 0.01
    height: int = 64
    width: int = 96
    resolution_schedule: list[str] = []  # e.g. ["2000:608x608", "1280x704"] = until step 2000 at 608x608, then 1280x704
    frames: int = 5
    checkpoint_every: int = 2
    eval_every: int = 2
    eval_samples: int = 2
    mixed_precision: str = "no"  # no | bf16 | fp16
    gradient_checkpointing: bool = False
    distributed: str = "ddp"  # ddp | fsdp | deepspeed_zero2 (under `accelerate launch`)
    seed: int = 0
    register_model: bool = True


def _stage_asset(stage: int, upstream):
    deps = [training_manifests] + ([upstream] if upstream is not None else [])

    @dg.asset(
        name=f"stage{stage}_checkpoint",
        deps=deps,
        group_name="training",
        kinds={"pytorch", "mlflow"},
        pool="gpu",
        tags={"kiwi/resource": "gpu"},
        description=f"Stage {stage} of the curriculum ({['alignment', 'instruction tuning', 'reference tuning'][stage - 1]}): "
        "trained checkpoint in the released layout, MLflow run and registered model version.",
    )
    def _asset(context: dg.AssetExecutionContext, config: StageConfig, store: MediaStore, tracking: MlflowTracking) -> dg.MaterializeResult:
        settings = KiwiSettings.from_env()
        started = time.perf_counter()
        parent = _previous_stage(context, stage) if stage > 1 else None
        outcome = train_stage(
            stage=stage,
            config=config,
            settings=settings,
            store=store,
            tracking=tracking,
            manifest=store.root_path / MANIFEST_DIR / f"stage{stage}.parquet",
            manifest_meta=_latest_metadata(context, "training_manifests"),
            parent=parent,
            logger=StageRunLogger(context),
            dagster_tags={T.DAGSTER_RUN_ID: context.run.run_id, T.ASSET_KEY: f"stage{stage}_checkpoint", T.PARTITION: "",
                          **{T.CODE_GIT_SHA: code_version()["git_sha"], T.CODE_DIRTY: code_version()["git_dirty"]}},
        )  # fmt: skip
        metadata = outcome.metadata(tracking)
        metadata["seconds"] = round(time.perf_counter() - started, 2)
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(outcome.weights_sha256))

    return _asset


def _latest_metadata(context: dg.AssetExecutionContext, asset: str) -> dict:
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        raise dg.Failure(description=f"{asset} has not been materialized; materialize it first")
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _previous_stage(context: dg.AssetExecutionContext, stage: int) -> dict:
    meta = _latest_metadata(context, f"stage{stage - 1}_checkpoint")
    if not Path(str(meta.get("checkpoint_dir", ""))).is_dir():
        raise dg.Failure(description=f"stage {stage - 1} checkpoint folder {meta.get('checkpoint_dir')} is missing; "
                         f"re-materialize stage{stage - 1}_checkpoint")  # fmt: skip
    return meta


stage1_checkpoint = _stage_asset(1, None)
stage2_checkpoint = _stage_asset(2, stage1_checkpoint)
stage3_checkpoint = _stage_asset(3, stage2_checkpoint)
