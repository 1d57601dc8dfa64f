"""Register a stage's checkpoint as a version of the MLflow model, tagged with its whole lineage.

The model is logged as "models from code" (`kiwi_platform/training/pyfunc.py`), so the registry
holds no pickled objects; the checkpoint folder travels as an artifact.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kiwi_platform.lib.checkpoint_manifest import write_checkpoint_manifest
from kiwi_platform.lib.files import atomic_path
from kiwi_platform.resources.tracking import MlflowTracking


def log_model(tracking: MlflowTracking, final_dir: Path, lineage: dict[str, str]) -> tuple[str, str, str]:
    import mlflow
    import pandas as pd
    import torch
    from mlflow.models import infer_signature

    from kiwi_platform.training import pyfunc

    example = pd.DataFrame([pyfunc.SIGNATURE_COLUMNS])
    info = mlflow.pyfunc.log_model(
        name="kiwi-edit",
        python_model=pyfunc.__file__,  # models from code: no pickled objects
        signature=infer_signature(example, pd.DataFrame({"out": ["edited.mp4"]})),
        artifacts={"checkpoint": str(final_dir)},
        registered_model_name=tracking.registered_model,
        pip_requirements=[
            f"torch=={torch.__version__.split('+')[0]}",
            "diffusers",
            "transformers",
            "peft",
            "av",
            "pillow",
        ],
        tags={k: v for k, v in lineage.items() if v},
        await_registration_for=0,
    )
    version = str(info.registered_model_version)
    client = tracking.client()
    for key, value in lineage.items():
        if value:
            client.set_model_version_tag(tracking.registered_model, version, key, value)
    return version, f"models:/{tracking.registered_model}/{version}", info.model_id


def freeze_checkpoint(final_dir: Path, frozen: Path) -> Path:
    """A folder of this run's weights that later runs never change: `final/` is rewritten when a
    stage is trained longer (it resumes in the same folder), so the registered version points at a
    hard-linked snapshot (no extra disk; `final/` is replaced file by file, never edited in place)."""
    if not frozen.exists():
        tmp = frozen.with_name(f".{frozen.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(final_dir, tmp, copy_function=_link_or_copy)
        write_checkpoint_manifest(tmp)  # every file's sha256: loaders and `kiwi lineage --verify` check it
        os.replace(tmp, frozen)
    return frozen


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def snapshot_manifest(manifest: Path, stage: int, sha: str) -> Path:
    """The exact manifest a run trained on, kept by content (training_manifests rewrites stageN.parquet)."""
    snap = manifest.parent / "history" / f"stage{stage}-{sha[:16]}.parquet"
    if not snap.exists():
        with atomic_path(snap) as tmp:
            shutil.copyfile(manifest, tmp)
    return snap
