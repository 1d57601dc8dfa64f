"""Kiwi's local settings as a Dagster resource, so assets receive them instead of reading the environment.

Tests and deployments pass another instance (`SettingsResource.from_settings(...)`); only
`build_resources` reads the environment, once.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from kiwi_platform.settings import KiwiSettings


class SettingsResource(dg.ConfigurableResource):
    """Where Kiwi keeps the state that is not a data-repo table: evaluations, training runs, demo files."""

    home: str = Field(description="KIWI_HOME: root of all local state (evaluations, training folders, caches).")
    demo_dir: str = Field(description="Folder of the Kiwi-Edit demo files (clips, reference image, manifests).")

    @classmethod
    def from_settings(cls, settings: KiwiSettings) -> SettingsResource:
        return cls(home=str(settings.home), demo_dir=str(settings.demo_dir))

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def demo_path(self) -> Path:
        return Path(self.demo_dir)
