"""One resource per external system; `build_resources` wires them from KiwiSettings."""

from __future__ import annotations

from kiwi_platform.judge.resource import JudgeResource
from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.lakefs import LakeFSResource
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.resources.tracking import MlflowTracking
from kiwi_platform.settings import KiwiSettings


def build_resources(settings: KiwiSettings | None = None) -> dict:
    settings = settings or KiwiSettings.from_env()
    return {
        "store": MediaStore(root=str(settings.data_dir)),
        "dvc": DvcRepo(root=str(settings.data_dir), remote_url=settings.dvc_remote),
        "lakefs": LakeFSResource.from_env(),
        "judge": JudgeResource.from_env(),
        "tracking": MlflowTracking(tracking_uri=settings.mlflow_tracking_uri, artifact_root=str(settings.mlflow_artifacts)),
    }


__all__ = ["DvcRepo", "JudgeResource", "LakeFSResource", "MediaStore", "MlflowTracking", "build_resources"]
