"""One training stage, tracked: MLflow runs (nested under the Dagster run's pipeline run), metrics
per step, artifacts people look at, and the registered model version with its lineage tags.

The Dagster stage assets call `train_stage`; everything MLflow-specific lives here so the
training loop stays a plain library.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from kiwi_platform.lib import mlflow_tags
from kiwi_platform.lib.checkpoint_manifest import MANIFEST_NAME as CHECKPOINT_MANIFEST
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.resources.tracking import MlflowTracking
from kiwi_platform.training.registration import freeze_checkpoint, log_model, snapshot_manifest
from kiwi_platform.training.run_images import log_stage_images
from kiwi_platform.training.stage_outcome import StageOutcome, StageRunLogger

NAMED_MODELS = ("tiny", "kiwi-5b")


def _fail(message: str) -> dg.Failure:
    return dg.Failure(description=message)


def resolve_init_checkpoint(stage: int, config, home: Path, parent: dict | None) -> Path:
    """Stage 1 starts from `init_checkpoint` (or a base built from a named config); later stages from the previous stage."""
    if parent is not None:
        return Path(str(parent["checkpoint_dir"]))
    if config.init_checkpoint:
        path = Path(config.init_checkpoint).expanduser()
        if not path.is_dir():
            raise _fail(f"init_checkpoint {path} does not exist (create one with `kiwi model init`)")
        return path
    if config.model not in NAMED_MODELS:
        path = Path(config.model).expanduser()
        if not path.is_dir():
            raise _fail(f"model {config.model!r} is neither {' nor '.join(NAMED_MODELS)} nor an existing folder")
        return path
    if config.model != "tiny":
        raise _fail(
            "stage 1 of kiwi-5b needs init_checkpoint: build it with "
            "`kiwi model init --from-base --wan WAN_DIR --qwen QWEN_DIR --out DIR`"
        )
    from model.build import init_checkpoint

    base = home / "models" / f"base-tiny-seed{config.seed}"
    if not (base / "model_index.json").exists():
        init_checkpoint("tiny", base, seed=config.seed, overwrite=True)
    return base


def build_train_config(stage: int, config, init_dir: Path):
    """The TrainConfig of stage `stage` from the asset's run config (a StageConfig) and its start point."""
    from kiwi_platform.training import Resolution, TrainConfig

    resolutions = []
    for spec in config.resolution_schedule:
        until, _, size = spec.rpartition(":")
        h, w = (int(v) for v in size.lower().split("x"))
        resolutions.append(Resolution(until_step=int(until) if until else None, height=h, width=w))
    return TrainConfig(
        stage=stage,
        model=config.model,
        init_checkpoint=str(init_dir),
        lr=config.lr or None,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_steps,
        max_steps=config.max_steps,
        checkpoint_every=config.checkpoint_every,
        eval_every=config.eval_every,
        eval_samples=config.eval_samples,
        resolutions=resolutions or [Resolution(height=config.height, width=config.width)],
        frames=config.frames,
        mixed_precision=config.mixed_precision,
        gradient_checkpointing=config.gradient_checkpointing,
        distributed=config.distributed,
        seed=config.seed,
    )


def _pipeline_run(tracking: MlflowTracking, dagster_run_id: str) -> str:
    """The MLflow parent run of this Dagster run (one per run; stages nest under it)."""
    client = tracking.client()
    exp = tracking.experiment_id()
    found = client.search_runs(
        [exp],
        filter_string=f"tags.`{mlflow_tags.DAGSTER_RUN_ID}` = '{dagster_run_id}' and tags.`kiwi.role` = 'pipeline'",
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(
        exp,
        run_name=f"pipeline-{dagster_run_id[:8]}",
        tags={mlflow_tags.DAGSTER_RUN_ID: dagster_run_id, "kiwi.role": "pipeline"},
    )
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def train_stage(
    *,
    stage: int,
    config,
    home: Path,
    store: MediaStore,
    tracking: MlflowTracking,
    manifest: Path,
    manifest_meta: dict,
    parent: dict | None,
    logger: StageRunLogger,
    dagster_tags: dict[str, str],
    features: Path | None = None,
) -> StageOutcome:
    """Train one stage under MLflow; `features`: the feature cache folder (`training_features`), if any."""
    import mlflow

    from kiwi_platform.training import TrainingError, train
    from kiwi_platform.training.launch import train_with_torchrun

    if not manifest.exists():
        raise _fail(f"training manifest {manifest} is missing; materialize training_manifests first")
    init_dir = resolve_init_checkpoint(stage, config, home, parent)
    try:
        train_config = build_train_config(stage, config, init_dir)
    except ValueError as exc:
        raise _fail(f"invalid stage {stage} config: {exc}".splitlines()[0]) from None
    manifest_sha = sha256_file(manifest)
    snapshot = snapshot_manifest(manifest, stage, manifest_sha)
    output_dir = home / "training" / f"stage{stage}-{train_config.config_hash()[:10]}-{manifest_sha[:10]}"
    lineage = {
        **dagster_tags,
        mlflow_tags.STAGE: str(stage),
        mlflow_tags.CONFIG_HASH: train_config.config_hash(),
        mlflow_tags.MANIFEST_PATH: store.rel(snapshot),
        mlflow_tags.MANIFEST_SHA256: manifest_sha,
        mlflow_tags.MANIFEST_DVC_MD5: str(manifest_meta.get("dvc_md5", "")),
        mlflow_tags.DATA_REPO: str(store.root_path),
        mlflow_tags.DATA_REPO_REV: str(manifest_meta.get("data_repo_rev", "")),
        mlflow_tags.LAKEFS_COMMIT: str(manifest_meta.get("lakefs_commit", "")),
        mlflow_tags.PARENT_MODEL_URI: str(parent.get("model_uri", "")) if parent else "",
        mlflow_tags.PARENT_RUN_ID: str(parent.get("mlflow_run_id", "")) if parent else "",
        "kiwi.init_checkpoint": str(init_dir),
        OUTPUT_DIR_TAG: str(output_dir),
        STEPS_TAG: str(train_config.max_steps),
    }
    if config.register_model and (reused := _reuse_registered(tracking, output_dir, train_config.max_steps, stage)):
        logger.context.log.info(
            f"stage {stage}: same config, data and start point as v{reused.model_version}; reusing it"
        )
        return reused
    parent_run_id = _pipeline_run(tracking, dagster_tags[mlflow_tags.DAGSTER_RUN_ID])
    with tracking.start_run(
        f"stage{stage}", tags={**lineage, "kiwi.role": "stage"}, parent_run_id=parent_run_id
    ) as run:
        mlflow.log_params(
            {
                k: (json.dumps(v) if isinstance(v, (list, dict)) else v)
                for k, v in train_config.model_dump(mode="json").items()
            }
        )
        mlflow.log_params(
            {
                "code_git_sha": dagster_tags.get(mlflow_tags.CODE_GIT_SHA, ""),
                "config_hash": train_config.config_hash(),
                "learning_rate": train_config.learning_rate,  # what `lr: null` resolved to
            }
        )
        try:
            if config.processes > 1:
                result = train_with_torchrun(
                    train_config,
                    manifest,
                    store.root_path,
                    output_dir,
                    processes=config.processes,
                    global_batch=config.global_batch,
                    callbacks=logger,
                    features=features,
                )
            else:
                result = train(train_config, manifest, store.root_path, output_dir, callbacks=logger, features=features)
        except TrainingError as exc:
            mlflow.set_tag("kiwi.failure", str(exc))
            raise _fail(f"stage {stage}: {exc}") from None
        result_json = result.to_json()
        mlflow.log_dict(result_json, "train_result.json")
        final_dir = freeze_checkpoint(Path(result.final_dir), output_dir / "runs" / run.info.run_id)
        lineage[mlflow_tags.CHECKPOINT_DIR] = str(final_dir)
        lineage[mlflow_tags.CHECKPOINT_MANIFEST_SHA256] = sha256_file(final_dir / CHECKPOINT_MANIFEST)
        mlflow.set_tags({k: lineage[k] for k in (mlflow_tags.CHECKPOINT_DIR, mlflow_tags.CHECKPOINT_MANIFEST_SHA256)})
        images = log_stage_images(stage, result_json, final_dir, manifest, store, train_config, output_dir)
        version = model_uri = logged_id = None
        if config.register_model:
            version, model_uri, logged_id = log_model(
                tracking, final_dir, {**lineage, mlflow_tags.RUN_ID: run.info.run_id}
            )
    return StageOutcome(
        stage,
        final_dir,
        run.info.run_id,
        parent_run_id,
        version,
        model_uri,
        logged_id,
        result_json,
        result.trainable_sha256 or result.config_hash,
        images,
    )


OUTPUT_DIR_TAG = "kiwi.output_dir"
STEPS_TAG = "kiwi.steps"


def _reuse_registered(tracking: MlflowTracking, output_dir: Path, max_steps: int, stage: int) -> StageOutcome | None:
    """The version an identical materialization registered (same config hash, manifest, start point
    and steps: they name `output_dir`), if its checkpoint is still there. Re-running the pipeline
    then costs nothing and does not pile up identical model versions."""
    from mlflow.exceptions import MlflowException

    client = tracking.client()
    try:
        versions = client.search_model_versions(f"name='{tracking.registered_model}'")
    except MlflowException:
        return None
    for mv in sorted(versions, key=lambda v: -int(v.version)):
        tags = mv.tags
        if tags.get(OUTPUT_DIR_TAG) == str(output_dir) and tags.get(STEPS_TAG) == str(max_steps):
            ckpt = Path(tags.get(mlflow_tags.CHECKPOINT_DIR, ""))
            result_file = output_dir / "train_result.json"
            if not (ckpt / "model_index.json").exists() or not result_file.exists():
                return None
            result = json.loads(result_file.read_text())
            run = client.get_run(mv.run_id)
            images = {
                n: output_dir / f
                for n, f in (("loss_curve", "loss_curve.png"), ("before_after", "before_after.png"))
                if (output_dir / f).exists()
            }
            return StageOutcome(
                stage,
                ckpt,
                mv.run_id,
                run.data.tags.get("mlflow.parentRunId", ""),
                str(mv.version),
                f"models:/{tracking.registered_model}/{mv.version}",
                getattr(mv, "model_id", None) or "",
                result,
                result.get("trainable_sha256") or result.get("config_hash", ""),
                images,
                reused=True,
            )
    return None
