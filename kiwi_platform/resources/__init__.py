"""One resource per external system, plus settings; `build_resources` wires them from KiwiSettings."""

from __future__ import annotations

from kiwi_platform.resources.batch_data import BatchData
from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.engine import EngineResource
from kiwi_platform.resources.judge import JudgeResource
from kiwi_platform.resources.lakefs import LakeFSResource
from kiwi_platform.resources.settings import SettingsResource
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.resources.tracking import MlflowTracking
from kiwi_platform.settings import KiwiSettings


def build_resources(settings: KiwiSettings | None = None) -> dict:
    """The resources of the code location; the only place that reads the environment for them."""
    settings = settings or KiwiSettings.from_env()
    store = MediaStore(root=str(settings.data_dir))
    dvc = DvcRepo(root=str(settings.data_dir), remote_url=settings.dvc_remote)
    lakefs = LakeFSResource.from_env()
    return {
        "settings": SettingsResource.from_settings(settings),
        "store": store,
        "dvc": dvc,
        "lakefs": lakefs,
        "data": BatchData(store=store, dvc=dvc, lakefs=lakefs),
        "judge": JudgeResource.from_env(),
        "engine": EngineResource.from_env(),
        "tracking": MlflowTracking(
            tracking_uri=settings.mlflow_tracking_uri, artifact_root=str(settings.mlflow_artifacts)
        ),
    }


__all__ = [
    "BatchData",
    "DvcRepo",
    "EngineResource",
    "JudgeResource",
    "LakeFSResource",
    "MediaStore",
    "MlflowTracking",
    "SettingsResource",
    "build_resources",
]
