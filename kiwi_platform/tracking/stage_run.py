"""One training stage, tracked: MLflow runs (nested under the Dagster run's pipeline run), metrics
per step, artifacts people look at, and the registered model version with its lineage tags.

The Dagster stage assets call `train_stage`; everything MLflow-specific lives here so the
training loop stays a plain library.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
from PIL import Image

from kiwi_platform.lib.files import atomic_path, sha256_file
from kiwi_platform.lib.preview import image_markdown
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.resources.tracking import MlflowTracking
from kiwi_platform.settings import KiwiSettings
from kiwi_platform.tracking import tags as T

NAMED_MODELS = ("tiny", "kiwi-5b")


class StageRunLogger:
    """Training callbacks -> MLflow metrics + Dagster logs (every step to MLflow, a line every few to Dagster)."""

    def __init__(self, context: dg.AssetExecutionContext, every: int = 1) -> None:
        self.context, self.every = context, every

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None}, step=step)
        if step % self.every == 0:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
            self.context.log.info(f"step {step}: {shown}")

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)
        self.context.log.info(f"validation at step {step}: {metrics}")

    def on_checkpoint(self, step: int, path: Path) -> None:
        self.context.log.info(f"checkpoint at step {step}: {path}")

    def on_warning(self, message: str) -> None:
        self.context.log.warning(message)


@dataclass
class StageOutcome:
    stage: int
    checkpoint_dir: Path
    run_id: str
    parent_run_id: str
    model_version: str | None
    model_uri: str | None
    logged_model_id: str | None
    result: dict
    weights_sha256: str
    images: dict[str, Path] = field(default_factory=dict)
    reused: bool = False  # an identical earlier materialization's version was returned, nothing retrained

    def metadata(self, tracking: MlflowTracking) -> dict[str, Any]:
        losses = self.result.get("losses") or []
        val = self.result.get("val_losses") or []
        meta: dict[str, Any] = {
            "checkpoint_dir": dg.MetadataValue.path(str(self.checkpoint_dir)),
            "mlflow_run_id": self.run_id,
            "mlflow_run": dg.MetadataValue.url(tracking.run_url(self.run_id)),
            "mlflow_parent_run_id": self.parent_run_id,
            "steps": int(self.result.get("steps", 0)),
            "loss_first": float(losses[0]) if losses else float("nan"),
            "loss_last": float(losses[-1]) if losses else float("nan"),
            "val_loss_first": float(val[0][1]) if val else float("nan"),
            "val_loss_last": float(val[-1][1]) if val else float("nan"),
            "trainable_params": int(self.result.get("trainable_params", 0)),
            "resumed_from": self.result.get("resumed_from") or "",
            "config_hash": self.result.get("config_hash", ""),
            "weights_sha256": self.weights_sha256,
            "reused_existing_version": self.reused,
        }
        if self.model_version:
            meta.update(model_version=self.model_version, model_uri=self.model_uri or "",
                        logged_model_id=self.logged_model_id or "",
                        mlflow_model=dg.MetadataValue.url(tracking.model_url(self.model_version)))  # fmt: skip
        for name, path in self.images.items():
            meta[name] = dg.MetadataValue.md(image_markdown(Image.open(path).convert("RGB"), name))
        return meta


def _fail(message: str) -> dg.Failure:
    return dg.Failure(description=message)


def resolve_init_checkpoint(stage: int, config, settings: KiwiSettings, parent: dict | None) -> Path:
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
        raise _fail("stage 1 of kiwi-5b needs init_checkpoint: build it with "
                    "`kiwi model init --from-base --wan WAN_DIR --qwen QWEN_DIR --out DIR`")  # fmt: skip
    from model.build import init_checkpoint

    base = settings.home / "models" / f"base-tiny-seed{config.seed}"
    if not (base / "model_index.json").exists():
        init_checkpoint("tiny", base, seed=config.seed, overwrite=True)
    return base


def _train_config(stage: int, config, init_dir: Path):
    from kiwi_platform.training import Resolution, TrainConfig

    resolutions = []
    for spec in config.resolution_schedule:
        until, _, size = spec.rpartition(":")
        h, w = (int(v) for v in size.lower().split("x"))
        resolutions.append(Resolution(until_step=int(until) if until else None, height=h, width=w))
    return TrainConfig(
        stage=stage, model="tiny" if config.model in NAMED_MODELS else config.model, init_checkpoint=str(init_dir),
        lr=config.lr or None, weight_decay=config.weight_decay, warmup_steps=config.warmup_steps,
        max_steps=config.max_steps, checkpoint_every=config.checkpoint_every, eval_every=config.eval_every,
        eval_samples=config.eval_samples, resolutions=resolutions or [Resolution(height=config.height, width=config.width)],
        frames=config.frames, mixed_precision=config.mixed_precision, gradient_checkpointing=config.gradient_checkpointing,
        distributed=config.distributed, seed=config.seed,
    )  # fmt: skip


def _pipeline_run(tracking: MlflowTracking, dagster_run_id: str) -> str:
    """The MLflow parent run of this Dagster run (one per run; stages nest under it)."""
    client = tracking.client()
    exp = tracking.experiment_id()
    found = client.search_runs([exp], filter_string=f"tags.`{T.DAGSTER_RUN_ID}` = '{dagster_run_id}' and tags.`kiwi.role` = 'pipeline'")
    if found:
        return found[0].info.run_id
    run = client.create_run(exp, run_name=f"pipeline-{dagster_run_id[:8]}", tags={T.DAGSTER_RUN_ID: dagster_run_id, "kiwi.role": "pipeline"})
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def train_stage(*, stage: int, config, settings: KiwiSettings, store: MediaStore, tracking: MlflowTracking,
                manifest: Path, manifest_meta: dict, parent: dict | None, logger: StageRunLogger,
                dagster_tags: dict[str, str]) -> StageOutcome:  # fmt: skip
    import mlflow

    from kiwi_platform.training import TrainingError, train

    if not manifest.exists():
        raise _fail(f"training manifest {manifest} is missing; materialize training_manifests first")
    init_dir = resolve_init_checkpoint(stage, config, settings, parent)
    try:
        train_config = _train_config(stage, config, init_dir)
    except ValueError as exc:
        raise _fail(f"invalid stage {stage} config: {exc}".splitlines()[0]) from None
    manifest_sha = sha256_file(manifest)
    snapshot = snapshot_manifest(manifest, store, stage, manifest_sha)
    output_dir = settings.home / "training" / f"stage{stage}-{train_config.config_hash()[:10]}-{manifest_sha[:10]}"
    lineage = {
        **dagster_tags,
        T.STAGE: str(stage),
        T.CONFIG_HASH: train_config.config_hash(),
        T.MANIFEST_PATH: store.rel(snapshot),
        T.MANIFEST_SHA256: manifest_sha,
        T.MANIFEST_DVC_MD5: str(manifest_meta.get("dvc_md5", "")),
        T.DATA_REPO: str(store.root_path),
        T.DATA_REPO_REV: str(manifest_meta.get("data_repo_rev", "")),
        T.LAKEFS_COMMIT: str(manifest_meta.get("lakefs_commit", "")),
        T.PARENT_MODEL_URI: str(parent.get("model_uri", "")) if parent else "",
        T.PARENT_RUN_ID: str(parent.get("mlflow_run_id", "")) if parent else "",
        "kiwi.init_checkpoint": str(init_dir),
        OUTPUT_DIR_TAG: str(output_dir),
        STEPS_TAG: str(train_config.max_steps),
    }
    if config.register_model and (reused := _reuse_registered(tracking, output_dir, train_config.max_steps, stage)):
        logger.context.log.info(f"stage {stage}: same config, data and start point as v{reused.model_version}; reusing it")
        return reused
    parent_run_id = _pipeline_run(tracking, dagster_tags[T.DAGSTER_RUN_ID])
    with tracking.start_run(f"stage{stage}", tags={**lineage, "kiwi.role": "stage"}, parent_run_id=parent_run_id) as run:
        mlflow.log_params({k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in train_config.model_dump(mode="json").items()})
        mlflow.log_params({"code_git_sha": dagster_tags.get(T.CODE_GIT_SHA, ""), "config_hash": train_config.config_hash()})
        try:
            result = train(train_config, manifest, store.root_path, output_dir, callbacks=logger)
        except TrainingError as exc:
            mlflow.set_tag("kiwi.failure", str(exc))
            raise _fail(f"stage {stage}: {exc}") from None
        result_json = result.to_json()
        mlflow.log_dict(result_json, "train_result.json")
        final_dir = freeze_checkpoint(Path(result.final_dir), output_dir / "runs" / run.info.run_id)
        lineage[T.CHECKPOINT_DIR] = str(final_dir)
        mlflow.set_tag(T.CHECKPOINT_DIR, str(final_dir))
        images = _log_images(stage, result_json, final_dir, manifest, store, train_config, output_dir)
        version = model_uri = logged_id = None
        if config.register_model:
            version, model_uri, logged_id = _log_model(tracking, final_dir, {**lineage, T.RUN_ID: run.info.run_id})
    return StageOutcome(stage, final_dir, run.info.run_id, parent_run_id, version, model_uri, logged_id, result_json,
                        result.trainable_sha256 or result.config_hash, images)  # fmt: skip


OUTPUT_DIR_TAG = "kiwi.output_dir"
STEPS_TAG = "kiwi.steps"


def _reuse_registered(tracking: MlflowTracking, output_dir: Path, max_steps: int, stage: int) -> "StageOutcome | None":
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
            ckpt = Path(tags.get(T.CHECKPOINT_DIR, ""))
            result_file = output_dir / "train_result.json"
            if not (ckpt / "model_index.json").exists() or not result_file.exists():
                return None
            result = json.loads(result_file.read_text())
            run = client.get_run(mv.run_id)
            images = {n: output_dir / f for n, f in (("loss_curve", "loss_curve.png"), ("before_after", "before_after.png"))
                      if (output_dir / f).exists()}  # fmt: skip
            return StageOutcome(stage, ckpt, mv.run_id, run.data.tags.get("mlflow.parentRunId", ""), str(mv.version),
                                f"models:/{tracking.registered_model}/{mv.version}", getattr(mv, "model_id", None) or "",
                                result, result.get("trainable_sha256") or result.get("config_hash", ""), images,
                                reused=True)  # fmt: skip
    return None


def freeze_checkpoint(final_dir: Path, frozen: Path) -> Path:
    """A folder of this run's weights that later runs never change: `final/` is rewritten when a
    stage is trained longer (it resumes in the same folder), so the registered version points at a
    hard-linked snapshot (no extra disk; `final/` is replaced file by file, never edited in place)."""
    if not frozen.exists():
        tmp = frozen.with_name(f".{frozen.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(final_dir, tmp, copy_function=_link_or_copy)
        os.replace(tmp, frozen)
    return frozen


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def snapshot_manifest(manifest: Path, store: MediaStore, stage: int, sha: str) -> Path:
    """The exact manifest a run trained on, kept by content (training_manifests rewrites stageN.parquet)."""
    snap = manifest.parent / "history" / f"stage{stage}-{sha[:16]}.parquet"
    if not snap.exists():
        with atomic_path(snap) as tmp:
            shutil.copyfile(manifest, tmp)
    return snap


def _log_model(tracking: MlflowTracking, final_dir: Path, lineage: dict[str, str]) -> tuple[str, str, str]:
    import mlflow
    import torch

    import pandas as pd
    from mlflow.models import infer_signature

    from kiwi_platform.tracking import pyfunc

    example = pd.DataFrame([pyfunc.SIGNATURE_COLUMNS])
    info = mlflow.pyfunc.log_model(
        name="kiwi-edit",
        python_model=pyfunc.__file__,  # models from code: no pickled objects
        signature=infer_signature(example, pd.DataFrame({"out": ["edited.mp4"]})),
        artifacts={"checkpoint": str(final_dir)},
        registered_model_name=tracking.registered_model,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "diffusers", "transformers", "peft", "av", "pillow"],
        tags={k: v for k, v in lineage.items() if v},
        await_registration_for=0,
    )
    version = str(info.registered_model_version)
    client = tracking.client()
    for key, value in lineage.items():
        if value:
            client.set_model_version_tag(tracking.registered_model, version, key, value)
    return version, f"models:/{tracking.registered_model}/{version}", info.model_id


def _log_images(stage: int, result: dict, final_dir: Path, manifest: Path, store: MediaStore, cfg, output_dir: Path) -> dict[str, Path]:
    """Loss curve and a before/after strip (source | output | target) of one validation sample."""
    import mlflow

    images: dict[str, Path] = {}
    curve = output_dir / "loss_curve.png"
    _loss_curve(result, curve, f"stage {stage}")
    mlflow.log_artifact(str(curve), "plots")
    images["loss_curve"] = curve
    strip = output_dir / "before_after.png"
    if _before_after(final_dir, manifest, store, cfg, strip):
        mlflow.log_artifact(str(strip), "samples")
        images["before_after"] = strip
    return images


def _loss_curve(result: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    losses = result.get("losses") or []
    ax.plot(range(1, len(losses) + 1), losses, label="train loss", lw=1)
    val = result.get("val_losses") or []
    if val:
        ax.plot([s for s, _ in val], [v for _, v in val], "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path.write_bytes(buf.getvalue())


def _before_after(final_dir: Path, manifest: Path, store: MediaStore, cfg, path: Path) -> bool:
    import pandas as pd

    from kiwi_platform.media.clips import read_clip
    from model import KiwiEditPipeline

    df = pd.read_parquet(manifest)
    if not len(df):
        return False
    rec = df.iloc[0]
    res = cfg.resolutions[-1]
    frames = 1 if rec["frames"] == 1 else cfg.frames
    src = read_clip(store.root_path / rec["src_clip"], list(range(frames)))
    tgt = read_clip(store.root_path / rec["tgt_clip"], [0])[0]
    pipe = KiwiEditPipeline.from_pretrained(final_dir)
    pipe.set_progress_bar_config(disable=True)
    video = [Image.fromarray(f).resize((res.width, res.height)) for f in src]
    ref = Image.open(store.root_path / rec["ref_image"]).convert("RGB") if rec["ref_image"] else None
    out = pipe(rec["prompt"], video=video, ref_image=ref, height=res.height, width=res.width, num_frames=frames,
               num_inference_steps=4, seed=0)  # fmt: skip
    cells = [video[0], out.frames[0], Image.fromarray(tgt).resize((res.width, res.height))]
    strip = Image.new("RGB", (sum(c.width for c in cells) + 8, res.height), "white")
    x = 0
    for c in cells:
        strip.paste(c.convert("RGB") if hasattr(c, "convert") else Image.fromarray(np.asarray(c)), (x, 0))
        x += c.width + 4
    strip.save(path)
    return True
