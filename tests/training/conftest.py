"""Shared training fixtures: a real (synthetic) manifest built once per session, and a fast config."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from kiwi_platform.training import TrainConfig
from kiwi_platform.training.fixtures import TrainingFixture
from kiwi_platform.training.fixtures import make_training_manifest as _make
from kiwi_platform.training.manifests import MANIFEST_DIR
from tests.demo_data import require_demo_dir

FRAMES = 5


def make_training_manifest(tmp_dir: Path, n: int = 6, **kwargs) -> TrainingFixture:
    """Synthetic pairs -> .kclip clips + manifest.parquet (image/video rows plus *_ref rows).

    The demo clips come from the same place (and fail the same way when missing) as the `demo_dir` fixture.
    """
    kwargs.setdefault("frames", FRAMES)
    kwargs.setdefault("demo_dir", require_demo_dir())
    return _make(tmp_dir, n, **kwargs)


@pytest.fixture(scope="session")
def training_data(tmp_path_factory: pytest.TempPathFactory) -> TrainingFixture:
    """Read-only shared data set (6 pairs, 12 rows); tests that modify files copy it first."""
    return make_training_manifest(tmp_path_factory.mktemp("training-data"), 6)


@pytest.fixture
def data_copy(training_data: TrainingFixture, tmp_path: Path) -> TrainingFixture:
    """A private copy a test may damage (hash mismatch, deleted files)."""
    root = tmp_path / "data-copy"
    shutil.copytree(training_data.data_root, root / "data")
    shutil.copy(training_data.manifest, root / "manifest.parquet")
    return TrainingFixture(root / "manifest.parquet", root / "data", training_data.synth_dir, training_data.rows)


def fast_config(**overrides) -> TrainConfig:
    """Tiny model, 5 frames at 64x96, stage 3 mix (image, video, reference), high LR so steps matter."""
    base = dict(stage=3, model="tiny", frames=FRAMES, lr=1e-3, max_steps=4, checkpoint_every=2, val_fraction=0.2)
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture
def stage_platform(kiwi_home: Path, training_data: TrainingFixture):
    """Definitions, resources and instance of the code location, with the training fixture's clips in the
    data repo and its manifest as every stage's manifest (a recorded `training_manifests` materialization)."""
    from kiwi_platform.definitions import build_definitions
    from kiwi_platform.env import prepare_environment
    from kiwi_platform.resources import build_resources

    settings = prepare_environment()
    resources = build_resources(settings)
    root = resources["store"].root_path
    shutil.copytree(training_data.data_root, root, dirs_exist_ok=True)
    for stage in (1, 2, 3):
        (root / MANIFEST_DIR).mkdir(parents=True, exist_ok=True)
        shutil.copy(training_data.manifest, root / MANIFEST_DIR / f"stage{stage}.parquet")
    instance = dg.DagsterInstance.get()
    instance.report_runless_asset_event(
        dg.AssetMaterialization("training_manifests", metadata={"dvc_md5": "fixture", "data_repo_rev": ""})
    )
    yield build_definitions(), resources, instance
    instance.dispose()
