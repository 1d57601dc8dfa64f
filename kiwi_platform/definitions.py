"""The Dagster code location: every asset, check, job and resource of Kiwi Platform.

Loaded by `dagster dev` / `dg` through `[tool.dagster]` in pyproject.toml and by the `kiwi` CLI.
Asset modules are discovered from the `assets` package; what holds for every asset (resources,
the run logger, jobs, schedules and sensors) is wired here once.
"""

from __future__ import annotations

import warnings

import dagster as dg

# Partitioned asset checks are a preview feature in Dagster 1.13; we rely on them knowingly.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

import assets  # noqa: E402
from kiwi_platform.automation import retrain_on_new_quadruplets, retraining_job, weekly_retraining  # noqa: E402
from kiwi_platform.resources import build_resources  # noqa: E402
from kiwi_platform.run_logger import kiwi_console  # noqa: E402


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_package_module(assets),
        asset_checks=dg.load_asset_checks_from_package_module(assets),
        resources=build_resources(),
        jobs=[retraining_job],
        schedules=[weekly_retraining],
        sensors=[retrain_on_new_quadruplets],
        loggers={"kiwi_console": kiwi_console},
    )


defs = build_definitions()
