"""One resource per external system, plus settings; `build_resources` wires them from KiwiSettings.

The resource classes are imported on first use (PEP 562 `__getattr__`), so a command that needs
one resource (`kiwi dvc`: `build_dvc`) does not import pandas and pyarrow through `batch_data`
(about 1 s of CPU per command, benchmarks/measured/dvc_status_2026-12-02.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from kiwi_platform.settings import KiwiSettings

if TYPE_CHECKING:
    from kiwi_platform.resources.batch_data import BatchData
    from kiwi_platform.resources.dvc import DvcRepo
    from kiwi_platform.resources.engine import EngineResource
    from kiwi_platform.resources.judge import JudgeResource
    from kiwi_platform.resources.lakefs import LakeFSResource
    from kiwi_platform.resources.settings import SettingsResource
    from kiwi_platform.resources.store import MediaStore
    from kiwi_platform.resources.tracking import MlflowTracking

_MODULES = {
    "BatchData": "batch_data",
    "DvcRepo": "dvc",
    "EngineResource": "engine",
    "JudgeResource": "judge",
    "LakeFSResource": "lakefs",
    "MediaStore": "store",
    "MlflowTracking": "tracking",
    "SettingsResource": "settings",
}


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(importlib.import_module(f"kiwi_platform.resources.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_dvc(settings: KiwiSettings) -> DvcRepo:
    """The data repo alone (`kiwi dvc`): the same wiring as in `build_resources`."""
    from kiwi_platform.resources.dvc import DvcRepo

    return DvcRepo(root=str(settings.data_dir), remote_url=settings.dvc_remote)


def build_resources(settings: KiwiSettings | None = None) -> dict:
    """The resources of the code location; the only place that reads the environment for them."""
    from kiwi_platform.resources.batch_data import BatchData
    from kiwi_platform.resources.engine import EngineResource
    from kiwi_platform.resources.judge import JudgeResource
    from kiwi_platform.resources.lakefs import LakeFSResource
    from kiwi_platform.resources.settings import SettingsResource
    from kiwi_platform.resources.store import MediaStore
    from kiwi_platform.resources.tracking import MlflowTracking

    settings = settings or KiwiSettings.from_env()
    store = MediaStore(root=str(settings.data_dir))
    dvc = build_dvc(settings)
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
    "build_dvc",
    "build_resources",
]
