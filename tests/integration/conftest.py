"""Fixtures for integration tests: real Dagster instance, real DVC repo, real media."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from kiwi_platform.env import prepare_environment
from kiwi_platform.resources import build_resources
from kiwi_platform.runner import register_batch


@pytest.fixture
def platform(kiwi_home: Path):
    """(definitions, resources, instance) bound to the test's KIWI_HOME."""
    settings = prepare_environment()
    from kiwi_platform.definitions import build_definitions

    defs = build_definitions()
    resources = build_resources(settings)
    instance = dg.DagsterInstance.get()
    yield defs, resources, instance
    instance.dispose()


def add_batch(platform, name: str, manifest: Path) -> None:
    _, resources, instance = platform
    resources["store"].register_batch(name, manifest)
    register_batch(instance, name)


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory, demo_dir) -> Path:
    """A small synthetic batch (real demo clips inside), made once per session."""
    from kiwi_platform.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, 6, seed=3, frames=9, height=64, width=96, image_share=0.34, demo_dir=demo_dir)
    return out / "manifest.csv"


SMALL_RUN_CONFIG = {
    "ops": {
        "raw_edit_pairs": {"config": {"min_frames": 9}},
        "normalized_clips": {"config": {"num_frames": 9, "max_area": 64 * 96, "multiple": 32}},
    }
}
